"""Chebyshev coefficients of P(t) in erfc(z) = t exp(-z^2 + P(t)), t = 2 / (2 + z),
and of Q(t) = exp(P(t)) in erfc(z) = t exp(-z^2) Q(t).

P and Q are smooth on t in [0, 1] (z from infinity to 0).  Prints the
coefficients c_k of P(t) = sum c_k T_k(2t - 1), then Q's, each truncated where
they drop below 2**-60, for fastact/_scalar.py (ERFC_CHEBYSHEV,
ERFC_Q_CHEBYSHEV).  Needs mpmath.  Run: python tools/fit_erfc.py
"""

import mpmath as mp

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


def q_of_t(t):
    return mp.exp(p_of_t(t))


if __name__ == "__main__":
    for name, fn in (("P", p_of_t), ("Q", q_of_t)):
        kept = chebyshev_coefficients(fn, 64)
        while abs(kept[-1]) < mp.mpf(2) ** -60:
            kept.pop()
        print(f"# {name}: {len(kept)} terms, first dropped |c| < 2**-60")
        print("(" + ", ".join(repr(float(c)) for c in kept) + ")")
