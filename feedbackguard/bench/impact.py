"""What a set of admitted feedback does to the model retrained from it.

Training rows are the labelled events (kinds `label` and `correction`) with features
in their payload: (payload.features, value). The retrained model is the one the
product would train (`simulate.data.make_model`); it is scored on the data set's
clean held-out test split, and on what the attack wanted (`Attack`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from feedbackguard.events import FeedbackEvent
from feedbackguard.simulate import LABEL_KINDS, Attack
from feedbackguard.simulate.data import Dataset, Deduplicated, FloatArray, make_model


@dataclass(frozen=True)
class Impact:
    clean_acc: float | None
    attack_success: float | None
    rows: int


def training_rows(events: Iterable[FeedbackEvent]) -> tuple[FloatArray, list[str], list[str]]:
    """(features, labels, event ids) of the events a model learns from."""
    xs: list[list[float]] = []
    ys: list[str] = []
    ids: list[str] = []
    for event in events:
        if event.kind not in LABEL_KINDS or event.payload is None or not event.payload.features:
            continue
        xs.append(event.payload.features)
        ys.append(str(event.value))
        ids.append(event.event_id)
    return np.asarray(xs, dtype=np.float64), ys, ids


def fit(x: FloatArray, y: Sequence[str]) -> Deduplicated | None:
    """The retrained model, or None when the rows cannot train one (fewer than 2 classes)."""
    if len(set(y)) < 2:
        return None
    return make_model().fit(x, np.asarray(y))


def attack_success(model: Deduplicated, data: Dataset, attack: Attack) -> float | None:
    """Share of what the attack wanted that the retrained model does (None: no goal)."""
    if attack.goal == "targeted" and attack.targets:
        predicted = model.predict(data.x[list(attack.targets)])
        return float(np.mean(predicted == attack.target_label))
    if attack.goal == "class_flip" and attack.source_label is not None:
        rows = [int(i) for i in data.test_idx if data.label(int(i)) == attack.source_label]
        predicted = model.predict(data.x[rows])
        return float(np.mean(predicted == attack.target_label))
    if attack.goal == "backdoor" and attack.trigger is not None:
        rows = [int(i) for i in data.test_idx if data.label(int(i)) != attack.target_label]
        predicted = model.predict(attack.trigger.apply(data.x[rows]))
        return float(np.mean(predicted == attack.target_label))
    return None


def takedowns(events: Iterable[FeedbackEvent], data: Dataset, attack: Attack) -> float | None:
    """Mass reports: share of the benign targets with `takedown` admitted reports or more."""
    if attack.goal != "reports" or not attack.targets:
        return None
    reports = Counter(e.item_id for e in events if e.kind == "report")
    down = [reports[data.item_id(i)] >= attack.takedown for i in attack.targets]
    return float(np.mean(down))


def impact(events: Sequence[FeedbackEvent], data: Dataset, attack: Attack) -> Impact:
    """Retrain on `events` (the admitted ones) and score the model."""
    x, y, _ = training_rows(events)
    success = takedowns(events, data, attack)
    model = fit(x, y) if len(y) else None
    if model is None:
        return Impact(None, success, len(y))
    acc = float(np.mean(model.predict(data.x_test) == np.asarray(data.y_test)))
    if success is None:
        success = attack_success(model, data, attack)
    return Impact(round(acc, 4), None if success is None else round(success, 4), len(y))
