"""Small-sample statistics for multi-seed comparisons: mean ± std and paired t-intervals.

No TensorFlow; scipy is used for the t quantile when installed, otherwise a table of the
two-sided 95% Student-t critical values (exact to 3 decimals, the precision any report shows).
"""

import math
from typing import Dict, Optional, Sequence

# Two-sided 95% critical values t_{0.975, df}, df = 1..30 (standard tables).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_critical_95(df: int) -> float:
    """The two-sided 95% Student-t critical value for ``df`` degrees of freedom (df >= 1)."""
    if df < 1:
        raise ValueError(f'a t-interval needs at least 1 degree of freedom, got {df}')
    try:
        from scipy import stats as scipy_stats
        return float(scipy_stats.t.ppf(0.975, df))
    except ImportError:
        if df <= len(_T975):
            return _T975[df - 1]
        return 1.960 + 2.4 / df  # Within 0.003 of the exact value above df = 30.


def mean_std(values: Sequence[float]) -> Dict[str, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value).

    Args:
      values: one number per seed.

    Returns:
      ``{'mean', 'std', 'n'}``.
    """
    n = len(values)
    if n == 0:
        raise ValueError('no values to summarize')
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {'mean': mean, 'std': std, 'n': n}


def paired_difference(a: Sequence[float], b: Sequence[float]) -> Dict[str, Optional[float]]:
    """The paired difference ``a - b`` with its 95% t-interval.

    Seeds pair the runs (same initial weights, same batches), so the interval is on the mean
    of the per-seed differences, with ``n - 1`` degrees of freedom.

    Args:
      a: one number per seed.
      b: one number per seed, the same length as ``a``.

    Returns:
      ``{'mean', 'std', 'n', 'ci95_low', 'ci95_high'}``; the interval bounds are None for a
      single seed (no spread to estimate).

    Raises:
      ValueError: if the lengths differ or are zero.
    """
    if len(a) != len(b):
        raise ValueError(f'paired values need equal lengths, got {len(a)} and {len(b)}')
    d = mean_std([x - y for x, y in zip(a, b)])
    if d['n'] < 2:
        return dict(d, ci95_low=None, ci95_high=None)
    half = t_critical_95(d['n'] - 1) * d['std'] / math.sqrt(d['n'])
    return dict(d, ci95_low=d['mean'] - half, ci95_high=d['mean'] + half)
