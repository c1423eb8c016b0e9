"""pass@k over a theorem set from several independent searches per theorem.

A theorem searched ``n`` times with ``c`` proofs is proved within ``k`` searches with
probability ``1 - C(n - c, k) / C(n, k)``: the unbiased estimator of Chen et al. (2021,
"Evaluating Large Language Models Trained on Code", eq. 1), computed as a product so that
large ``n`` stays exact in floating point. The set's pass@k is the mean over every theorem
of the set (a theorem never searched counts 0), with a 95% percentile-bootstrap interval
over theorems.

Searches cancelled because another search of the theorem had found a proof are left out
of ``n``: the proving search is counted, and the estimate for k < N is then an upper
estimate for the theorems proved (the cancelled searches might have failed). pass@N is
exact: a theorem is proved within N searches when any of them proved it.

    table = pass_at_k_table([(4, 1), (4, 0), (2, 1)], num_theorems=3, max_k=4)
    table["1"]  # {"estimate": 0.25, "low": ..., "high": ...}
"""

from __future__ import annotations

from typing import Sequence

BOOTSTRAP_SAMPLES = 1000
DENSE_K = 64  # every k up to here; beyond, powers of two and N itself


def pass_at_k(n: int, c: int, k: int) -> float:
    """The probability that ``k`` of ``n`` searches, ``c`` of which proved the theorem,
    include a proof: ``1 - C(n-c, k) / C(n, k)``; 1 when fewer than ``k`` failed
    (with n < k: 1 if any search proved it, else 0).

    >>> pass_at_k(4, 1, 1), pass_at_k(4, 1, 4), pass_at_k(4, 0, 2)
    (0.25, 1.0, 0.0)
    """
    if c <= 0:
        return 0.0
    if n - c < k:
        return 1.0
    failing = 1.0
    for i in range(n - c + 1, n + 1):  # C(n-c, k)/C(n, k) = prod (1 - k/i) over i in n-c+1..n
        failing *= 1.0 - k / i
    return 1.0 - failing


def k_values(max_k: int) -> list[int]:
    """The k of a pass@k curve: 1..64, then powers of two, then ``max_k``."""
    ks = list(range(1, min(max_k, DENSE_K) + 1))
    k = DENSE_K * 2
    while k < max_k:
        ks.append(k)
        k *= 2
    if max_k > DENSE_K:
        ks.append(max_k)
    return ks


def pass_at_k_table(
    counts: Sequence[tuple[int, int]], num_theorems: int, max_k: int, seed: int = 0
) -> dict[str, dict[str, float]]:
    """``{"k": {"estimate", "low", "high"}}`` for each k of ``k_values(max_k)``: the mean of
    ``pass_at_k`` over the set (``counts`` holds (n, c) for each theorem searched; the other
    theorems of ``num_theorems`` count 0) and its 95% bootstrap interval."""
    theorems = max(num_theorems, len(counts))
    if theorems == 0 or max_k < 1:
        return {}
    import numpy as np

    ks = k_values(max_k)
    rows = np.zeros((theorems, len(ks)))
    for i, (n, c) in enumerate(counts):
        rows[i] = [pass_at_k(n, c, k) for k in ks]
    rng = np.random.default_rng(seed)
    means = np.concatenate(
        [
            rows[rng.integers(0, theorems, (chunk, theorems))].mean(axis=1)
            for chunk in _chunks(BOOTSTRAP_SAMPLES, max(1, 2_000_000 // (theorems * len(ks))))
        ]
    )
    low, high = np.percentile(means, [2.5, 97.5], axis=0)
    estimate = rows.mean(axis=0)
    return {
        str(k): {"estimate": float(estimate[j]), "low": float(low[j]), "high": float(high[j])} for j, k in enumerate(ks)
    }


def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]
