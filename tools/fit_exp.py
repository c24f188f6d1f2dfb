"""Polynomial Q with exp(r) = 1 + r + r**2 Q(r) on |r| <= ln(2) / 2, for float64.

exp and expm1 reduce x to r = x - k ln 2 (Cody-Waite); Q(r) = (e**r - 1 - r) / r**2
keeps Q(0) = 1/2 exact, and (Q(r) - 1/2) / r is fitted by mpmath.chebyfit
(near-minimax).  Its error reaches exp multiplied by |r|**3 <= 0.042.  Prints
the maximum error of the rounded coefficients relative to exp, in units of
2**-53, and the coefficients of Q, highest degree first, for _EXP_Q_FLOAT64
in fastact/_vmath.py.  Degree 12 overall gives about 0.01 of that unit, where
the Taylor polynomial of degree 13 it replaced gave 0.04.
Run: python tools/fit_exp.py
"""

import mpmath as mp

mp.mp.prec = 200
HALF_LN2 = mp.log(2) / 2
DEGREE = 12  # of exp's polynomial: Q has degree DEGREE - 2


def q1(r):
    if r == 0:
        return mp.mpf(1) / 6
    return ((mp.exp(r) - 1 - r) / r**2 - mp.mpf(1) / 2) / r


if __name__ == "__main__":
    span = HALF_LN2 * mp.mpf("1.0001")  # k is rounded to nearest: |r| <= ln(2) / 2 and a little rounding
    coefs, _ = mp.chebyfit(q1, [-span, span], DEGREE - 2, error=True)
    q = [float(c) for c in coefs] + [0.5]  # highest first, as the kernels' Horner/Estrin read them
    worst = mp.mpf(0)
    for i in range(4001):
        r = -span + 2 * span * i / 4000
        value = mp.mpf(0)
        for c in q:
            value = value * r + mp.mpf(c)
        worst = max(worst, abs((1 + r + r * r * value) / mp.exp(r) - 1))
    print("max error relative to exp, in units of 2**-53:", mp.nstr(worst * mp.mpf(2) ** 53, 3))
    print("(" + ", ".join(repr(c) for c in q) + ")")
