"""The offline peers a team would reach for today, applied as filters to a stream.

Both see only the labelled events (kinds label/correction with features): reports,
ratings and votes pass through them untouched.

* IBM ART's `ProvenanceDefense` (adversarial-robustness-toolbox), partially trusted
  mode: the team's own clean split (the product model's training data) is the trusted
  validation set; provenance sources are accounts grouped by creation day (one refit
  per account does not scale), the largest `ART_MAX_SOURCES` of them, the rest one
  source. A source is dropped when removing it improves trusted accuracy by more than
  `ART_EPS`. ART's `filter_input` finds a source's rows by matching feature values
  (and loops in Python); rows here carry a source-unique id column, dropped by the
  model, and `filter_input` is replaced by the equivalent vectorised match on that
  column. Everything else is ART's own code.
* cleanlab's `find_label_issues` on out-of-fold predicted probabilities (5-fold
  `cross_val_predict` of the same model); flagged rows are dropped.

Each returns the event ids it keeps, or None (with a note) when its package is missing.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from feedbackguard.bench.impact import training_rows
from feedbackguard.events import FeedbackEvent
from feedbackguard.simulate.data import Dataset, Deduplicated, FloatArray, make_model

ART_MAX_SOURCES = 40
ART_EPS = 0.01
CLEANLAB_FOLDS = 5
_ID_BASE = 1_000_000.0  # > any item number: source-unique row ids


def _drop_id(x: FloatArray) -> FloatArray:
    return np.asarray(x)[:, :-1]


class _HardLabels(BaseEstimator):  # type: ignore[misc]
    """The benchmark's model, answering class labels only: ART's accuracy compares
    one-hot predictions (it one-hot encodes `predict`, but passes `predict_proba` raw)."""

    def __init__(self) -> None:
        self.model = Deduplicated(
            Pipeline([("drop_id", FunctionTransformer(_drop_id)), *make_model().estimator.steps])
        )

    def fit(self, x: FloatArray, y: npt.ArrayLike) -> _HardLabels:
        self.model.fit(x, y)
        self.classes_ = self.model.classes_
        self.n_features_in_ = np.asarray(x).shape[1]
        return self

    def predict(self, x: FloatArray) -> npt.NDArray[np.generic]:
        return self.model.predict(x)


def _creation_day(event: FeedbackEvent) -> str:
    created = event.account_created_at
    return created.date().isoformat() if created is not None else "-"


def _one_hot(codes: npt.NDArray[np.int64], n: int) -> FloatArray:
    out = np.zeros((len(codes), n))
    out[np.arange(len(codes)), codes] = 1.0
    return out


def art_provenance(events: Sequence[FeedbackEvent], data: Dataset) -> tuple[set[str] | None, str]:
    """Event ids kept by ART's ProvenanceDefense (None when ART is not installed)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ART warns at import about missing torch
            from art.defences.detector.poison import (  # type: ignore[import-untyped]
                ProvenanceDefense,
            )
            from art.estimators.classification.scikitlearn import (  # type: ignore[import-untyped]
                ScikitlearnClassifier,
            )
    except ImportError:
        return (
            None,
            "adversarial-robustness-toolbox not installed (pip install feedbackguard[bench])",
        )

    class FastProvenance(ProvenanceDefense):  # type: ignore[misc]
        @staticmethod
        def filter_input(
            data: np.ndarray, labels: np.ndarray, segment: np.ndarray
        ) -> tuple[np.ndarray, np.ndarray]:
            if len(segment) == 0:
                return data, labels
            keep = ~np.isin(data[:, -1], np.asarray(segment)[:, -1])
            return data[keep], labels[keep]

    by_id = {e.event_id: e for e in events}
    x, y, ids = training_rows(events)
    labelled = set(ids)
    passed = {e.event_id for e in events if e.event_id not in labelled}
    if len(ids) == 0:
        return passed, ""
    day = [_creation_day(by_id[i]) for i in ids]
    largest = [k for k, _ in Counter(day).most_common(ART_MAX_SOURCES)]
    source_of = {k: n for n, k in enumerate(largest)}
    other = len(largest)
    sources = np.array([source_of.get(d, other) for d in day], dtype=np.int64)
    n_sources = other + 1
    label_code = {label: n for n, label in enumerate(data.labels)}
    codes = np.array([label_code[v] for v in y], dtype=np.int64)
    item_no = {item: n for n, item in enumerate(sorted({by_id[i].item_id for i in ids}))}
    items = np.array([float(item_no[by_id[i].item_id]) for i in ids])
    row_id = _ID_BASE * (sources + 1) + items
    x_art = np.column_stack([x, row_id])
    val = data.model_idx
    x_val = np.column_stack([data.x[val], np.full(len(val), -1.0)])
    y_val = _one_hot(data.y[val].astype(np.int64), len(data.labels))
    classifier = ScikitlearnClassifier(_HardLabels())
    classifier.fit(x_art, _one_hot(codes, len(data.labels)))
    defence = FastProvenance(
        classifier,
        x_art,
        _one_hot(codes, len(data.labels)),
        _one_hot(sources, n_sources),
        x_val=x_val,
        y_val=y_val,
        eps=ART_EPS,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _report, clean = defence.detect_poison()
    kept = {i for i, ok in zip(ids, np.asarray(clean).tolist(), strict=True) if ok}
    return kept | passed, ""


def cleanlab_filter(events: Sequence[FeedbackEvent], data: Dataset) -> tuple[set[str] | None, str]:
    """Event ids kept by cleanlab's find_label_issues (None when it is not installed)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from cleanlab.filter import find_label_issues  # type: ignore[import-untyped]
    except ImportError:
        return None, "cleanlab not installed (pip install feedbackguard[bench])"
    x, y, ids = training_rows(events)
    labelled = set(ids)
    passed = {e.event_id for e in events if e.event_id not in labelled}
    label_code = {label: n for n, label in enumerate(data.labels)}
    codes = np.array([label_code[v] for v in y], dtype=np.int64)
    present = np.unique(codes)
    if len(present) < 2:
        return passed | labelled, ""
    remap = np.searchsorted(present, codes)
    folds = int(min(CLEANLAB_FOLDS, np.bincount(remap).min())) if len(present) else 2
    probs: Any = cross_val_predict(make_model(), x, remap, cv=max(2, folds), method="predict_proba")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # One process: the bench runs whole streams in parallel already, and cleanlab's
        # own pool relies on fork (it finds nothing in a spawned bench process).
        issues = find_label_issues(labels=remap, pred_probs=probs, n_jobs=1)
    kept = {i for i, bad in zip(ids, np.asarray(issues).tolist(), strict=True) if not bad}
    return kept | passed, ""
