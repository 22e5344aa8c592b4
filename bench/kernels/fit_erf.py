#!/usr/bin/env python3
"""Fits the rational erf approximation the int8 kernels' GELU uses (kernels_internal.h).

erf(z) ≈ z·P(z²)/Q(z²) on |z| < 3.925 (±1 beyond: 1 − erf(3.925) < 3e-8), P and Q of degree 5,
Q(0) = 1. Linearised least squares on P(t) − f(t)·Q(t) with f = erf(z)/z, weighted by z/Q_prev
(the absolute error in erf), with Lawson reweighting towards the minimax solution. The float32
coefficients are then evaluated exactly as the C code does (float32 Horner, z·(P/Q)) and the GELU
error against float64 is printed. Needs numpy and scipy (tooling only; the package never runs this).

    python3 bench/kernels/fit_erf.py
"""
import numpy as np
from scipy.special import erf

LIMIT = 3.925
P_DEGREE, Q_DEGREE, ITERATIONS = 5, 5, 150


def fit():
    z = np.linspace(0, LIMIT, 40000)[1:]
    t = z * z
    f = erf(z) / z
    weights = np.ones_like(t)
    q_previous = np.ones_like(t)
    best = None
    for _ in range(ITERATIONS):
        design = np.concatenate([
            np.stack([t**i for i in range(P_DEGREE + 1)], 1),
            -(f[:, None] * np.stack([t**j for j in range(1, Q_DEGREE + 1)], 1)),
        ], 1)
        row_weight = (z / q_previous) * np.sqrt(weights)
        solution, *_ = np.linalg.lstsq(design * row_weight[:, None], f * row_weight, rcond=None)
        p = solution[:P_DEGREE + 1]
        q = np.concatenate([[1.0], solution[P_DEGREE + 1:]])
        q_values = np.polyval(q[::-1], t)
        error = z * np.polyval(p[::-1], t) / q_values - erf(z)
        q_previous = q_values
        worst = np.max(np.abs(error))
        if best is None or worst < best[0]:
            best = (worst, p.copy(), q.copy())
        weights = np.maximum(weights * np.abs(error) / worst, 1e-12)
        weights = weights / weights.sum() * len(weights)
    return best


def gelu_float32(x, p32, q32):
    """The C code's operation order in float32 (see beats_gelu_element)."""
    f = np.float32
    z = (x * f(0.70710678118654752)).astype(f)
    zc = np.minimum(np.maximum(z, f(-LIMIT)), f(LIMIT))
    t = (zc * zc).astype(f)
    p = np.full_like(t, p32[-1])
    for c in p32[-2::-1]:
        p = ((p * t).astype(f) + c).astype(f)
    q = np.full_like(t, q32[-1])
    for c in q32[-2::-1]:
        q = ((q * t).astype(f) + c).astype(f)
    e = (zc * (p / q).astype(f)).astype(f)
    e = np.where(zc >= f(LIMIT), f(1), np.where(zc <= f(-LIMIT), f(-1), e))
    return ((f(0.5) * x).astype(f) * (f(1) + e).astype(f)).astype(f)


if __name__ == "__main__":
    worst, p, q = fit()
    p32, q32 = p.astype(np.float32), q.astype(np.float32)
    print(f"float64 max |erf error| on [0, {LIMIT}]: {worst:.3g}")
    print("P:", ", ".join(repr(float(v)) for v in p32))
    print("Q:", ", ".join(repr(float(v)) for v in q32))
    x = np.linspace(-10, 10, 4000001).astype(np.float32)
    exact = 0.5 * x.astype(np.float64) * (1 + erf(x.astype(np.float64) / np.sqrt(2)))
    error = np.abs(gelu_float32(x, p32, q32) - exact)
    scaled = error / np.maximum(1, np.abs(x))
    print(f"gelu max abs error on [-10, 10]: {error.max():.3g} at x = {x[error.argmax()]:.4f}; "
          f"max error / max(1, |x|): {scaled.max():.3g}")
