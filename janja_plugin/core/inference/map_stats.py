"""Whole-map numbers of a float32 map read back in row blocks: exact quantiles, counts, histograms.

A streamed map (streamed_prospectivity) is never in memory, but its class breaks (prediction-area
thresholds), its constant-map check and its top-5 % threshold are quantiles of all its cells. Here
they are found exactly, equal to numpy's np.percentile / np.quantile ('linear') on the whole array:
the needed order statistics are selected by radix on the float32 bit patterns (11, 11 and 10 bits:
three passes over the map, each holding one 2,048-bin histogram per wanted order statistic), then
interpolated with numpy's own formula. Cost: 3 reads of the map per batch of quantiles; memory: 16 KB
per wanted order statistic plus one block of rows.

`source(r0, r1)` returns rows [r0, r1) as float32 with NaN where there is no value.

constant_map is the constant-map check of every streamed run on such a source; RunningStats gathers the
numbers that need no read-back (count, min/max, histogram, values at given cells) while the rows are written.
"""

import numpy as np

from .distribution import CONSTANT_SPREAD

BLOCK_ROWS = 256
_SHIFTS = ((21, 11), (10, 11), (0, 10))  # (shift, bits) of the three radix digits, most significant first


def _keys(values):
    """uint32 keys that sort like the float32 values (IEEE order; -0.0 just below 0.0)."""
    u = np.ascontiguousarray(values, np.float32).view(np.uint32)
    return np.where(u >> 31, ~u, u | np.uint32(0x80000000)).astype(np.uint32)


def _value(key):
    key = np.uint32(key)
    u = np.uint32(key & np.uint32(0x7FFFFFFF)) if key >> 31 else np.uint32(~key)
    return np.array([u], np.uint32).view(np.float32)[0]


def blocks(source, nrows, block_rows=BLOCK_ROWS):
    """Finite values of each row block, flattened in row-major order."""
    for r0 in range(0, nrows, block_rows):
        v = np.asarray(source(r0, min(r0 + block_rows, nrows)), np.float32).ravel()
        yield v[np.isfinite(v)]


def order_statistics(source, nrows, ranks, block_rows=BLOCK_ROWS):
    """The values (float32) of the given 0-based ranks among the map's finite values, ascending order."""
    ranks = np.asarray(ranks, np.int64)
    want = np.unique(ranks)
    if want.size == 0:
        return np.zeros(0, np.float32)
    prefix = np.zeros(want.size, np.int64)  # the key bits fixed so far, per wanted rank
    below = want.copy()  # its rank among the values sharing that prefix
    done_bits = 0
    for shift, bits in _SHIFTS:
        groups, owner = np.unique(prefix, return_inverse=True)
        hist = np.zeros((groups.size, 1 << bits), np.int64)
        for v in blocks(source, nrows, block_rows):
            k = _keys(v).astype(np.int64)
            high = k >> (shift + bits) if done_bits else np.zeros(k.size, np.int64)
            g = np.searchsorted(groups, high)
            hit = (g < groups.size) & (groups[np.minimum(g, groups.size - 1)] == high)
            digit = (k[hit] >> shift) & ((1 << bits) - 1)
            hist += np.bincount(g[hit] * (1 << bits) + digit, minlength=hist.size).reshape(hist.shape)
        cum = np.cumsum(hist, axis=1)
        for i in range(want.size):
            row = cum[owner[i]]
            d = int(np.searchsorted(row, below[i], side="right"))
            below[i] -= row[d - 1] if d else 0
            prefix[i] = (prefix[i] << bits) | d
        done_bits += bits
    values = np.array([_value(p) for p in prefix], np.float32)
    return values[np.searchsorted(want, ranks)]


def count(source, nrows, block_rows=BLOCK_ROWS):
    return sum(int(v.size) for v in blocks(source, nrows, block_rows))


