"""The statistical tests behind ``zoomtrace changes`` (``zoomtrace.read.stats``), against published values and
their definitions."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zoomtrace.read.stats import fisher_exact, mann_whitney_u


def test_mann_whitney_matches_the_published_asymptotic_example() -> None:
    # SciPy's documentation of mannwhitneyu (method="asymptotic"): U = 17, p = 0.11134688653314041.
    males, females = [19, 22, 16, 29, 24], [20, 11, 17, 12]
    u, p = mann_whitney_u(females, males)
    assert u == 17
    assert p == pytest.approx(0.11134688653314041, rel=1e-9)


@given(
    st.lists(st.integers(0, 20), min_size=1, max_size=30),
    st.lists(st.integers(0, 20), min_size=1, max_size=30),
)
def test_u_counts_the_pairs_where_after_is_larger(before: list[int], after: list[int]) -> None:
    u, p = mann_whitney_u(before, after)
    by_pairs = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(after, before))
    assert u == pytest.approx(by_pairs)
    assert 0 <= p <= 1
    # Swapping the samples mirrors U and keeps p.
    u_swapped, p_swapped = mann_whitney_u(after, before)
    assert u + u_swapped == pytest.approx(len(before) * len(after))
    assert p_swapped == pytest.approx(p)


def test_identical_samples_are_not_different() -> None:
    assert mann_whitney_u([5] * 40, [5] * 40)[1] == 1.0
    assert mann_whitney_u(list(range(50)), list(range(50)))[1] == pytest.approx(1.0)


def test_a_clear_shift_is_significant() -> None:
    u, p = mann_whitney_u(list(range(100)), [x + 60 for x in range(100)])
    assert u > 100 * 100 / 2
    assert p < 1e-10


def test_fisher_matches_published_values() -> None:
    # Fisher's tea-tasting experiment: p = 0.4857 (two-sided), as R's fisher.test reports it.
    assert fisher_exact(3, 1, 1, 3) == pytest.approx(0.4857142857, rel=1e-6)
    # R: fisher.test(matrix(c(1, 11, 9, 3), 2)) p-value = 0.002759
    assert fisher_exact(1, 9, 11, 3) == pytest.approx(0.0027594, rel=1e-4)


@given(st.integers(0, 12), st.integers(0, 12), st.integers(0, 12), st.integers(0, 12))
def test_fisher_sums_the_tables_no_more_likely_than_the_observed_one(a: int, b: int, c: int, d: int) -> None:
    row1, col1, n = a + b, a + c, a + b + c + d

    def probability(x: int) -> float:
        return math.comb(row1, x) * math.comb(n - row1, col1 - x) / math.comb(n, col1)

    tables = [x for x in range(0, min(row1, col1) + 1) if 0 <= col1 - x <= n - row1]
    observed = probability(a)
    expected = sum(probability(x) for x in tables if probability(x) <= observed * (1 + 1e-7))
    assert fisher_exact(a, b, c, d) == pytest.approx(min(1.0, expected), rel=1e-9, abs=1e-12)


def test_counts_must_be_counts() -> None:
    with pytest.raises(ValueError, match="counts"):
        fisher_exact(-1, 2, 3, 4)
    with pytest.raises(ValueError, match="both sides"):
        mann_whitney_u([], [1])
