"""The product's model: a tiny TF-IDF + logistic regression ticket classifier,
trained at start on the bundled tickets (the retraining loop feedbackguard guards)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

DATA = Path(__file__).with_name("data") / "tickets.csv"
SEED = 0
MAX_ITER = 1000


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float


def load_tickets(path: Path = DATA) -> list[tuple[str, str]]:
    """(text, label) rows of the bundled training set."""
    with path.open(newline="", encoding="utf-8") as f:
        return [(row["text"], row["label"]) for row in csv.DictReader(f)]


class TicketClassifier:
    """Predicts a ticket's queue (billing, bug, account, shipping, feature_request)."""

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        self._model: Pipeline = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            LogisticRegression(max_iter=MAX_ITER, random_state=SEED),
        )
        self._model.fit([text for text, _ in rows], [label for _, label in rows])

    @property
    def labels(self) -> list[str]:
        return [str(c) for c in self._model.classes_]

    def predict(self, text: str) -> Prediction:
        probabilities = self._model.predict_proba([text])[0]
        best = int(probabilities.argmax())
        return Prediction(self.labels[best], round(float(probabilities[best]), 4))
