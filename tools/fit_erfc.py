"""Chebyshev coefficients of P(t) in erfc(z) = t exp(-z^2 + P(t)), t = 2 / (2 + z),
and the polynomial of float32's normal tail.

P is smooth on t in [0, 1] (z from infinity to 0).  Prints the coefficients
c_k of P(t) = sum c_k T_k(2t - 1), truncated where they drop below 2**-56, for
fastact/_scalar.py (ERFC_CHEBYSHEV).

Then float32's normal tail, computed in float32 arithmetic:
Phi(-w) exp(w^2 / 2) = (1 + p(q)) / (2 (1 + w)) on w in [0, W_MAX], with
q = (w - A) / (w + A) and p a polynomial of degree TAIL32_DEGREE in q
(p is small, |p| < 0.16, so its own rounding errors hardly reach 1 + p).
Printed as monomial coefficients of q, for PHI_TAIL32, with the maximum
error of the truncated series relative to 1 + p on a dense grid.
Needs mpmath.  Run: python tools/fit_erfc.py
"""

import mpmath as mp
import numpy as np

mp.mp.prec = 256


def p_of_t(t):
    if t == 0:
        return -mp.log(2 * mp.sqrt(mp.pi))  # the limit: erfc(z) ~ exp(-z^2) / (z sqrt(pi))
    z = 2 / t - 2
    return mp.log(mp.erfc(z) / t) + z * z


def chebyshev_coefficients(f, n):
    nodes = [mp.cos(mp.pi * (j + mp.mpf(1) / 2) / n) for j in range(n)]
    values = [f((u + 1) / 2) for u in nodes]
    coefs = []
    for k in range(n):
        s = mp.fsum(v * mp.cos(mp.pi * k * (j + mp.mpf(1) / 2) / n) for j, v in enumerate(values))
        coefs.append(2 * s / n if k else s / n)
    return coefs


# float32's tail: the constants of fastact/_scalar.py's PHI_TAIL32
TAIL32_A = 4.0
TAIL32_W_MAX = 14.6
TAIL32_DEGREE = 10


def tail32_p(q):
    w = TAIL32_A * (1 + q) / (1 - q)
    return mp.ncdf(-w) * mp.exp(w * w / 2) * 2 * (1 + w) - 1


def tail32_fit():
    """Monomial coefficients in q of the Chebyshev interpolant of p on [-1, q(W_MAX)]."""
    lo, hi = mp.mpf(-1), (TAIL32_W_MAX - mp.mpf(TAIL32_A)) / (TAIL32_W_MAX + TAIL32_A)
    n = TAIL32_DEGREE + 1
    series = chebyshev_coefficients(lambda t: tail32_p(lo + t * (hi - lo)), n)
    in_u = np.polynomial.chebyshev.cheb2poly(np.array(series, dtype=object))  # u = (2q - lo - hi) / (hi - lo)
    scale, shift = 2 / (hi - lo), -(lo + hi) / (hi - lo)
    monomial = [mp.mpf(0)] * n
    for k, c in enumerate(in_u):
        for j in range(k + 1):
            monomial[j] += c * mp.binomial(k, j) * scale**j * shift ** (k - j)
    grid = [lo + (hi - lo) * mp.mpf(i) / 4000 for i in range(4001)]
    worst = max(abs((mp.polyval(monomial[::-1], q) - tail32_p(q)) / (1 + tail32_p(q))) for q in grid)
    return [float(m) for m in monomial], worst


if __name__ == "__main__":
    kept = chebyshev_coefficients(p_of_t, 64)
    while abs(kept[-1]) < mp.mpf(2) ** -56:
        kept.pop()
    print(f"# P: {len(kept)} terms, first dropped |c| < 2**-56")
    print("(" + ", ".join(repr(float(c)) for c in kept) + ")")

    monomial, worst = tail32_fit()
    print(f"# float32 tail, A = {TAIL32_A}, W_MAX = {TAIL32_W_MAX}: degree {TAIL32_DEGREE} in q,"
          f" max error relative to 1 + p {float(worst):.3g} ({float(worst * 2**24):.3f} x 2**-24)")
    print("(" + ", ".join(repr(m) for m in monomial) + ")")
