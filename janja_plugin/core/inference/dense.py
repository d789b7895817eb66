"""Shared-trunk ("dense") evaluation: the convolutional trunk runs once over the stack, not once per window.

Neighbouring windows overlap almost entirely (a 15-cell window shares 14/15 of its rows with the
next), so classifying every window repeats nearly all of the trunk's work. Here the stack is
transformed and resized by the model's own factor (input pixels per cell, e.g. 75 / 15 = 5) as one
image, in tiles, and the trunk part of the model (card field "dense", written by
janja_plugin/training/export_dense.py) maps each tile to a feature map. Feature cell j summarises the
input pixels [S*j, S*j + H) (S = feature stride, H = model input size), i.e. exactly the footprint of
a window that starts there. A cell's window starts at s*i (s = pixels per cell), which falls between
feature cells unless s*i is a multiple of S; its features are interpolated bilinearly between the
feature cells whose footprints start just before and just after it, and the head part turns them into
the class probability.

When the model input spans more than one feature cell (e.g. 149 px: 3 x 3 cells 32 px apart, whose
mean the per-window model pools), a window's features are the mean of its m x m cells (card field
dense.footprint: the pixels one feature cell covers).

`shifts` = k runs the trunk k x k times on the image shifted by S/k pixels, so footprints start
every S/k pixels: k times finer interpolation for k^2 the trunk work (still far below per-window).

This is an approximation of the per-window result, not an equivalent: (1) a window cut alone is
zero-padded by the trunk's 'same' convolutions while the dense map sees the neighbouring cells there,
(2) the per-window resize clamps at the window border (its outer 2-3 pixels), and (3) windows that
do not start on a feature cell get interpolated features. Windows starting exactly on a feature cell
differ by (1) and (2) only. The benchmark reports the difference (bench/bench_prospectivity.py);
the per-window engine (core/windows.py) stays the default.
"""

import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import blas
from ..errors import JanjaInputError, require
from ..smoothing import halo_cells, smooth
from . import windows as wn

DEFAULT_TILE = (64, 256)  # output cells per tile (rows, cols): fixed, so results do not depend on the machine


