"""The real data the simulated feedback is about: scikit-learn's bundled data sets.

Each data set is split once (seeded, stratified) into three disjoint parts:
* `model`: trains the product's model, whose outputs (label, confidence) every
  simulated event carries, as a product would send them;
* `pool`: the items users give feedback on (their features ride in payload.features);
* `test`: a clean held-out split, never fed back, that the retrained model is scored on.
Nothing is downloaded: digits, breast-cancer and wine ship inside scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

DatasetName = Literal["digits", "breast-cancer", "wine"]
DATASETS: tuple[DatasetName, ...] = ("digits", "breast-cancer", "wine")
# Shares of each data set: product model's training split, feedback pool, clean test.
MODEL_SHARE = 0.25
TEST_SHARE = 0.30
SPLIT_SEED = 7
# BLAS threads for these small fits: more only oversubscribes the cores
# (docs/benchmarks.md, "Pipeline throughput").
BLAS_THREADS = 1
# The retrained model: small, fast, and sensitive enough to poisoning to show it.
MAX_ITER = 2000

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Dataset:
    """One data set and its fixed splits; labels are the strings feedback carries."""

    name: DatasetName
    x: FloatArray
    y: IntArray
    labels: tuple[str, ...]
    model_idx: IntArray
    pool_idx: IntArray
    test_idx: IntArray

    def label(self, index: int) -> str:
        return self.labels[int(self.y[index])]

    def item_id(self, index: int) -> str:
        return f"{self.name}-{index}"

    @property
    def x_test(self) -> FloatArray:
        return self.x[self.test_idx]

    @property
    def y_test(self) -> list[str]:
        return [self.label(int(i)) for i in self.test_idx]


def make_model() -> Deduplicated:
    """The model a team retrains from its feedback (standardised logistic regression)."""
    return Deduplicated(make_pipeline(StandardScaler(), LogisticRegression(max_iter=MAX_ITER)))


class Deduplicated(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """`estimator` fitted on the distinct (row, label) pairs weighted by their counts.

    Feedback repeats itself (many accounts label the same item); logistic regression's
    loss is a sum over rows, so this is the same model as fitting every row, found
    many times faster (what makes the per-source refits of the ART peer affordable).
    """

    def __init__(self, estimator: Pipeline) -> None:
        self.estimator = estimator

    def fit(self, x: FloatArray, y: npt.ArrayLike) -> Deduplicated:
        labels = np.asarray(y)
        classes, codes = np.unique(labels, return_inverse=True)
        joined = np.column_stack([np.asarray(x, dtype=np.float64), codes.astype(np.float64)])
        rows, counts = np.unique(joined, axis=0, return_counts=True)
        weight = counts.astype(np.float64)
        step = self.estimator.steps[-1][0]
        with threadpool_limits(limits=BLAS_THREADS):
            self.estimator.fit(
                rows[:, :-1],
                classes[rows[:, -1].astype(np.int64)],
                **{f"{step}__sample_weight": weight},
            )
        self.classes_ = self.estimator.classes_
        return self

    def predict(self, x: FloatArray) -> npt.NDArray[np.generic]:
        with threadpool_limits(limits=BLAS_THREADS):
            return np.asarray(self.estimator.predict(x))

    def predict_proba(self, x: FloatArray) -> FloatArray:
        with threadpool_limits(limits=BLAS_THREADS):
            return np.asarray(self.estimator.predict_proba(x), dtype=np.float64)


@cache
def load(name: DatasetName) -> Dataset:
    """The named data set with its splits (cached: the splits never change)."""
    if name == "digits":
        bunch = load_digits()
        labels = tuple(str(t) for t in bunch.target_names)
    elif name == "breast-cancer":
        bunch = load_breast_cancer()
        labels = tuple(str(t) for t in bunch.target_names)
    elif name == "wine":
        bunch = load_wine()
        labels = tuple(str(t) for t in bunch.target_names)
    else:  # pragma: no cover - guarded by the Literal and the CLI's choices
        raise ValueError(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    everything = np.arange(len(y))
    rest, test = train_test_split(
        everything, test_size=TEST_SHARE, random_state=SPLIT_SEED, stratify=y
    )
    model, pool = train_test_split(
        rest,
        train_size=MODEL_SHARE / (1 - TEST_SHARE),
        random_state=SPLIT_SEED,
        stratify=y[rest],
    )
    return Dataset(
        name=name,
        x=x,
        y=y,
        labels=labels,
        model_idx=np.sort(model),
        pool_idx=np.sort(pool),
        test_idx=np.sort(test),
    )


@dataclass(frozen=True)
class ProductModel:
    """The product's current model: what it says about each row of the data set."""

    predicted: tuple[str, ...]
    confidence: FloatArray
    fitted: Deduplicated
    labels: tuple[str, ...]

    def output(self, index: int) -> tuple[str, float]:
        return self.predicted[index], round(float(self.confidence[index]), 4)

    def output_for(self, features: FloatArray) -> tuple[str, float]:
        """What the model says about an input that is not a row of the data set."""
        return self.outputs_for(np.asarray(features, dtype=np.float64)[None, :])[0]

    def outputs_for(self, features: FloatArray) -> list[tuple[str, float]]:
        """What the model says about each row of `features` (one call for many inputs)."""
        proba = self.fitted.predict_proba(np.asarray(features, dtype=np.float64))
        best = proba.argmax(axis=1)
        return [
            (self.labels[int(self.fitted.classes_[b])], round(float(row[b]), 4))
            for row, b in zip(proba, best.tolist(), strict=True)
        ]


@cache
def product_model(name: DatasetName) -> ProductModel:
    """The product model trained on the clean `model` split, applied to every row."""
    data = load(name)
    model = make_model().fit(data.x[data.model_idx], data.y[data.model_idx])
    return outputs(model, data, data.x)


def outputs(model: Deduplicated, data: Dataset, x: FloatArray) -> ProductModel:
    proba = model.predict_proba(x)
    classes = model.classes_
    best = proba.argmax(axis=1)
    return ProductModel(
        predicted=tuple(data.labels[int(classes[b])] for b in best),
        confidence=np.asarray(proba.max(axis=1), dtype=np.float64),
        fitted=model,
        labels=data.labels,
    )
