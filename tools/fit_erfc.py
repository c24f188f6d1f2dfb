"""Chebyshev coefficients of P(t) in erfc(z) = t exp(-z^2 + P(t)), t = 2 / (2 + z),
and the polynomial of float32's normal tail.

P is smooth on t in [0, 1] (z from infinity to 0).  Prints the coefficients
c_k of P(t) = sum c_k T_k(2t - 1), truncated where they drop below 2**-56, for
fastact/_scalar.py (ERFC_CHEBYSHEV).

Then, for float32 (computed in float64, so only float32's accuracy is
needed): Q(w) = Phi(-w) exp(w^2 / 2) on w in [0, W_MAX], as a polynomial of
degree TAIL32_DEGREE in u = (a + b w) / (C + w), the map that sends w = 0 to
u = 1 and w = W_MAX to u = -1.  Printed as monomial coefficients of u, for
PHI_TAIL32, with the maximum relative error of the truncated series on a
dense grid.  Needs mpmath.  Run: python tools/fit_erfc.py
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
TAIL32_C = 3.5
TAIL32_W_MAX = 15.0
TAIL32_DEGREE = 10


def tail32_q(w):
    return mp.ncdf(-w) * mp.exp(w * w / 2)


def tail32_w_of_u(u):
    """The inverse of u = (a + b w) / (C + w): t = C / (C + w) runs linearly with u."""
    t_min = mp.mpf(TAIL32_C) / (TAIL32_C + TAIL32_W_MAX)
    t = t_min + (u + 1) / 2 * (1 - t_min)
    return TAIL32_C / t - TAIL32_C


if __name__ == "__main__":
    kept = chebyshev_coefficients(p_of_t, 64)
    while abs(kept[-1]) < mp.mpf(2) ** -56:
        kept.pop()
    print(f"# P: {len(kept)} terms, first dropped |c| < 2**-56")
    print("(" + ", ".join(repr(float(c)) for c in kept) + ")")

    series = chebyshev_coefficients(lambda t: tail32_q(tail32_w_of_u(2 * t - 1)), 64)[:TAIL32_DEGREE + 1]
    # NumPy's conversion, run on the mpmath numbers (an object array) for their precision
    monomial = [float(m) for m in np.polynomial.chebyshev.cheb2poly(np.array(series, dtype=object))]
    grid = [mp.mpf(-1) + mp.mpf(2) * i / 4000 for i in range(4001)]
    worst = max(abs(mp.polyval(monomial[::-1], u) / tail32_q(tail32_w_of_u(u)) - 1) for u in grid)
    print(f"# float32 tail, C = {TAIL32_C}, W_MAX = {TAIL32_W_MAX}: degree {TAIL32_DEGREE} in u,"
          f" max relative error {float(worst):.3g} ({float(worst * 2**24):.3f} x 2**-24)")
    print("(" + ", ".join(repr(m) for m in monomial) + ")")
