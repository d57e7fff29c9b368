"""Feature-space label consistency (`consistency.knn`): label sanitisation against
label flipping (Paudice et al. 2018). A label that disagrees with the labels of its k
nearest admitted neighbours is suspect.

The reference set is bounded and per namespace: an optional seed (the product's own
trusted training data, `seed_reference`) plus the admitted events of the recent
window, newest kept, refreshed by the analyser. It is stored in Redis as one npz blob
with a version token, new at each store (a counter would start again after a Redis
restart or flush and pass off a worker's old reference as the new one); each worker
keeps the fitted `NearestNeighbors` for the version it last saw, so a batch costs one
GET of the version and one vectorised query.
Features are scaled by the reference's standard deviation (a feature constant in the
reference keeps its scale, so a trigger pixel shifts every distance alike and does not
change which neighbours are nearest).
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import redis
from sklearn import get_config
from sklearn.metrics._pairwise_distances_reduction import ArgKmin
from sklearn.neighbors import NearestNeighbors
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

from feedbackguard import keys
from feedbackguard.policy import Knn

CODE = "consistency.knn"
FloatArray = npt.NDArray[np.float64]


def _encode(features: FloatArray, labels: Sequence[str]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x=np.asarray(features, dtype=np.float32), y=np.asarray(labels, dtype=np.str_))
    return buf.getvalue()


def _decode(raw: bytes) -> tuple[FloatArray, npt.NDArray[np.str_]]:
    with np.load(io.BytesIO(raw), allow_pickle=False) as data:
        return data["x"].astype(np.float64), data["y"]


def seed_reference(
    r: redis.Redis[bytes], namespace: str, features: FloatArray, labels: Sequence[str]
) -> None:
    """Seed the reference with trusted labelled inputs (value keys, see
    `graph.window.value_key`); they stay in it, the admitted events are added."""
    if len(features) != len(labels):
        raise ValueError("one label per feature row")
    r.set(keys.knn_seed(namespace), _encode(np.asarray(features, dtype=np.float64), labels))
    store_reference(r, namespace, np.asarray(features, dtype=np.float64), labels)


def seed(r: redis.Redis[bytes], namespace: str) -> tuple[FloatArray, npt.NDArray[np.str_]] | None:
    raw = r.get(keys.knn_seed(namespace))
    return None if raw is None else _decode(raw)


def store_reference(
    r: redis.Redis[bytes], namespace: str, features: FloatArray, labels: Sequence[str]
) -> None:
    pipe = r.pipeline(transaction=True)
    pipe.set(keys.knn_reference(namespace), _encode(features, labels))
    pipe.set(keys.knn_version(namespace), uuid.uuid4().hex)
    pipe.execute()


@dataclass(frozen=True, eq=False)
class Reference:
    """A fitted reference set: scaled features, labels, the fitted index."""

    labels: npt.NDArray[np.str_]
    mean: FloatArray
    scale: FloatArray
    index: NearestNeighbors

    @classmethod
    def fit(cls, features: FloatArray, labels: npt.NDArray[np.str_], k: int) -> Reference:
        mean = features.mean(axis=0)
        std = features.std(axis=0)
        scale = np.where(std > 1e-9, std, 1.0)
        index = NearestNeighbors(n_neighbors=min(k, len(features))).fit((features - mean) / scale)
        return cls(labels=labels, mean=mean, scale=scale, index=index)

    @property
    def width(self) -> int:
        return int(self.mean.shape[0])

    def disagreement(self, features: FloatArray, values: Sequence[str]) -> FloatArray:
        """Per row: the share of its nearest reference neighbours with another label."""
        if len(features) == 0:
            return np.empty(0)
        neighbours = self.index.kneighbors(
            (features - self.mean) / self.scale, return_distance=False
        )
        same = self.labels[neighbours] == np.asarray(values, dtype=np.str_)[:, None]
        return np.asarray(1.0 - same.mean(axis=1), dtype=np.float64)

    def _neighbours(self, scaled: FloatArray, queries: int) -> npt.NDArray[np.int64]:
        """The k nearest reference rows of each row of `scaled`, as `kneighbors` finds
        them in a query of `queries` rows. Among equally distant rows the search keeps
        those its split of the work meets first, and `kneighbors` splits a query of
        over 2,048 rows (or of more rows than the reference) by query rows, a smaller
        one across the reference: searched with the split the whole query would get,
        a row finds what it finds in the whole query, whatever else is asked with it."""
        fit_x = self.index._fit_X
        metric = self.index.effective_metric_
        if not ArgKmin.is_usable_for(scaled, fit_x, metric):
            return np.asarray(self.index.kneighbors(scaled, return_distance=False))
        by_query = _split_by_query(queries, len(self.labels))
        return np.asarray(
            ArgKmin.compute(
                X=scaled,
                Y=fit_x,
                k=self.index.n_neighbors,
                metric=metric,
                metric_kwargs=self.index.effective_metric_params_,
                strategy="parallel_on_X" if by_query else "parallel_on_Y",
                return_distance=False,
            )
        )

    def disagreement_once(self, features: FloatArray, values: Sequence[str]) -> FloatArray:
        """What `disagreement` gives, querying each distinct feature row once: feedback
        names items, and the events of one item carry its features, so a window holds
        few distinct rows (a row's neighbours do not depend on the rows queried with
        it; each row keeps its own value)."""
        if len(features) == 0:
            return np.empty(0)
        # Rows are told apart by their bytes (a dict: several times faster than
        # `np.unique(axis=0)`'s sort); byte-identical rows are the same query.
        matrix = np.ascontiguousarray(features, dtype=np.float64)
        first: dict[bytes, int] = {}
        inverse = np.fromiter(
            (first.setdefault(row.tobytes(), len(first)) for row in matrix),
            dtype=np.int64,
            count=len(matrix),
        )
        distinct = np.empty((len(first), matrix.shape[1]))
        distinct[inverse] = matrix
        rows = self._neighbours((distinct - self.mean) / self.scale, len(matrix))[inverse]
        same = self.labels[rows] == np.asarray(values, dtype=np.str_)[:, None]
        return np.asarray(1.0 - same.mean(axis=1), dtype=np.float64)


def _split_by_query(queries: int, reference: int) -> bool:
    """Whether `kneighbors` splits a search of `queries` rows by query rows (its
    "auto" strategy, `sklearn.metrics._pairwise_distances_reduction`)."""
    if reference < queries:
        return True
    chunk = int(get_config().get("pairwise_dist_chunk_size", 256))
    return 4 * chunk * int(_openmp_effective_n_threads()) < queries


_cache: dict[str, tuple[bytes | None, int, Reference | None]] = {}
_cache_lock = threading.Lock()


def current(r: redis.Redis[bytes], namespace: str, policy: Knn) -> Reference | None:
    """The namespace's fitted reference (None while it has fewer than min_reference)."""
    version = r.get(keys.knn_version(namespace))
    with _cache_lock:
        cached = _cache.get(namespace)
        if cached is not None and cached[0] == version and cached[1] == policy.k:
            return cached[2]
    raw = r.get(keys.knn_reference(namespace)) if version is not None else None
    fitted: Reference | None = None
    if raw is not None:
        features, labels = _decode(raw)
        if len(features) >= policy.min_reference:
            fitted = Reference.fit(features, labels, policy.k)
    with _cache_lock:
        _cache[namespace] = (version, policy.k, fitted)
    return fitted


def forget(namespace: str) -> None:
    """Drop the namespace's cached reference (a dry run's scratch namespace, gone)."""
    with _cache_lock:
        _cache.pop(namespace, None)


def scores(disagreement: FloatArray, policy: Knn) -> FloatArray:
    """Score per row: 0 below `min_disagreement`, then from max_score/2 up to max_score."""
    span = max(1.0 - policy.min_disagreement, 1e-9)
    strength = np.clip((disagreement - policy.min_disagreement) / span, 0.0, 1.0)
    out = policy.max_score * (0.5 + 0.5 * strength)
    return np.where(disagreement >= policy.min_disagreement, np.round(out, 2), 0.0)


def detail(disagreement: float, k: int) -> str:
    return f"{disagreement:.0%} of its {k} nearest admitted neighbours have another label"
