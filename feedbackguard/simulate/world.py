"""The simulated world: accounts, their infrastructure, and the events they send.

A `World` holds one data set, the product model's outputs and a seeded random
generator, and turns (account, item, value, time) into valid `FeedbackEvent`s with
everything capture would add (ip, device_id, user_agent, received_at in event time)
and what a product would send (model_output, payload.features). It also records the
ground truth of every event it makes: which population sent it, whether it is
poison, and whether it is correct (a label equal to the item's true label; a report of
an item that really deserves it, one of the world's `bad_items`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from feedbackguard.events import LABEL_KINDS, FeedbackEvent, Kind, ModelOutput, Payload
from feedbackguard.simulate.data import Dataset, FloatArray, ProductModel

# Event time origin of every simulated stream (a Monday; the value is arbitrary but fixed,
# so streams are byte-identical across runs).
T0 = datetime(2026, 3, 2, tzinfo=UTC)
DAY = 86400.0
HOUR = 3600.0
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
# Admitted reports that take an item down (the product's moderation rule the mass-report
# attack aims at; the benchmark counts benign items that reach it).
TAKEDOWN_REPORTS = 5


@dataclass(frozen=True)
class Truth:
    """What really sent an event: its population, whether it is poison, whether it is
    correct (None for kinds with no right answer) and the honest crowd it belongs to."""

    population: str
    is_poison: bool
    correct: bool | None = None
    crowd: str | None = None


@dataclass
class Account:
    account_id: str
    created_at: datetime
    ips: list[str]
    devices: list[str]
    user_agent: str


@dataclass
class World:
    """Makes events for one stream and remembers the truth about each."""

    data: Dataset
    model: ProductModel
    rng: random.Random
    namespace: str = "default"
    t0: datetime = T0
    truth: dict[str, Truth] = field(default_factory=dict)
    events: list[FeedbackEvent] = field(default_factory=list)
    # Pool items that really deserve a report (abusive content): reports of them are
    # correct, reports of any other item are not.
    bad_items: frozenset[int] = frozenset()
    # The honest population's accounts and item popularity (crowds draw on both).
    accounts: list[Account] = field(default_factory=list)
    popularity: FloatArray | None = None

    def at(self, seconds: float) -> datetime:
        return self.t0 + timedelta(seconds=seconds)

    def event_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def ip(self, first: int | None = None) -> str:
        """A random public-looking IPv4 address (first octet chosen or random)."""
        a = first if first is not None else self.rng.choice([24, 45, 67, 73, 81, 98, 109, 176])
        return (
            f"{a}.{self.rng.randrange(256)}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
        )

    def device(self) -> str:
        return f"d-{self.rng.getrandbits(48):012x}"

    def account(
        self,
        account_id: str,
        created_at: datetime,
        ips: list[str] | None = None,
        devices: list[str] | None = None,
        user_agent: str | None = None,
    ) -> Account:
        return Account(
            account_id=account_id,
            created_at=created_at,
            ips=ips or [self.ip()],
            devices=devices or [self.device()],
            user_agent=user_agent or self.rng.choice(USER_AGENTS),
        )

    def emit(
        self,
        who: Account,
        seconds: float,
        population: str,
        is_poison: bool,
        *,
        index: int | None = None,
        item_id: str | None = None,
        value: str,
        kind: Kind | None = None,
        features: FloatArray | None = None,
        model_output: tuple[str, float] | None = None,
        correct: bool | None = None,
        crowd: str | None = None,
    ) -> FeedbackEvent:
        """One event about data set row `index` (or a new item with its own features);
        its correctness follows from the row's truth unless `correct` is given."""
        if index is not None:
            item_id = item_id or self.data.item_id(index)
            features = self.data.x[index] if features is None else features
            model_output = model_output or self.model.output(index)
        assert item_id is not None
        said = model_output[0] if model_output else None
        if kind is None:
            kind = "label" if said is None or said == value else "correction"
        event = FeedbackEvent(
            event_id=self.event_id(),
            namespace=self.namespace,
            kind=kind,
            account_id=who.account_id,
            account_created_at=who.created_at,
            item_id=item_id,
            value=value,
            model_output=(
                ModelOutput(label=model_output[0], confidence=model_output[1])
                if model_output
                else None
            ),
            payload=(
                Payload(features=[float(v) for v in np.asarray(features).tolist()])
                if features is not None
                else None
            ),
            ip=self.rng.choice(who.ips),
            device_id=self.rng.choice(who.devices),
            user_agent=who.user_agent,
            received_at=self.at(seconds),
        )
        if correct is None and index is not None:
            if kind == "report":
                correct = index in self.bad_items
            elif kind in LABEL_KINDS:
                correct = value == self.data.label(index)
        self.events.append(event)
        self.truth[event.event_id] = Truth(population, is_poison, correct, crowd)
        return event

    def other_label(self, label: str) -> str:
        return self.rng.choice([x for x in self.data.labels if x != label])
