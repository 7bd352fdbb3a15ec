"""The two tests behind ``zoomtrace changes``: Mann-Whitney U for durations, Fisher's exact test for error rates.

Small and exact enough for what they decide (a regression flag), without SciPy: the U test uses the normal
approximation with the tie correction, which is close once both samples hold 20 or more values (the
minimum sample size ``changes`` asks for is larger); Fisher's test sums the hypergeometric probabilities.
Both p-values are two-sided.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def mann_whitney_u(before: Sequence[float], after: Sequence[float]) -> tuple[float, float]:
    """``(U of after, two-sided p-value)``: how likely samples this far apart are when both come from one
    distribution. U above ``len(before) * len(after) / 2`` means ``after`` tends to be larger."""
    n1, n2 = len(before), len(after)
    if n1 == 0 or n2 == 0:
        raise ValueError("the Mann-Whitney U test needs values on both sides")
    pooled = sorted([(v, 0) for v in before] + [(v, 1) for v in after])
    rank_sum_after = 0.0
    ties = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        average_rank = (i + j) / 2 + 1  # ranks i+1 .. j+1 share their mean
        rank_sum_after += average_rank * sum(1 for k in range(i, j + 1) if pooled[k][1] == 1)
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    u = rank_sum_after - n2 * (n2 + 1) / 2
    n = n1 + n2
    mean = n1 * n2 / 2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:  # every value equal: nothing tells the samples apart
        return u, 1.0
    z = (abs(u - mean) - 0.5) / math.sqrt(variance)  # with continuity correction
    return u, min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2)))


def fisher_exact(a: int, b: int, c: int, d: int) -> float:
    """Two-sided p-value of Fisher's exact test for the table ``[[a, b], [c, d]]`` (e.g. errors and successes
    before, errors and successes after): the probability, with the margins fixed, of a table at most as likely
    as this one."""
    if min(a, b, c, d) < 0:
        raise ValueError("Fisher's exact test needs counts, not negative numbers")
    row1, col1, n = a + b, a + c, a + b + c + d
    low, high = max(0, col1 - (n - row1)), min(row1, col1)

    def log_p(x: int) -> float:
        return _log_choose(row1, x) + _log_choose(n - row1, col1 - x) - _log_choose(n, col1)

    observed = log_p(a)
    # Relative tolerance as in SciPy: tables whose probability equals the observed one up to rounding count.
    bound = observed + math.log1p(1e-7)
    total = math.fsum(math.exp(lp) for x in range(low, high + 1) if (lp := log_p(x)) <= bound)
    return min(1.0, total)


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