def quantiles(source, nrows, n, q, dtype=np.float64, block_rows=BLOCK_ROWS):
    """np.quantile(values.astype(dtype), q) (method 'linear') of the map's n finite values, bit for bit.

    q: a scalar or an array (the result has its shape). dtype: the array numpy would have been given
    (float64 after np.asarray(v, float); float32 for a float32 map taken as is).
    """
    q = np.asanyarray(q)
    virtual = np.asanyarray((n - 1) * q)  # numpy's 'linear' virtual index
    prev = np.asanyarray(np.floor(virtual))
    nxt = np.asanyarray(prev + 1)
    above = virtual >= n - 1
    prev = np.where(above, -1, prev)
    nxt = np.where(above, -1, nxt)
    below = virtual < 0
    prev = np.where(below, 0, prev).astype(np.intp)
    nxt = np.where(below, 0, nxt).astype(np.intp)
    gamma = np.asanyarray(virtual - prev)
    ranks = np.concatenate([np.where(prev < 0, n + prev, prev).ravel(), np.where(nxt < 0, n + nxt, nxt).ravel()])
    stats = order_statistics(source, nrows, ranks, block_rows).astype(dtype)
    a = stats[:prev.size].reshape(prev.shape)
    b = stats[prev.size:].reshape(nxt.shape)
    if a.ndim == 0:
        a, b = np.asarray(a), np.asarray(b)
    return _lerp(a, b, gamma)


def _lerp(a, b, t):
    """numpy's own interpolation between two order statistics (numpy.lib.function_base._lerp)."""
    diff_b_a = np.subtract(b, a)
    out = np.asanyarray(np.add(a, diff_b_a * t))
    np.subtract(b, diff_b_a * (1 - t), out=out, where=t >= 0.5)
    return out[()] if out.ndim == 0 else out


def percentiles(source, nrows, n, p, dtype=np.float64, block_rows=BLOCK_ROWS):
    """np.percentile(values.astype(dtype), p) of the map's n finite values, bit for bit."""
    return quantiles(source, nrows, n, np.true_divide(p, 100), dtype, block_rows)


def count_below(source, nrows, thresholds, block_rows=BLOCK_ROWS):
    """For each threshold t (float64): how many finite values are < t (the values compared as float64)."""
    t = np.asarray(thresholds, np.float64)
    out = np.zeros(t.size, np.int64)
    order = np.argsort(t, kind="stable")
    for v in blocks(source, nrows, block_rows):
        s = np.sort(v.astype(np.float64))
        out[order] += np.searchsorted(s, t[order], side="left")
    return out


def count_at_least(source, nrows, threshold, block_rows=BLOCK_ROWS):
    """How many finite values are >= threshold (compared as float64)."""
    return sum(int(np.count_nonzero(v.astype(np.float64) >= threshold)) for v in blocks(source, nrows, block_rows))


def constant_map(source, nrows, n, block_rows=BLOCK_ROWS):
    """(is_constant, spread): distribution.constant_map on the map read back (0.1-99.9 % spread, float64), in
    one place for every streamed run so that their constant checks cannot drift apart."""
    if n == 0:
        return True, 0.0
    lo, hi = percentiles(source, nrows, n, (0.1, 99.9), block_rows=block_rows)
    spread = float(hi - lo)
    return spread < CONSTANT_SPREAD, spread


class RunningStats:
    """The numbers a streamed map needs that come free while its rows are written (no pass reads them back):
    cells with a value, min/max, a histogram on [0, 1] and the value at some cells (deposits, samples)."""

    def __init__(self, bins, rows=None, cols=None, inside=None):
        self.hist = np.zeros(bins, np.int64)
        self.n_finite, self.low, self.top = 0, np.inf, -np.inf
        self.rows = np.zeros(0, int) if rows is None else np.asarray(rows, int)
        self.cols = np.zeros(0, int) if cols is None else np.asarray(cols, int)
        self.inside = np.ones(self.rows.size, bool) if inside is None else inside  # rows/cols valid only there
        self.at_cells = np.full(self.rows.size, np.nan)

    def add(self, row0, values):
        """Take rows [row0, row0 + len(values)) of the map."""
        finite = values[np.isfinite(values)]
        if finite.size:
            self.n_finite += finite.size
            self.low, self.top = min(self.low, float(finite.min())), max(self.top, float(finite.max()))
            self.hist += np.histogram(finite, bins=self.hist.size, range=(0.0, 1.0))[0]
        here = self.inside & (self.rows >= row0) & (self.rows < row0 + values.shape[0])
        self.at_cells[here] = values[self.rows[here] - row0, self.cols[here]]

    def value_range(self):
        """(min, max) of the map's values, NaN when it has none."""
        return (self.low, self.top) if self.n_finite else (float("nan"), float("nan"))
