"""Small statistics for the sampler tests (no SciPy needed): chi-square p-values, KL, total variation."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for X ~ chi-square(df): the regularised upper incomplete gamma Q(df/2, x/2)."""
    a, z = df / 2.0, x / 2.0
    if z <= 0:
        return 1.0
    if z < a + 1:  # series for P(a, z)
        term = total = 1.0 / a
        k = a
        while abs(term) > 1e-15 * abs(total):
            k += 1
            term *= z / k
            total += term
        return max(0.0, 1.0 - total * math.exp(-z + a * math.log(z) - math.lgamma(a)))
    # Lentz's continued fraction for Q(a, z)
    tiny = 1e-300
    b = z + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return h * math.exp(-z + a * math.log(z) - math.lgamma(a))


def chi_square(observed: Iterable[Hashable], expected: Mapping[Hashable, float], min_expected: float = 5.0) -> tuple[float, int, float]:
    """Pearson's goodness-of-fit of the draws ``observed`` to the probabilities ``expected``.

    Outcomes whose expected count is below ``min_expected`` are pooled into one bin; an observed
    outcome missing from ``expected`` makes the statistic infinite. Returns ``(statistic, df, p)``.
    """
    counts = Counter(observed)
    n = sum(counts.values())
    if any(k not in expected for k in counts):
        return math.inf, 0, 0.0
    bins: list[tuple[float, float]] = []
    pooled_e = pooled_o = 0.0
    for k, p in expected.items():
        e = n * p
        if e < min_expected:
            pooled_e += e
            pooled_o += counts.get(k, 0)
        else:
            bins.append((counts.get(k, 0), e))
    if pooled_e > 0:
        bins.append((pooled_o, pooled_e))
    stat = sum((o - e) ** 2 / e for o, e in bins if e > 0)
    df = max(1, len(bins) - 1)
    return stat, df, chi2_sf(stat, df)


def empirical(draws: Iterable[Hashable], weights: Iterable[float] | None = None) -> dict[Hashable, float]:
    """The (weighted) empirical distribution of ``draws``."""
    out: dict[Hashable, float] = {}
    draws = list(draws)
    ws = [1.0] * len(draws) if weights is None else list(weights)
    total = sum(ws)
    for d, w in zip(draws, ws):
        out[d] = out.get(d, 0.0) + w / total
    return out


def kl(p: Mapping[Hashable, float], q: Mapping[Hashable, float]) -> float:
    """KL(p || q) in nats (infinite when p has mass where q has none)."""
    total = 0.0
    for k, pk in p.items():
        if pk <= 0:
            continue
        qk = q.get(k, 0.0)
        if qk <= 0:
            return math.inf
        total += pk * math.log(pk / qk)
    return total


def tv(p: Mapping[Hashable, float], q: Mapping[Hashable, float]) -> float:
    """Total variation distance."""
    keys = set(p) | set(q)
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys)
