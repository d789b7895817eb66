"""Window engine: one model window per output cell, cut from the stack, transformed, resized and batched.

The stack is read in tiles of rows (memory stays bounded whatever its size). A background thread
cuts and prepares the next batch while onnxruntime (which releases the GIL) runs the current one,
so preparation hides under inference. With stride k only every k-th row/column is predicted and the
rest interpolated bilinearly; cells with no predicted neighbour are then predicted exactly.
"""

import queue
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import blas
from ..errors import JanjaInputError

TILE_BUDGET_BYTES = 64 * 1024**2  # working memory for one tile of transformed, padded rows
DEFAULT_BATCH = 64


class Cancelled(Exception):  # noqa: N818 - the caller's word for it
    """The user cancelled; nothing partial is returned."""


# --- stacks ---------------------------------------------------------------------------------------

class ArrayStack:
    """An in-memory stack (bands, rows, cols); nodata and non-finite values are missing."""

    def __init__(self, data, names, nodata=None):
        self.data = np.asarray(data, dtype=np.float32)
        if self.data.ndim != 3 or len(names) != self.data.shape[0]:
            raise ValueError("data must be (bands, rows, cols) with one name per band")
        self.names = list(names)
        self.nodata = nodata
        self.nrows, self.ncols = self.data.shape[1:]

    def read(self, r0, r1, bands):
        block = self.data[bands, r0:r1].astype(np.float32, copy=True)
        if self.nodata is not None:
            block[block == np.float32(self.nodata)] = np.nan
        return block


class RasterStack:
    """A GeoTIFF element stack (janja:krige's layout) read by rows; band descriptions name the elements.

    Read with GDAL (osgeo.gdal), which every QGIS ships; each row tile is read once, so GDAL's own
    bounded block cache is all the caching needed.
    """

    def __init__(self, path):
        from ..raster_grid import open_raster

        self.path = path
        self.dataset = ds = open_raster(path, "element stack")
        bands = [ds.GetRasterBand(i + 1) for i in range(ds.RasterCount)]
        self.names = [b.GetDescription() or "" for b in bands]
        self.nrows, self.ncols = ds.RasterYSize, ds.RasterXSize
        self.nodata = bands[0].GetNoDataValue() if bands else None
        t = ds.GetGeoTransform()
        self.geotransform = t
        self.cell_size = float(t[1])
        self.square = abs(abs(t[1]) - abs(t[5])) <= 1e-6 * abs(t[1]) and t[2] == 0 and t[4] == 0 and t[5] < 0
        self.crs_wkt = ds.GetProjection() or None

    def grid(self):
        from ..raster_grid import Grid

        t = self.geotransform
        return Grid(float(t[0]), float(t[3]), float(t[1]), self.ncols, self.nrows)

    def read(self, r0, r1, bands):
        block = self.dataset.ReadAsArray(0, r0, self.ncols, r1 - r0, band_list=[b + 1 for b in bands])
        if block is None:
            raise JanjaInputError(f"Rows {r0}-{r1} of the element stack {self.path} could not be read (a damaged "
                                  "or truncated file?). Krige or export the stack again.")
        block = np.asarray(block, dtype=np.float32).reshape(len(bands), r1 - r0, self.ncols)
        if self.nodata is not None:
            block[block == np.float32(self.nodata)] = np.nan
        return block

    def close(self):
        self.dataset = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@contextmanager
def checked_stack(stack, card, grid=None, crs_wkt=None):
    """Open `stack` (a GeoTIFF path or an ArrayStack with its `grid`) and check it against the model card.

    Yields (stack, band index per card element, grid, crs_wkt); a stack opened here is closed on exit.
    The one front door of every window job (prospectivity, anomaly score), so both refuse alike.
    """
    from . import model_card as mc

    opened = None
    if not hasattr(stack, "read"):
        stack = opened = RasterStack(stack)
    try:
        if isinstance(stack, RasterStack):
            if not stack.square:
                raise JanjaInputError(
                    f"The stack {stack.path} does not have square, north-up cells. Warp it to square cells first."
                )
            grid, crs_wkt = stack.grid(), stack.crs_wkt
        elif grid is None:
            raise ValueError("an in-memory stack needs its grid")
        bands = mc.match_stack(card, stack.names)
        mc.check_grid(card, grid.cell, crs_wkt)
        yield stack, bands, grid, crs_wkt
    finally:
        if opened is not None:
            opened.close()


