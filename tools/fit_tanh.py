"""Polynomial P with tanh(x) = x + x**3 P(x**2) for |x| <= 0.9, per dtype.

P is fitted on s = x**2 in [0, 0.81] by mpmath.chebyfit (near-minimax);
prints the coefficients, lowest degree first, for fastact/_activations.py.
Run: python tools/fit_tanh.py
"""

import mpmath as mp

mp.mp.prec = 200
LIMIT = mp.mpf("0.9")


def g(s):
    if s == 0:
        return mp.mpf(-1) / 3
    x = mp.sqrt(s)
    return (mp.tanh(x) - x) / (s * x)


if __name__ == "__main__":
    for name, degree in (("float32", 6), ("float64", 14)):
        coefs, err = mp.chebyfit(g, [0, LIMIT**2], degree + 1, error=True)
        print(name, "max error of P:", mp.nstr(err, 3))
        print("(" + ", ".join(repr(float(c)) for c in reversed(coefs)) + ")")