@dataclass
class DenseParts:
    trunk: object  # onnxruntime session: N x C x H x W -> N x F x h x w
    head: object  # onnxruntime session: N x F -> N x classes
    trunk_input: str
    head_input: str
    stride: int  # feature stride in model-input pixels
    factor: int  # model-input pixels per stack cell
    paths: tuple
    footprint: int = 0  # input pixels one feature cell covers (its valid region); 0 = the model input size
    pool: int = 1  # feature cells per window side (the per-window model averages pool x pool of them)


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_parts(model):
    """The dense parts named by the card of a model_card.LoadedModel, opened with the same thread count.

    Refuses (JanjaInputError) a card without the "dense" field, a missing or altered part file, and a
    model input that is not square or not a whole multiple of the window.
    """
    ort = require("onnxruntime", "running the prospectivity model")
    card, folder = model.card, Path(model.path).parent
    spec = card.dense
    if not spec:
        raise JanjaInputError(
            f"The model '{card.name}' has no shared-trunk parts (no 'dense' field in its card), so it can only be "
            "run window by window: turn the shared-trunk option off, or re-export the model with the current "
            "training script (it writes <model>_trunk.onnx and <model>_head.onnx)."
        )
    if (card.input_height != card.input_width or card.input_height % card.window_pixels
            or card.resize != "bilinear_half_pixel"):
        raise JanjaInputError(
            f"Shared-trunk evaluation needs a square model input that is a whole multiple of the window; the model "
            f"'{card.name}' resizes {card.window_pixels} cells to {card.input_height} x {card.input_width} "
            f"({card.resize.replace('_', ' ')}; shared-trunk evaluation needs bilinear half pixel). "
            "Run it window by window (turn the shared-trunk option off)."
        )
    sessions, paths = [], []
    for part in ("trunk", "head"):
        path = folder / spec[part]
        if not path.is_file():
            raise JanjaInputError(
                f"The shared-trunk {part} {path.name} named by the card of {Path(model.path).name} is missing; it "
                "must lie beside the model. Copy it from where the model was exported, or turn the shared-trunk "
                "option off."
            )
        want = spec.get(f"{part}_sha256")
        if want and _sha256(path) != want:
            raise JanjaInputError(
                f"The shared-trunk {part} {path.name} is not the file exported with {Path(model.path).name} "
                "(its checksum differs from the card's). Use the files exported together, or turn the option off."
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = model.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            sessions.append(ort.InferenceSession(str(path), sess_options=options,
                                                 providers=["CPUExecutionProvider"]))
        except Exception as exc:
            raise JanjaInputError(
                f"The shared-trunk {part} {path.name} could not be read as an ONNX model "
                f"({str(exc).splitlines()[0][:200]}). Export it again or turn the option off."
            ) from exc
        paths.append(path)
    trunk, head = sessions
    stride = int(spec["feature_stride"])
    footprint = int(spec.get("footprint", card.input_height))
    if footprint > card.input_height:
        raise JanjaInputError(
            f"The card of {Path(model.path).name} gives a feature footprint of {footprint} px, larger than the model "
            f"input ({card.input_height} px). Re-export the shared-trunk parts."
        )
    return DenseParts(trunk, head, trunk.get_inputs()[0].name, head.get_inputs()[0].name, stride,
                      card.input_height // card.window_pixels, tuple(paths), footprint,
                      (card.input_height - footprint) // stride + 1)


def _axis_nodes(n_cells, factor, step, n_nodes):
    """For windows starting at factor*i (i < n_cells): lower node, upper node and the upper node's weight."""
    u = factor * np.arange(n_cells, dtype=np.float64) / step
    i0 = np.minimum(np.floor(u).astype(int), n_nodes - 1)
    i1 = np.minimum(i0 + 1, n_nodes - 1)
    w1 = np.where(i1 > i0, u - i0, 0.0)
    return i0, i1, w1


class _DenseTiler:
    """Transformed, reflect-padded, resized tiles of the stack and their trunk feature maps."""

    def __init__(self, card, parts, stack, bands, shifts, tile):
        self.card, self.parts, self.stack, self.bands = card, parts, stack, list(bands)
        self.w, self.h = card.window_pixels, card.window_pixels // 2
        self.size = card.input_height
        self.factor = parts.factor
        if shifts < 1 or parts.stride % shifts:
            raise JanjaInputError(
                f"The number of shifts must divide the trunk's feature stride ({parts.stride}); got {shifts}."
            )
        self.shifts = int(shifts)
        self.step = parts.stride // self.shifts  # input pixels between feature-cell footprints after shifting
        # cells added at the far side: the last window has a node after it, and every shifted pass still
        # gets at least one model input's worth of pixels
        self.extra = -(-parts.stride // self.factor)
        # Tiles start on a multiple of the node period, so every tile's nodes lie on one global grid and the
        # interpolation does not depend on where the tiles are cut.
        period = self.step // math.gcd(self.step, self.factor)
        self.tile_rows, self.tile_cols = (-(-int(t) // period) * period for t in (tile or DEFAULT_TILE))
        self.cmap = np.asarray(card.channel_map)

    def tiles(self):
        for r0 in range(0, self.stack.nrows, self.tile_rows):
            for c0 in range(0, self.stack.ncols, self.tile_cols):
                yield r0, min(r0 + self.tile_rows, self.stack.nrows), c0, min(c0 + self.tile_cols, self.stack.ncols)

    def band_ranges(self):
        """(r0, r1) of every row band (one row of tiles), in order."""
        return [(r0, min(r0 + self.tile_rows, self.stack.nrows)) for r0 in range(0, self.stack.nrows, self.tile_rows)]

    def rows_read(self, r0, r1):
        """(first, last + 1) of the stack rows read_rows(r0, r1) reads: what a Dask task is sent with its band."""
        rows = wn.reflect_index(np.arange(r0 - self.h - 1, r1 + self.h + self.extra + 1), self.stack.nrows)
        return int(rows.min()), int(rows.max()) + 1

    def read_rows(self, r0, r1):
        """Transformed rows r0-h-1 .. r1+h+extra+1 (reflected), full width: (values, 0 where missing; missing)."""
        rows = wn.reflect_index(np.arange(r0 - self.h - 1, r1 + self.h + self.extra + 1), self.stack.nrows)
        lo, hi = int(rows.min()), int(rows.max()) + 1
        t = wn.transform_values(self.stack.read(lo, hi, self.bands), self.card.elements)[:, rows - lo]
        missing = ~np.isfinite(t)
        t[missing] = 0.0
        return t, missing

    def columns(self, c0, c1):
        return wn.reflect_index(np.arange(c0 - self.h - 1, c1 + self.h + self.extra + 1), self.stack.ncols)

    def features(self, t):
        """(E, rows, cols) transformed cells with a one-cell margin -> channels-last feature nodes (n_r, n_c, F).

        The margin is resized with the rest and then cut off, so every pixel is interpolated between real
        (reflected) neighbours and a tile's pixels equal those of the whole resized stack.
        """
        f = self.factor
        nr, nc = t.shape[1:]
        rr, rc = wn.resize_matrix(nr, f * nr)[f:-f], wn.resize_matrix(nc, f * nc)[f:-f]
        img = blas.matmul(t.reshape(-1, nc), rc.T).reshape(t.shape[0], nr, -1)  # core.blas: see windows._resize
        img = blas.matmul_each(rr, img)[self.cmap]  # (C, f*(nr-2), f*(nc-2))
        foot = self.parts.footprint or self.size
        n_r = (img.shape[1] - foot) // self.step + 1
        n_c = (img.shape[2] - foot) // self.step + 1
        nodes = None
        for a in range(self.shifts):
            for b in range(self.shifts):
                sub = np.ascontiguousarray(img[None, :, a * self.step:, b * self.step:])
                fm = self.parts.trunk.run(None, {self.parts.trunk_input: sub})[0][0]  # (F, h, w)
                if nodes is None:
                    nodes = np.empty((n_r, n_c, fm.shape[0]), np.float32)
                hr, hc = len(range(a, n_r, self.shifts)), len(range(b, n_c, self.shifts))
                nodes[a::self.shifts, b::self.shifts] = fm[:, :hr, :hc].transpose(1, 2, 0)
        m, k = self.parts.pool, self.shifts
        if m > 1:  # a window's features: the mean of its m x m feature cells, S = k node steps apart
            pr, pc = n_r - (m - 1) * k, n_c - (m - 1) * k
            pooled = np.zeros((pr, pc, nodes.shape[2]), np.float32)
            for a in range(m):
                for b in range(m):
                    pooled += nodes[a * k:a * k + pr, b * k:b * k + pc]
            nodes = pooled / (m * m)
        return nodes


def map_smoothing_cells(card):
    """The card's map smoothing sigma in stack cells (dense.map_smoothing_cells; 0 = none)."""
    return float((card.dense or {}).get("map_smoothing_cells") or 0.0)


def head_probability(raw, card):
    """The prospective-class probability from the head part's output (dense.head_output: probabilities/logits)."""
    if (card.dense or {}).get("head_output") != "logits":
        return wn.to_probability(raw, card)
    return 1.0 / (1.0 + np.exp(-head_log_odds(raw, card)))


def head_log_odds(raw, card):
    """log(p / (1 - p)) of the prospective class: exact from logits, from clipped probabilities otherwise."""
    raw = np.asarray(raw, dtype=np.float64).reshape(len(raw), -1)
    if (card.dense or {}).get("head_output") == "logits" and raw.shape[1] == 1:
        raise JanjaInputError(
            f"The model '{card.name}' says its shared-trunk head outputs logits but the head gives one value per "
            "cell: log-odds need one logit per class. Re-export the model's dense parts (the training script "
            "writes a two-class head)."
        )
    if (card.dense or {}).get("head_output") == "logits":
        k = card.prospective_index
        others = np.delete(raw, k, axis=1)
        top = others.max(axis=1)
        return raw[:, k] - (top + np.log(np.exp(others - top[:, None]).sum(axis=1)))
    p = np.clip(wn.to_probability(raw, card), 1e-12, 1.0 - 1e-12)
    return np.log(p) - np.log1p(-p)


def features_at(model, parts, stack, bands, cells, shifts=1, tile=None):
    """The shared-trunk features of the wanted cells: (rows, cols, features (n, F) float32), valid centres only.

    cells: bool (rows, cols). For fitting a head on these features (what the shared-trunk evaluation gives
    the head), e.g. in training before export_dense_parts(..., head=that_head).
    """
    got = []
    predict_dense(model, parts, stack, bands, mask=cells, shifts=shifts, tile=tile,
                  _sink=lambda x, rows, cols: got.append((rows, cols, x)))
    if not got:
        return np.zeros(0, int), np.zeros(0, int), np.zeros((0, 0), np.float32)
    return tuple(np.concatenate(a) for a in zip(*got))


@dataclass
class DenseBand:
    """One finished row band of the shared-trunk map (dense_bands): rows [row0, row1), every column."""

    row0: int
    row1: int
    values: np.ndarray  # float32 probability; float64 head log-odds when the card smooths its map (NaN = none)
    valid: np.ndarray  # bool (rows, cols): the centre has every element


def mask_rows_read(r0, r1, nrows, smoothing_sigma, masked):
    """(first, last + 1) of the mask rows dense_bands reads for band [r0, r1) (the halo's with map smoothing)."""
    halo = halo_cells(smoothing_sigma) if masked and smoothing_sigma > 0 else 0
    return max(0, r0 - halo), min(nrows, r1 + halo)


def check_counts(n_valid, n_kept, masked, card, stats):
    """The whole-grid refusals (windows.check_valid_cells) from a run's counts, then stats.n_valid_cells."""
    if n_valid == 0 or n_kept == 0:
        wn.check_valid_cells(np.array([n_valid > 0]), np.array([False]) if masked else None, card)
    stats.n_valid_cells = n_valid


def dense_bands(model, parts, stack, bands, mask=None, shifts=1, tile=None, progress=None, head_batch=1024,
                stats=None, smoothing_sigma=0.0, _sink=None, only=None):
    """The shared-trunk map row band by row band (one band = one row of trunk tiles), in order.

    Each band reads only its stack rows plus the trunk's margin (_DenseTiler.read_rows), so memory follows
    a band, not the grid. values: the probability, or (smoothing_sigma > 0: the card smooths its map) the
    head's log-odds, which the caller smooths (predict_dense over the whole map, streamed_dense band by
    band); then a masked cell reads the valid cells within halo_cells(sigma) of it, so those are computed too.
    The head runs on batches of at most head_batch cells, cut at each band's end (a cell's head output
    does not depend on its batch: onnxruntime's Gemm rows are computed alone). stats: an EngineStats to fill;
    n_valid_cells is set, and a stack (or mask) without values refused, once the last band is out.
    only: the first row of the one band to compute, as a Dask task computes it (distributed_inference): the
    stack and the mask (a windows.RowMask) need only hold the rows it reads; the end-of-run refusal and
    n_valid_cells are left to the caller, who has the totals.
    """
    card = model.card
    nrows, ncols = stack.nrows, stack.ncols
    if not isinstance(mask, wn.RowMask):
        mask = wn.checked_mask(mask, stack)
    tiler = _DenseTiler(card, parts, stack, bands, shifts, tile)
    if stats is None:
        stats = wn.EngineStats()
    stats.mode = f"shared trunk, {tiler.shifts}x{tiler.shifts} shift(s)"
    log_odds = _sink is None and smoothing_sigma > 0
    halo = halo_cells(smoothing_sigma) if log_odds else 0
    tiles = [t for t in tiler.tiles() if only is None or t[0] == only]
    pending_x, pending_idx = [], []
    n_valid, n_kept = 0, 0
    band = None

    def flush():
        if not pending_x:
            return
        x = np.concatenate(pending_x)
        if _sink is not None:
            _sink(x, np.concatenate([np.full(c.size, band.row0 + i) for i, c in pending_idx]),
                  np.concatenate([c for _, c in pending_idx]))
        else:
            t0 = time.perf_counter()
            raw = parts.head.run(None, {parts.head_input: x})[0]
            stats.inference_seconds += time.perf_counter() - t0
            values = head_log_odds(raw, card) if log_odds else head_probability(raw, card)
            at = 0
            for i, c in pending_idx:
                band.values[i, c] = values[at:at + c.size]
                at += c.size
        pending_x.clear()
        pending_idx.clear()

    for k, (r0, r1, c0, c1) in enumerate(tiles):
        if band is None or band.row0 != r0:
            t_rows, miss_rows = tiler.read_rows(r0, r1)
            h = tiler.h
            band = DenseBand(r0, r1, np.full((r1 - r0, ncols), np.nan, np.float64 if log_odds else np.float32),
                             ~miss_rows[:, h + 1:h + 1 + r1 - r0].any(axis=0))
            wanted = None
            if mask is not None:
                wanted = mask[r0:r1]
                if log_odds:  # a masked cell's smoothed value reads every valid cell within the halo
                    from scipy.ndimage import maximum_filter

                    lo, hi = mask_rows_read(r0, r1, nrows, smoothing_sigma, True)
                    wanted = maximum_filter(mask[lo:hi], size=2 * halo + 1, mode="constant",
                                            cval=False)[r0 - lo:r1 - lo]
        want = band.valid[:, c0:c1] if wanted is None else band.valid[:, c0:c1] & wanted[:, c0:c1]
        if want.any():
            cols = tiler.columns(c0, c1)
            t = t_rows[:, :, cols]
            t0 = time.perf_counter()
            nodes = tiler.features(t)
            stats.inference_seconds += time.perf_counter() - t0
            counts = wn._window_sums(miss_rows[:, 1:-1, cols[1:-1]].sum(axis=0, dtype=np.int32), tiler.w)
            i0, i1, wr = _axis_nodes(r1 - r0, tiler.factor, tiler.step, nodes.shape[0])
            j0, j1, wc = _axis_nodes(c1 - c0, tiler.factor, tiler.step, nodes.shape[1])
            for i in range(r1 - r0):
                cc = np.nonzero(want[i])[0]
                if not cc.size:
                    continue
                line = (1 - wr[i]) * nodes[i0[i]] + wr[i] * nodes[i1[i]]  # (n_c, F)
                x = (1 - wc[cc, None]) * line[j0[cc]] + wc[cc, None] * line[j1[cc]]
                pending_x.append(x.astype(np.float32, copy=False))
                pending_idx.append((i, c0 + cc))
                filled = counts[i, cc]
                stats.n_windows += int(cc.size)
                stats.n_windows_filled += int(np.count_nonzero(filled))
                stats.n_values_filled += int(filled.sum())
                if sum(len(p) for p in pending_x) >= head_batch:
                    flush()
        if c1 == ncols:  # the band's last tile
            flush()
            n_valid += int(band.valid.sum())
            n_kept += int(band.valid.sum() if mask is None else (band.valid & mask[r0:r1]).sum())
        if progress is not None and progress((k + 1) / len(tiles)):
            raise wn.Cancelled("The prospectivity run was cancelled.")
        if c1 == ncols:
            yield band
    if only is None and _sink is None:  # features_at of a band without data is simply empty, not an error
        check_counts(n_valid, n_kept, mask is not None, card, stats)
    elif only is None:
        stats.n_valid_cells = n_valid


def predict_dense(model, parts, stack, bands, mask=None, shifts=1, tile=None, progress=None, head_batch=1024,
                  _sink=None):
    """Like windows.predict (stride 1), with the shared trunk: (probability, valid_centre_mask, EngineStats).

    parts: load_parts(model). shifts: trunk passes per axis (divides the feature stride). tile: (rows, cols)
    of output cells per trunk tile (default DEFAULT_TILE). progress(fraction) returning True cancels.
    dense_bands gathered into whole-grid arrays, then the card's map smoothing over the whole map.
    """
    card = model.card
    nrows, ncols = stack.nrows, stack.ncols
    mask = wn.checked_mask(mask, stack)
    t_start = time.perf_counter()
    stats = wn.EngineStats()
    sigma = 0.0 if _sink is not None else map_smoothing_cells(card)
    out = np.full((nrows, ncols), np.nan, dtype=np.float32)
    valid = np.zeros((nrows, ncols), dtype=bool)
    log_odds = np.full((nrows, ncols), np.nan) if sigma > 0 else None
    for band in dense_bands(model, parts, stack, bands, mask, shifts, tile, progress, head_batch, stats, sigma,
                            _sink):
        (out if log_odds is None else log_odds)[band.row0:band.row1] = band.values
        valid[band.row0:band.row1] = band.valid
    if log_odds is not None:  # part of the model (card dense.map_smoothing_cells): smooth the log-odds map
        smoothed = smooth(log_odds, sigma)
        keep = np.isfinite(smoothed) & (True if mask is None else mask)
        out[keep] = (1.0 / (1.0 + np.exp(-smoothed[keep]))).astype(np.float32)
    stats.seconds = time.perf_counter() - t_start
    return out, valid, stats
