#!/usr/bin/env python3
"""Reference values for Tests/MonitoringTests: PSI, Jensen-Shannon and RBF-kernel MMD^2 with
the median-heuristic bandwidth, computed independently with numpy (and scipy's
jensenshannon when it is installed) on the small fixture the Swift tests rebuild from the
same formulas. Run: /work/main/.venv-ref/bin/python scripts/monitor_reference.py
The printed numbers are the goldens in MonitoringTests/ReferenceValueTests.swift."""
import math

import numpy as np

EPS = 1e-4  # psiEpsilon in Sources/Monitoring/Divergences.swift


def psi(expected, actual):
    e = np.asarray(expected, float); a = np.asarray(actual, float)
    e = np.maximum(e / e.sum(), EPS); a = np.maximum(a / a.sum(), EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def js_bits(p, q):
    p = np.asarray(p, float); q = np.asarray(q, float)
    p = p / p.sum(); q = q / q.sum(); m = (p + q) / 2
    def kl(x, y):
        mask = x > 0
        return float(np.sum(x[mask] * np.log2(x[mask] / y[mask])))
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def fixture():
    ref = np.array([[math.sin(i), math.cos(2 * i), 0.5 * math.sin(3 * i)] for i in range(20)], dtype=np.float32)
    cur = np.array([[math.sin(i) + 0.5, math.cos(2 * i), 0.5 * math.sin(3 * i) + 0.2] for i in range(15)], dtype=np.float32)
    return ref.astype(np.float64), cur.astype(np.float64)


def mmd2_unbiased(x, y):
    z = np.vstack([x, y])
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    iu = np.triu_indices(len(z), 1)
    dist = np.sqrt(np.sort(d2[iu]))
    sigma = dist[(len(dist) - 1) // 2]  # lower median, as the Swift code
    k = np.exp(-d2 / (2 * sigma ** 2))
    m, n = len(x), len(y)
    kxx = k[:m, :m]; kyy = k[m:, m:]; kxy = k[:m, m:]
    value = (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()
    return float(value), float(sigma)


if __name__ == "__main__":
    counts_e = [30, 25, 20, 15, 10, 0]
    counts_a = [10, 15, 20, 25, 20, 10]
    print(f"psi        {psi(counts_e, counts_a):.15g}")
    print(f"js_bits    {js_bits(counts_e, counts_a):.15g}")
    try:
        from scipy.spatial.distance import jensenshannon
        print(f"scipy js   {jensenshannon(counts_e, counts_a, base=2) ** 2:.15g}")
    except ImportError:
        print("scipy js   (scipy not installed)")
    x, y = fixture()
    value, sigma = mmd2_unbiased(x, y)
    print(f"mmd2       {value:.15g}")
    print(f"sigma      {sigma:.15g}")
