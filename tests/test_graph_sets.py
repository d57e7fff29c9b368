"""Integer set helpers against numpy's own (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from feedbackguard.graph.sets import member, unique

codes = hnp.arrays(np.int64, st.integers(0, 200), elements=st.integers(-(2**62), 2**62))


@given(codes)
def test_unique_matches_numpy(values: np.ndarray) -> None:
    assert np.array_equal(unique(values), np.unique(values))


@given(codes, codes)
def test_member_matches_isin(values: np.ndarray, pool: np.ndarray) -> None:
    assert np.array_equal(member(values, np.sort(pool)), np.isin(values, pool))
