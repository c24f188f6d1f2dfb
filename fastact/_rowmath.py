"""Building blocks of the row ops (softmax, log_softmax, the cross-entropy rows).

The row ops' definitions in ``_rowops`` are written with these: reductions over
a row (maximum, float64 sums carried with their rounding errors), the same
over many rows at once ("lanes": lane b of a (outer, n, inner) array holds
one row), and the exact helpers several ops share (exp(a - b) without the
rounding error of a - b, the log of a sum of exps).  Nothing here is specific
to one op, and nothing here is a loop over a whole array: those are the loop
templates in ``_kernels``.

Functions marked ``row_function`` may split their reductions over vector
lanes (``LOOP_MATH``); ``scalar_function`` ones keep their strict flags inside
any loop.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._backend import row_function, scalar_function
from ._scalar import (
    exp_nonpositive,
    exp_of_quotient,
    fma,
    from_order_key,
    full_width,
    like,
    maximum,
    order_key,
)


@scalar_function
def exp_of_difference(a: Any, b: Any) -> Any:
    """exp(a - b) without the rounding error of a - b (a <= b).  The exponent is
    formed exactly (two-sum), since its rounding error would be multiplied by up
    to |a - b| in exp."""
    s = a - b
    bb = s - a
    err = (a - (s - bb)) + (-b - bb)
    e = exp_nonpositive(s)
    return e if e == 0 else fma(e, err, e)


@scalar_function  # its own strict flags: reassociated, the error term is zero
def compensated_add(total: Any, err: Any, v: Any) -> Any:
    """(total + v, err + the rounding error of total + v)  (Knuth's two-sum)."""
    s = total + v
    vv = s - total
    return s, err + ((total - (s - vv)) + (v - vv))


@scalar_function
def log_of_total(below: Any, ties: Any) -> Any:
    """log(sum of exp(x - max)) from the sum of the terms below the maximum and the
    count of terms equal to it.  With a unique maximum the sum is 1 + below, and
    log1p keeps the tiny part that the log of the rounded sum would lose (it is
    the whole answer for the maximum's own entry)."""
    return math.log1p(below) if ties == 1 else math.log(ties + below)


@scalar_function
def log_of_sum(below: Any, ties: Any) -> Any:
    """log_of_total's value as log(t) + e / t, t = ties + below rounded and e its
    rounding error: as exact where the sum is near 1 (a dominant label's tiny
    cross-entropy), within an ULP of log_of_total's elsewhere, and at the cost of
    libm's log, half its log1p's (the cross-entropy takes it: most rows sum
    under 2)."""
    total, err = compensated_add(np.float64(ties), 0.0, below)
    return math.log(total) + err / total


# A sum of exps less 1 (the maximum's own term) from this up keeps log1p(sum - 1)
# as exact as log_of_total's: the sum's rounding is then at most 2**-30 of it.
# Below it (one entry dominates) the ops sum the terms below the maximum apart.
LOG_SOFTMAX_MIN_BELOW = 2.0**-20

# --- along one contiguous row ------------------------------------------------------

ROW_SUM_BLOCK = 256


@row_function
def row_sum(a: Any) -> Any:
    """The float64 sum of a row.  Within blocks of ROW_SUM_BLOCK the sum is split
    over vector lanes; the block sums are added with their rounding errors
    carried along.  One split sum over a whole long row loses too much: 24 ULP
    in softmax at 65536 float64 terms, against 2 ULP this way."""
    full_width()
    total, err = 0.0, 0.0
    for blk in range((a.shape[0] + ROW_SUM_BLOCK - 1) // ROW_SUM_BLOCK):
        start = blk * ROW_SUM_BLOCK  # not range(0, n, step): LLVM vectorises neither loop then
        block = 0.0
        for i in range(min(ROW_SUM_BLOCK, a.shape[0] - start)):
            block += np.float64(a[start + i])
        total, err = compensated_add(total, err, block)
    return total + err


@row_function
def row_dot(a: Any, b: Any) -> Any:
    """The float64 dot product of two rows, summed as in row_sum."""
    full_width()
    total, err = 0.0, 0.0
    for blk in range((a.shape[0] + ROW_SUM_BLOCK - 1) // ROW_SUM_BLOCK):
        start = blk * ROW_SUM_BLOCK
        block = 0.0
        for i in range(min(ROW_SUM_BLOCK, a.shape[0] - start)):
            block += np.float64(a[start + i]) * np.float64(b[start + i])
        total, err = compensated_add(total, err, block)
    return total + err


@row_function
def row_kept_sum(a: Any, keep: Any, fill: Any) -> Any:
    """row_sum of a with its entries where not ``keep`` taken as ``fill``, the same bits
    as row_sum of the filled row; a[i] is read before the select (a plain load)."""
    full_width()
    total, err = 0.0, 0.0
    for blk in range((a.shape[0] + ROW_SUM_BLOCK - 1) // ROW_SUM_BLOCK):
        start = blk * ROW_SUM_BLOCK
        block = 0.0
        for i in range(min(ROW_SUM_BLOCK, a.shape[0] - start)):
            v = a[start + i]
            block += np.float64(v if keep[start + i] else fill)
        total, err = compensated_add(total, err, block)
    return total + err


@row_function
def row_kept_dot(a: Any, b: Any, keep: Any, fa: Any, fb: Any) -> Any:
    """row_dot of a and b with their entries where not ``keep`` taken as fa and fb, the
    same bits as row_dot of the filled rows."""
    full_width()
    total, err = 0.0, 0.0
    for blk in range((a.shape[0] + ROW_SUM_BLOCK - 1) // ROW_SUM_BLOCK):
        start = blk * ROW_SUM_BLOCK
        block = 0.0
        for i in range(min(ROW_SUM_BLOCK, a.shape[0] - start)):
            u, v, k = a[start + i], b[start + i], keep[start + i]
            block += np.float64(u if k else fa) * np.float64(v if k else fb)
        total, err = compensated_add(total, err, block)
    return total + err


@row_function
def row_exp_sum_below(x: Any, m: Any) -> Any:
    """(sum of exp(x - m) over the entries below m, count of entries equal to m),
    summed as in row_sum.  m is the row's maximum: the whole sum is ties + below."""
    full_width()
    below, err, ties = 0.0, 0.0, 0
    for blk in range((x.shape[0] + ROW_SUM_BLOCK - 1) // ROW_SUM_BLOCK):
        start = blk * ROW_SUM_BLOCK
        block = 0.0
        for k in range(min(ROW_SUM_BLOCK, x.shape[0] - start)):
            v = x[start + k]
            below_max = v != m  # a multiply by it, not a branch, keeps the loop vectorised
            block += np.float64(exp_of_difference(v, m)) * below_max
            ties += 1 - below_max
        below, err = compensated_add(below, err, block)
    return below + err, ties


@row_function
def row_exp_sum_below_scaled(x: Any, m: Any, t: Any, r: Any) -> Any:
    """row_exp_sum_below over x / t (t and r = 1 / t in x's dtype; see quotient_by), for
    the scaled forms of the row ops.  Its loop is row_exp_sum_below's, written out again:
    made from one factory (the reading of x a parameter), the plain loop vectorised
    otherwise, and float64 cross-entropy (reduction="none") moved by an ULP."""
    full_width()
    below, err, ties = 0.0, 0.0, 0
    for blk in range((x.shape[0] + ROW_SUM_BLOCK - 1) // ROW_SUM_BLOCK):
        start = blk * ROW_SUM_BLOCK
        block = 0.0
        for k in range(min(ROW_SUM_BLOCK, x.shape[0] - start)):
            v = quotient_by(x[start + k], t, r)
            below_max = v != m
            block += np.float64(exp_of_difference(v, m)) * below_max
            ties += 1 - below_max
        below, err = compensated_add(below, err, block)
    return below + err, ties


# --- blocks of short rows ------------------------------------------------------------
# A block is a flat run of whole rows of n; each row's value is repeated along its
# row in a buffer, so that the elementwise steps run over the block as one loop.


@row_function
def spread(values: Any, n: Any, out: Any) -> None:
    """out[b * n + j] = values[b]: each row's value along its row of n."""
    full_width()
    for b in range(values.shape[0]):
        for j in range(n):
            out[b * n + j] = values[b]


@row_function
def block_sums(a: Any, n: Any) -> Any:
    """The float64 sums of the rows of n in the flat block a."""
    full_width()
    sums = np.empty(a.shape[0] // n)
    for b in range(sums.shape[0]):
        total = 0.0
        for j in range(n):
            total += np.float64(a[b * n + j])
        sums[b] = total
    return sums


# --- lanes: many rows at once ----------------------------------------------------------
# An (outer, n, inner) array holds outer * inner rows of n, one per lane of the
# contiguous inner axis.  A phase handles lanes c0..c1 of outer index o over
# rows j0..j1, every loop along the lanes.  A lane adds its terms one after
# another with their rounding errors (compensated), where a row function adds
# vector partial sums over blocks: the two may differ by a few ULP.


@row_function
def lanes_add(total: Any, err: Any, v: Any) -> None:
    """total, err += v lane by lane, compensated (v of either float dtype)."""
    full_width()
    for b in range(total.shape[0]):
        total[b], err[b] = compensated_add(total[b], err[b], v[b])


# --- maxima, of x or of -x ------------------------------------------------------------
# softmax's maxima and exps, and softmin's: softmin is softmax of -x, whose maximum is
# -min(x).  The negation is read with x (exact, and free beside the memory traffic),
# never written to a copy.  ``negate`` is a constant of each compiled function.


def _maxima(negate: bool, suffix: str) -> Any:
    """(row_max, row_quotients_max, row_kept_max, block_max, block_exps, block_exps_scaled,
    lanes_max) over x, or over -x."""

    def row_max(x: Any) -> Any:
        """The NaN-propagating maximum of the row, as the maximum of its order keys
        (``order_key``): an integer reduction, which LLVM vectorises and splits over
        lanes, where a float maximum is a chain of selects (one thread, rows of 128 in
        cache on znver5: 19 -> 6 ns a row).  The loop runs over the whole row, x[0]
        again included: from 1, a row of a multiple of 8 left LLVM 7 elements for its
        scalar remainder loop."""
        full_width()
        k = order_key(-x[0] if negate else x[0])
        for i in range(x.shape[0]):
            k = max(k, order_key(-x[i] if negate else x[i]))
        return from_order_key(k)

    def row_quotients_max(x: Any, t: Any, r: Any, out: Any) -> Any:
        """out = x / t (quotient_by; r = 1 / t), returning its maximum: the first pass
        of the long-row forms of softmax(x, temperature=t), where x comes from memory.
        The quotients are computed while it streams in, and the passes after read them
        from cache (4096 x 4096 float32 on znver5: 1.15-1.24x the plain softmax's time
        with the quotients in the exp pass, 1.04-1.12x this way).  The loop takes
        quotient_of_finite, without quotient_by's select: a row whose maximum is then
        NaN (a NaN, an infinity or an overflowing quotient) is taken again with
        quotient_by."""
        full_width()
        m = quotient_by(-x[0] if negate else x[0], t, r)
        for i in range(x.shape[0]):
            q = quotient_of_finite(-x[i] if negate else x[i], t, r)
            out[i] = q
            m = maximum(m, q)
        if math.isnan(m):
            m = quotient_by(-x[0] if negate else x[0], t, r)
            for i in range(x.shape[0]):
                q = quotient_by(-x[i] if negate else x[i], t, r)
                out[i] = q
                m = maximum(m, q)
        return m

    def row_kept_max(x: Any, keep: Any) -> Any:
        """The maximum of x where keep (softmin: of -x), -inf where nothing is kept, as
        row_max's, over order keys: masked entries take the key of -inf.  The key is
        formed from x[i] before the select, so that x is read with plain loads."""
        full_width()
        f = order_key(like(x[0], -np.inf))
        k = f
        for i in range(x.shape[0]):
            key = order_key(-x[i] if negate else x[i])
            k = max(k, key if keep[i] else f)
        return from_order_key(k)

    def block_max(x: Any, n: Any) -> Any:
        """The maxima of the rows of n in the flat block x, each along its row.  It
        writes each maximum along its row as it goes: a maxima array then spread()
        was slower on (1e6, 10) float32 softmax."""
        full_width()
        m = np.empty_like(x)
        for b in range(x.shape[0] // n):
            k = order_key(-x[b * n] if negate else x[b * n])  # as row_max
            for j in range(n):
                k = max(k, order_key(-x[b * n + j] if negate else x[b * n + j]))
            v = from_order_key(k)
            for j in range(n):
                m[b * n + j] = v
        return m

    def block_exps(x: Any, n: Any, out: Any) -> Any:
        """out = exp(x - row max); returns the row maxima along their rows."""
        full_width()
        m = block_max(x, n)
        for i in range(x.shape[0]):
            out[i] = exp_of_difference(-x[i] if negate else x[i], m[i])
        return m

    def block_exps_scaled(x: Any, n: Any, out: Any, t: Any, r: Any) -> Any:
        """block_exps over x / t (r = 1 / t, quotient_by): the maxima of the quotients
        (the quotient of the maximum: it is monotone), then out = exp(x / t - max)."""
        full_width()
        m = block_max(x, n)
        for i in range(x.shape[0]):
            m[i] = quotient_by(m[i], t, r)
        for i in range(x.shape[0]):
            out[i] = exp_of_difference(quotient_by(-x[i] if negate else x[i], t, r), m[i])
        return m

    def block_exps_of_quotients(x: Any, n: Any, out: Any, t: Any, r: Any) -> Any:
        """out = exp((x - row max) / t), the quotient in exp's reduction (exp_of_quotient)
        in rows that allow it (quotient_fuses), x / t rounded first in the others.  One
        loop over the block where every row allows it, a loop per row otherwise.
        Returns a scratch array of x's size."""
        full_width()
        m = block_max(x, n)
        fuses = True
        for b in range(x.shape[0] // n):
            fuses &= quotient_fuses(m[b * n], t)
        if fuses:
            for i in range(x.shape[0]):
                out[i] = exp_of_quotient(-x[i] if negate else x[i], m[i], t, r)
            return m
        for b in range(x.shape[0] // n):
            mb = m[b * n]
            if quotient_fuses(mb, t):
                for i in range(b * n, b * n + n):
                    out[i] = exp_of_quotient(-x[i] if negate else x[i], mb, t, r)
            else:
                mq = quotient_by(mb, t, r)
                for i in range(b * n, b * n + n):
                    out[i] = exp_of_difference(quotient_by(-x[i] if negate else x[i], t, r), mq)
        return m

    def lanes_max(ins: Any, o: Any, c0: Any, c1: Any, j0: Any, j1: Any) -> Any:
        """The maxima of lanes c0..c1 of the first input over rows j0..j1 (j0 < j1)."""
        full_width()
        x = ins[0]
        m = x[o, j0, c0:c1].copy()
        if negate:
            for b in range(m.shape[0]):
                m[b] = -m[b]
        for j in range(j0 + 1, j1):
            xj = x[o, j, c0:c1]
            for b in range(m.shape[0]):
                m[b] = maximum(m[b], -xj[b] if negate else xj[b])
        return m

    functions = (row_max, row_quotients_max, row_kept_max, block_max, block_exps, block_exps_scaled,
                 block_exps_of_quotients, lanes_max)
    for fn in functions:  # module attributes of these names (the kernels' disk cache finds them there)
        fn.__name__ = fn.__qualname__ = fn.__name__ + suffix
    return tuple(row_function(fn) for fn in functions)


(row_max, row_quotients_max, row_kept_max, block_max, block_exps, block_exps_scaled, block_exps_of_quotients,
 lanes_max) = _maxima(False, "")
(row_max_negated, row_quotients_max_negated, row_kept_max_negated, block_max_negated, block_exps_negated,
 block_exps_scaled_negated, block_exps_of_quotients_negated, lanes_max_negated) = _maxima(True, "_negated")


@row_function
def no_max(ins: Any, o: Any, c0: Any, c1: Any, j0: Any, j1: Any) -> Any:
    """The maximum phase of an op that needs none: no lanes (an empty view, no allocation)."""
    full_width()
    return ins[0][o, j0, c0:c0]


# Grouped lanes (see _kernels): lanes b, b + period, b + 2 period, ... hold
# parts of one row.  Ungrouped lanes (period = width) return at once: the
# loops, although they would do nothing there, slowed short rows by 14%.


@row_function
def fold_max(m: Any, period: Any) -> None:
    """Give each part of a grouped lane the maximum of all its parts."""
    full_width()
    if m.shape[0] <= period:  # ungrouped, or no maxima (no_max)
        return
    for b in range(period):
        v = m[b]
        for k in range(b + period, m.shape[0], period):
            v = maximum(v, m[k])
        for k in range(b, m.shape[0], period):
            m[k] = v


@row_function
def fold_sum(total: Any, err: Any, period: Any) -> None:
    """As fold_max, for compensated sums: each part gets the sum of all parts."""
    full_width()
    if period == total.shape[0]:
        return
    for b in range(period):
        t, e = total[b], err[b]
        for k in range(b + period, total.shape[0], period):
            t, e = compensated_add(t, e, total[k])
            e += err[k]
        for k in range(b, total.shape[0], period):
            total[k], err[k] = t, e


@row_function
def combine_maxima(parts: Any) -> Any:
    """The maxima over the tasks' parts (split lanes), one row per task."""
    full_width()
    m = parts[0].copy()
    for t in range(1, parts.shape[0]):
        for b in range(m.shape[0]):
            m[b] = maximum(m[b], parts[t, b])
    return m


@row_function
def combine_sums(totals: Any, errs: Any) -> Any:
    """The compensated sums over the tasks' parts (split lanes), one row per task."""
    full_width()
    total, err = totals[0].copy(), errs[0].copy()
    for t in range(1, totals.shape[0]):
        lanes_add(total, err, totals[t])
        for b in range(err.shape[0]):
            err[b] += errs[t, b]
    return total, err


@row_function
def task_rows(t: Any, chunk: Any, rows: Any) -> Any:
    """The rows of task t: t * chunk up to (t + 1) * chunk, the last task's cut at rows."""
    full_width()
    return t * chunk, min(t * chunk + chunk, rows)


# --- where= and temperature= ----------------------------------------------------------
# A row op with a mask or a temperature runs its own row function on a scratch copy
# of each row (or block of short rows), made here: the row is in cache by then, so
# the copy costs a pass over the cache, not over memory.


@scalar_function  # its own strict flags: under arcp, a / b would become a times a rounded 1 / b
def quotient(a: Any, b: Any) -> Any:
    """a / b, correctly rounded."""
    return a / b


@scalar_function
def as_read(v: Any, t: Any, r: Any) -> Any:
    """v itself: how the plain forms of the row ops read x, where their scaled forms
    read quotient_by(x, t, r)."""
    return v


@scalar_function
def quotient_of_finite(a: Any, b: Any, r: Any) -> Any:
    """a / b, correctly rounded wherever it is normal, from r = quotient(1, b): a r, then
    corrected once by its exact remainder a - (a r) b (Markstein).  Three fused
    multiply-adds, where a vector division took softmax(x, temperature=t) to 1.21x the
    time of softmax(x) (4096 x 4096 float32).  NaN where a r is infinite or overflows
    (its remainder is then NaN): quotient_by's answer there."""
    q = a * r
    return fma(fma(-q, b, a), r, q)


@scalar_function
def quotient_fuses(m: Any, t: Any) -> Any:
    """Whether exp_of_quotient takes exp((x - m) / t) for a row of maximum m: m finite
    and under 2**100 in magnitude (x - m cannot overflow), t within 2**-64..2**64 (t ln 2
    and lo t, its constants, normal and finite).  A row that fails (a NaN, an infinity,
    a huge logit or temperature) divides first, as PyTorch's x / t; so does t = 1, whose
    quotients are x itself: the plain op's bits."""
    return abs(m) < like(m, 2.0**100) and t >= like(t, 2.0**-64) and t <= like(t, 2.0**64) and t != 1


@scalar_function
def quotient_by(a: Any, b: Any, r: Any) -> Any:
    """quotient_of_finite(a, b, r) wherever a r is finite, and a r elsewhere."""
    corrected = quotient_of_finite(a, b, r)
    return corrected if corrected == corrected else a * r


# Rows of at least this many entries run a forward's long-row scaled form, which takes
# x / t into out in its first pass (row_quotients_max); shorter rows divide as they
# read x.  Measured on znver5 only (float32, one thread, softmax(x, temperature=t)
# against softmax(x), same-run medians): rows of 128 took 1.44x the plain time the
# long-row way and 1.32x dividing as they read, rows of 512 1.53x against 1.15-1.24x,
# rows of 1024 1.10-1.21x against 1.27-1.38x.  Why short rows lose the long-row way
# is not known; a per-CPU value would come from issue 17's calibration (_tuning).
QUOTIENTS_FIRST_MIN = 1024


@row_function
def kept_quotients(x: Any, keep: Any, t: Any, fill: Any, out: Any) -> Any:
    """out = x / t where keep, else fill (t in x's precision: the quotient rounded as
    PyTorch's x / t; t == 1 divides nothing).  Returns whether any entry of out is
    not fill: with none, the row has nothing left to normalise.

    With t == 1 the test reads x[i] itself, not the selected value: x[i] read only by
    the select was folded into a masked blend, whose loads streamed x from memory at
    half the speed of a copy (znver5: softmax(x, where=m) 1.9x softmax(x) on 4096 x
    4096 float32)."""
    full_width()
    f = like(x[0], fill)
    live = False
    if t == 1:
        for i in range(x.shape[0]):
            v, k = x[i], keep[i]
            out[i] = v if k else f
            live |= k & (v != f)
    else:
        r = quotient(like(t, 1.0), t)
        for i in range(x.shape[0]):
            v = quotient_by(x[i], t, r) if keep[i] else f
            out[i] = v
            live |= v != f
    return live


@row_function
def kept_block_quotients(x: Any, keep: Any, r0: Any, t: Any, fill: Any, out: Any, live: Any) -> None:
    """kept_quotients over a flat block of short rows of n = keep.shape[1], the block's
    first row being row r0 (its mask row r0 % keep's rows): live[b] is row b's answer.
    One loop nest, where a call per row of 10 took a fifth of softmax's time."""
    full_width()
    n, period = keep.shape[1], keep.shape[0]
    f = like(x[0], fill)
    r = quotient(like(t, 1.0), t)
    for b in range(live.shape[0]):
        k = keep[(r0 + b) % period]
        any_live = False
        if t == 1:
            for j in range(n):
                v, kj = x[b * n + j], k[j]
                out[b * n + j] = v if kj else f
                any_live |= kj & (v != f)
        else:
            for j in range(n):
                v = quotient_by(x[b * n + j], t, r) if k[j] else f
                out[b * n + j] = v
                any_live |= v != f
        live[b] = any_live