# --- pieces of the window pipeline ----------------------------------------------------------------

def reflect_index(idx, n):
    """Map indices outside [0, n) back inside by reflection without repeating the edge (numpy 'reflect')."""
    idx = np.asarray(idx)
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    m = np.mod(idx, period)
    return np.where(m < n, m, period - m)


def resize_matrix(n_in, n_out, mode="bilinear_half_pixel"):
    """(n_out, n_in) matrix M with resized = M @ signal: linear interpolation, edges clamped.

    bilinear_half_pixel is torch's interpolate(align_corners=False, antialias=False) and OpenCV's
    INTER_LINEAR; bilinear_align_corners maps the first and last samples onto each other.
    """
    out = np.arange(n_out, dtype=np.float64)
    if mode == "bilinear_align_corners":
        src = out * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(1)
    else:
        src = np.clip((out + 0.5) * (n_in / n_out) - 0.5, 0, None)
    src = np.minimum(src, n_in - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = src - i0
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), i0), 1 - w1)
    np.add.at(m, (np.arange(n_out), i1), w1)
    return m.astype(np.float32)


def transform_values(block, elements):
    """The card's per-element transform: (f(v + offset) - mean) / std; NaN where missing or not loggable."""
    out = np.empty_like(block, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i, e in enumerate(elements):
            v = block[i].astype(np.float64) + e.offset
            if e.transform == "log10":
                v = np.where(v > 0, np.log10(np.where(v > 0, v, 1)), np.nan)
            elif e.transform == "ln":
                v = np.where(v > 0, np.log(np.where(v > 0, v, 1)), np.nan)
            out[i] = (v - e.mean) / e.std
    return out


def to_probability(raw, card):
    """The prospective-class probability from the model's first output."""
    raw = np.asarray(raw, dtype=np.float64).reshape(len(raw), -1)
    if card.output_kind == "score":
        return np.clip(raw[:, 0], 0.0, 1.0)
    if card.output_kind == "logits":
        raw = np.exp(raw - raw.max(axis=1, keepdims=True))
        raw /= raw.sum(axis=1, keepdims=True)
    return raw[:, card.prospective_index]


@dataclass
class EngineStats:
    n_windows: int = 0  # windows run through the model
    n_windows_filled: int = 0  # of those, windows where some missing value was filled with the element mean
    n_values_filled: int = 0  # element values filled (summed over windows)
    n_valid_cells: int = 0  # cells whose centre has every element (the others are nodata)
    n_interpolated: int = 0  # cells filled by stride interpolation
    seconds: float = 0.0
    inference_seconds: float = 0.0
    mode: str = "window by window"  # or "shared trunk, k x k shift(s)" (core/dense.py)

    @property
    def windows_per_second(self):
        return self.n_windows / self.seconds if self.seconds > 0 else float("nan")


class _Preparer:
    """Cuts, transforms and resizes the windows of the wanted cells, tile by tile, in batches."""

    def __init__(self, card, stack, bands, batch_size, tile_rows=None):
        self.card, self.stack, self.bands = card, stack, list(bands)
        self.batch = batch_size
        self.w = card.window_pixels
        self.h = self.w // 2
        n_el = len(self.bands)
        same = (card.input_height, card.input_width) == (self.w, self.w) and card.resize == "bilinear_half_pixel"
        self.rh = None if same else resize_matrix(self.w, card.input_height, card.resize)
        self.rw = None if same else resize_matrix(self.w, card.input_width, card.resize)
        self.cmap = np.asarray(card.channel_map)
        self.identity_map = list(card.channel_map) == list(range(n_el))
        if tile_rows is None:  # raw, transformed, padded copies, masks and float64 temporaries: ~48 bytes a value
            tile_rows = max(1, TILE_BUDGET_BYTES // (n_el * (stack.ncols + 2 * self.h) * 48) - 2 * self.h)
        self.tile_rows = int(min(tile_rows, stack.nrows))

    def tile_ranges(self):
        return [(r0, min(r0 + self.tile_rows, self.stack.nrows)) for r0 in range(0, self.stack.nrows, self.tile_rows)]

    def _tile(self, r0, r1):
        """Transformed tile padded by reflection (elements, rows + 2h, cols + 2h), missing -> 0, and its mask."""
        n, h = self.stack.nrows, self.h
        rows = reflect_index(np.arange(r0 - h, r1 + h), n)
        lo, hi = int(rows.min()), int(rows.max()) + 1
        raw = self.stack.read(lo, hi, self.bands)
        t = transform_values(raw, self.card.elements)
        missing = ~np.isfinite(t)
        centre_ok = ~missing[:, r0 - lo:r1 - lo].any(axis=0)
        cols = reflect_index(np.arange(-h, self.stack.ncols + h), self.stack.ncols)
        t = t[:, rows - lo][:, :, cols]
        missing = missing[:, rows - lo][:, :, cols]
        t[missing] = 0.0  # the element's stored mean, in standardised units
        return t, missing, centre_ok

    def _resize(self, win):
        """(elements, B, w, w) -> (B, channels, H, W) with two matrix products, written contiguously."""
        win = np.ascontiguousarray(win.transpose(1, 0, 2, 3))  # (B, E, w, w): small
        if self.rh is not None:
            b, e, w, _ = win.shape
            # core.blas: numpy's own products would run on GSL's reference CBLAS inside QGIS
            win = blas.matmul(win.reshape(-1, w), self.rw.T).reshape(b, e, w, -1)  # columns: one GEMM
            win = blas.matmul_each(self.rh, win)  # rows: (H, w) @ (w, W) for each window and element
        if not self.identity_map:
            win = win[:, self.cmap]
        return win

    def batches(self, want, valid_out, stats, stop, ranges=None):
        """Yield (rows, cols, x, fraction) with at most `batch` windows; records centre validity in valid_out.

        valid_out=None: validity is already known, so tiles with no wanted cell are not even read.
        ranges: the (r0, r1) row ranges to visit, ascending (None = every tile of the stack).
        """
        pend_r, pend_c, pend_x, n_pend = [], [], [], 0
        tiles = self.tile_ranges() if ranges is None else ranges
        fraction = 0.0
        for r0, r1 in tiles:
            if stop.is_set():
                return
            sel = want(r0, r1)
            if valid_out is None and not sel.any():
                continue
            t, missing, centre_ok = self._tile(r0, r1)
            if valid_out is not None:
                valid_out[r0:r1] = centre_ok
            wanted = centre_ok & sel
            rr, cc = np.nonzero(wanted)
            fraction = r1 / self.stack.nrows
            if rr.size:
                counts = _window_sums(missing.sum(axis=0, dtype=np.int32), self.w)
                filled = counts[rr, cc]
                stats.n_windows_filled += int(np.count_nonzero(filled))
                stats.n_values_filled += int(filled.sum())
                views = sliding_window_view(t, (self.w, self.w), axis=(1, 2))
                for s in range(0, rr.size, self.batch):
                    br, bc = rr[s:s + self.batch], cc[s:s + self.batch]
                    pend_r.append(br + r0)
                    pend_c.append(bc)
                    pend_x.append(self._resize(views[:, br, bc]))
                    n_pend += br.size
                    while n_pend >= self.batch:
                        yield _take(pend_r, pend_c, pend_x, self.batch) + (fraction,)
                        n_pend -= self.batch
        if n_pend:
            yield _take(pend_r, pend_c, pend_x, n_pend) + (fraction,)


def _take(pend_r, pend_c, pend_x, n):
    """Pop exactly n windows from the pending lists (splitting the last chunk if needed)."""
    rows, cols, xs, got = [], [], [], 0
    while got < n:
        k = min(n - got, pend_r[0].size)
        rows.append(pend_r[0][:k])
        cols.append(pend_c[0][:k])
        xs.append(pend_x[0][:k])
        if k == pend_r[0].size:
            pend_r.pop(0), pend_c.pop(0), pend_x.pop(0)
        else:
            pend_r[0], pend_c[0], pend_x[0] = pend_r[0][k:], pend_c[0][k:], pend_x[0][k:]
        got += k
    x = xs[0] if len(xs) == 1 else np.concatenate(xs)
    return np.concatenate(rows), np.concatenate(cols), x


def _window_sums(a, w):
    """Sum of every w x w window of a (padded) 2-D array, top-left indexed: (rows - w + 1, cols - w + 1)."""
    s = np.zeros((a.shape[0] + 1, a.shape[1] + 1), dtype=np.int64)
    s[1:, 1:] = a.cumsum(0).cumsum(1)
    return s[w:, w:] - s[:-w, w:] - s[w:, :-w] + s[:-w, :-w]


def _run_pass(model, prep, want, out, valid, stats, progress, lo, hi, prefetch, ranges=None):
    """Predict the wanted cells into `out`; progress goes from lo to hi. Raises Cancelled."""
    card, session, name = model.card, model.session, model.input_name
    stop = threading.Event()
    gen = prep.batches(want, valid, stats, stop, ranges)

    def infer(rows, cols, x, fraction):
        n = len(rows)
        if model.fixed_batch and n != model.fixed_batch:
            pad = np.zeros((model.fixed_batch - n,) + x.shape[1:], np.float32)
            x = np.concatenate([x, pad])
        t0 = time.perf_counter()
        raw = session.run(None, {name: x})[0]
        stats.inference_seconds += time.perf_counter() - t0
        out[rows, cols] = to_probability(raw[:n], card)
        stats.n_windows += n
        if progress is not None and progress(lo + (hi - lo) * fraction):
            raise Cancelled("The prospectivity run was cancelled.")

    if not prefetch:
        for item in gen:
            infer(*item)
        return
    q = queue.Queue(maxsize=3)
    done = object()

    def produce():
        try:
            for item in gen:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            q.put(exc)

    worker = threading.Thread(target=produce, name="janja-window-prep", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            infer(*item)
    finally:
        stop.set()
        while worker.is_alive():
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


def _axis_weights(n, nodes):
    """For each of n positions: the two bracketing node indices and the weight of the upper one."""
    pos = np.arange(n)
    j1 = np.clip(np.searchsorted(nodes, pos, side="left"), 0, len(nodes) - 1)
    j0 = np.where(nodes[j1] == pos, j1, np.maximum(j1 - 1, 0))
    span = (nodes[j1] - nodes[j0]).astype(np.float64)
    w1 = np.where(span > 0, (pos - nodes[j0]) / np.where(span > 0, span, 1), 0.0)
    return j0, j1, w1


def interpolate_coarse(coarse, row_nodes, col_nodes, nrows, ncols, block_rows=256):
    """Bilinear interpolation of node values (NaN = none) to every cell; weights renormalised over valid nodes.

    Works in blocks of rows so its temporaries stay small whatever the raster size.
    """
    r0, r1, wr = _axis_weights(nrows, row_nodes)
    c0, c1, wc = _axis_weights(ncols, col_nodes)
    out = np.empty((nrows, ncols), np.float32)
    for b0 in range(0, nrows, block_rows):
        b = slice(b0, min(b0 + block_rows, nrows))
        out[b] = _interpolate_rows(coarse, r0[b], r1[b], wr[b], c0, c1, wc)
    return out


def _interpolate_rows(coarse, r0, r1, wr, c0, c1, wc):
    """Rows of the bilinear interpolation: r0/r1 index rows of `coarse` (node rows), c0/c1 its columns.

    The one formula of every stride map, whole-grid or streamed, so both give the same bits.
    """
    ok = np.isfinite(coarse)
    v = np.where(ok, coarse, 0.0)
    num, den = 0.0, 0.0
    for rows, rw in ((r0, 1 - wr), (r1, wr)):
        for cols, cw in ((c0, 1 - wc), (c1, wc)):
            w = rw[:, None] * cw[None, :]
            num = num + w * v[np.ix_(rows, cols)]
            den = den + w * ok[np.ix_(rows, cols)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-12, num / np.where(den > 1e-12, den, 1), np.nan).astype(np.float32)


def stride_nodes(n, k):
    """Every k-th index from 0, plus the last one so interpolation never extrapolates."""
    nodes = np.arange(0, n, k)
    return nodes if nodes[-1] == n - 1 else np.append(nodes, n - 1)


def checked_mask(mask, stack):
    """The mask as bool (rows, cols) of the stack, or None; a mask of another shape is a programming error."""
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (stack.nrows, stack.ncols):
        raise ValueError(f"mask shape {mask.shape} differs from the stack's {(stack.nrows, stack.ncols)}")
    return mask


def check_valid_cells(valid, mask, card):
    """The number of cells with every element; refuse a stack (or mask) that leaves none to predict."""
    n = int(valid.sum())
    if n == 0:
        raise JanjaInputError(
            f"The element stack has no cell where all of {', '.join(card.element_names)} have values "
            "(every cell is nodata for at least one of them). Check that the right stack was chosen and that "
            "kriging produced values."
        )
    if mask is not None and not (valid & mask).any():
        raise JanjaInputError("The mask covers no cell of the stack that has values: choose a mask over the data.")
    return n


class _Rows:
    """A row tile seen with the whole grid's row numbers: tile[r0:r1] = v and tile[rows, cols] = v."""

    def __init__(self, array, row0):
        self.array, self.row0 = array, row0

    def __setitem__(self, key, value):
        if isinstance(key, slice):  # validity of rows read: kept only for the tile's own rows
            if key.start >= self.row0 and key.stop <= self.row0 + self.array.shape[0]:
                self.array[key.start - self.row0:key.stop - self.row0] = value
        else:
            rows, cols = key
            self.array[np.asarray(rows) - self.row0, cols] = value


class _Split:
    """Predictions of a stride tile: its own rows into `tile`, those of the node row below it into `ahead`."""

    def __init__(self, tile, row0, ahead, ahead_row):
        self.tile, self.row0, self.ahead, self.ahead_row = tile, row0, ahead, ahead_row

    def __setitem__(self, key, value):
        rows, cols = (np.asarray(k) for k in key)
        value = np.asarray(value)
        below = rows == self.ahead_row if self.ahead_row >= self.row0 + self.tile.shape[0] else np.zeros(rows.size,
                                                                                                         bool)
        self.tile[rows[~below] - self.row0, cols[~below]] = value[~below]
        self.ahead[0, cols[below]] = value[below]


@dataclass
class Tile:
    """One finished row tile of a streamed map (stream_predict)."""

    row0: int
    row1: int
    values: np.ndarray  # float32 (rows, cols), NaN = no value
    valid: np.ndarray  # bool (rows, cols): the centre has every element
    interpolated: np.ndarray | None  # bool (rows, cols): filled by stride interpolation (None at stride 1)


def _monotone(progress):
    """progress never goes back (a stride run reads a node row ahead of its tile, then the tile's own rows)."""
    if progress is None:
        return None
    best = [0.0]

    def report(fraction):
        best[0] = max(best[0], fraction)
        return progress(best[0])

    return report


class RowMask:
    """A mask known only over rows [row0, row0 + len(rows)) of the grid: what a Dask task is sent with its tile."""

    def __init__(self, rows, row0, shape):
        self.rows, self.row0, self.shape = np.asarray(rows, bool), int(row0), tuple(shape)

    def __getitem__(self, key):
        if key.start < self.row0 or key.stop > self.row0 + self.rows.shape[0]:
            raise IndexError(f"mask rows {key.start}-{key.stop} outside the rows sent")
        return self.rows[key.start - self.row0:key.stop - self.row0]


def stream_predict(model, stack, bands, stride=1, mask=None, batch_size=DEFAULT_BATCH, tile_rows=None,
                   progress=None, prefetch=True, stats=None, tiles=None, final=True):
    """windows.predict tile by tile: yields a Tile per row tile, in order, each final when yielded.

    Each tile reads the stack rows it covers plus half a window above and below. At stride k the nodes
    are the whole grid's (every k-th row and column, plus the last): a tile needs the node rows inside
    it and the two bracketing it, so the node row just below it is classified with it and kept for the
    next tile; nothing is classified twice and every cell gets the whole-grid value. Memory: one tile
    of the window engine (TILE_BUDGET_BYTES) plus the tile's outputs and at most tile_rows / k + 2 node
    rows of ncols / k values, whatever the grid's height. stats: an EngineStats to fill (n_valid_cells
    and seconds are set once the last tile is out; the refusal of a stack without values comes then).

    tiles: the indices of the row tiles to compute (None = all), as a Dask task computes one
    (distributed_inference): node rows that an earlier tile would have classified are classified first
    without being counted, so the tasks' counts add up to this run's. final=False leaves the end-of-run
    refusal and progress to the caller, who has the totals. mask may be a RowMask of the rows read.
    """
    if stride < 1 or int(stride) != stride:
        raise JanjaInputError(f"The stride must be a whole number of cells, 1 or more, not {stride}.")
    stride = int(stride)
    if model.fixed_batch:
        batch_size = model.fixed_batch
    nrows, ncols = stack.nrows, stack.ncols
    mask = mask if isinstance(mask, RowMask) else checked_mask(mask, stack)
    t_start = time.perf_counter()
    stats = EngineStats() if stats is None else stats
    prep = _Preparer(model.card, stack, bands, batch_size, tile_rows)
    progress = _monotone(progress)
    n_valid, n_kept = 0, 0
    if stride > 1:
        row_nodes, col_nodes = stride_nodes(nrows, stride), stride_nodes(ncols, stride)
        is_row, is_col = np.zeros(nrows, bool), np.zeros(ncols, bool)
        is_row[row_nodes], is_col[col_nodes] = True, True
        rn0, rn1, rw = _axis_weights(nrows, row_nodes)
        cn0, cn1, cw = _axis_weights(ncols, col_nodes)
        node_values = {}  # node row index j -> values at the column nodes (float32, NaN = none)
    done_previous = False
    for t, (r0, r1) in enumerate(prep.tile_ranges()):
        if tiles is not None and t not in tiles:
            done_previous = False
            continue
        if stride > 1 and t > 0 and not done_previous:  # the rows the previous tile would have left cached
            for j in range(int(rn0[r0]), min(int(rn1[r1 - 1]), int(rn1[r0 - 1])) + 1):
                if j not in node_values:
                    node_values[j] = _node_row(model, prep, int(row_nodes[j]), is_col, col_nodes, mask, prefetch)
        done_previous = True
        keep_rows = None if mask is None else mask[r0:r1]
        out = np.full((r1 - r0, ncols), np.nan, np.float32)
        valid = np.zeros((r1 - r0, ncols), bool)
        filled = None
        if stride == 1:
            sel = np.ones((r1 - r0, ncols), bool) if keep_rows is None else keep_rows.copy()
            _run_pass(model, prep, lambda a, b, sel=sel: sel, _Rows(out, r0), _Rows(valid, r0), stats, progress,
                      0.0, 1.0, prefetch, ranges=[(r0, r1)])
        else:
            j_lo, j_hi = int(rn0[r0]), int(rn1[r1 - 1])  # node rows bracketing the tile
            for j in [j for j in node_values if j < j_lo]:
                del node_values[j]
            ahead = int(row_nodes[j_hi])
            need_ahead = ahead >= r1 and j_hi not in node_values
            def want(a, b, r0=r0, r1=r1):
                sel = is_row[a:b, None] & is_col[None, :]
                if a >= r0 and b <= r1:
                    sel = sel & ~np.isin(np.arange(a, b), [row_nodes[j] for j in node_values])[:, None]
                return sel if mask is None else sel & mask[a:b]

            ranges = [(r0, r1)] + ([(ahead, ahead + 1)] if need_ahead else [])
            ahead_out = np.full((1, ncols), np.nan, np.float32)
            _run_pass(model, prep, want, _Split(out, r0, ahead_out, ahead), _Rows(valid, r0), stats, progress, 0.0,
                      1.0, prefetch, ranges=ranges)
            for j in range(j_lo, j_hi + 1):
                if j not in node_values:
                    r = int(row_nodes[j])
                    node_values[j] = (out[r - r0] if r < r1 else ahead_out[0])[col_nodes].copy()
            coarse = np.stack([node_values[j] for j in range(j_lo, j_hi + 1)])
            dense = _interpolate_rows(coarse, rn0[r0:r1] - j_lo, rn1[r0:r1] - j_lo, rw[r0:r1], cn0, cn1, cw)
            node = is_row[r0:r1, None] & is_col[None, :]
            for r in np.nonzero(is_row[r0:r1])[0]:
                out[r, col_nodes] = node_values[int(rn0[r0 + r])]
            keep = valid if keep_rows is None else valid & keep_rows
            filled = keep & ~node & np.isfinite(dense)
            stats.n_interpolated += int(filled.sum())
            out[filled] = dense[filled]
            orphan = keep & ~node & ~np.isfinite(dense)  # no predicted neighbour: predict these exactly
            if orphan.any():
                at = r1 / nrows
                _run_pass(model, prep, lambda a, b, orphan=orphan: orphan, _Rows(out, r0), None, stats, progress,
                          at, at, prefetch, ranges=[(r0, r1)])
        n_valid += int(valid.sum())
        n_kept += int(valid.sum() if keep_rows is None else (valid & keep_rows).sum())
        if progress is not None and progress(r1 / nrows):
            raise Cancelled("The prospectivity run was cancelled.")
        yield Tile(r0, r1, out, valid, filled)
    stats.n_valid_cells += n_valid
    if not final:
        return
    if n_valid == 0 or n_kept == 0:  # the whole-grid refusals, from the counts
        check_valid_cells(np.array([n_valid > 0]), None if mask is None else np.array([False]), model.card)
    if progress is not None and progress(1.0):
        raise Cancelled("The prospectivity run was cancelled.")
    stats.seconds = time.perf_counter() - t_start


def _node_row(model, prep, row, is_col, col_nodes, mask, prefetch):
    """One node row's values at the column nodes, classified without being counted (see stream_predict)."""
    out = np.full((1, prep.stack.ncols), np.nan, np.float32)
    sel = is_col[None, :] if mask is None else is_col[None, :] & mask[row:row + 1]
    _run_pass(model, prep, lambda a, b: sel, _Rows(out, row), None, EngineStats(), None, 0.0, 1.0, prefetch,
              ranges=[(row, row + 1)])
    return out[0, col_nodes].copy()


def predict(model, stack, bands, stride=1, mask=None, batch_size=DEFAULT_BATCH, tile_rows=None, progress=None,
            prefetch=True):
    """Prospective-class probability for every cell of `stack`: float32 (rows, cols), NaN where nodata.

    bands: the stack band index of each card element (model_card.match_stack). mask: optional bool
    (rows, cols), False cells are left NaN. progress(fraction) returning True cancels (Cancelled).
    Returns (probability, valid_centre_mask, EngineStats). The streamed engine (stream_predict) gathered
    into memory: one code path for both.
    """
    out = np.full((stack.nrows, stack.ncols), np.nan, dtype=np.float32)
    valid = np.zeros((stack.nrows, stack.ncols), dtype=bool)
    stats = EngineStats()
    for tile in stream_predict(model, stack, bands, stride, mask, batch_size, tile_rows, progress, prefetch, stats):
        out[tile.row0:tile.row1] = tile.values
        valid[tile.row0:tile.row1] = tile.valid
    return out, valid, stats
