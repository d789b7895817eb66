"""How wrong a stride-k map is: its interpolated cells checked against the model on a seeded sample.

With stride k the window engine classifies every k-th row and column and interpolates the rest
(windows.predict). Where the map changes fast that interpolation can be far off (stride 2 once erred
by 0.985 in probability on a structured block), and nothing in the map shows it. So every run with
stride > 1 classifies a seeded random sample of its interpolated cells exactly (stride 1: the same
windows, model and batch code) and states the error of the map there: mean, 95th percentile and
maximum absolute error, and the share of sampled cells whose class or top-X % membership changes.

Cost: the sample is 10 % of the windows the stride run classified (at least 200 cells, at most 2,000,
never more than the interpolated cells), so the check adds about 10 % to the run. A uniform sample of
200 cells holds about 10 of the map's top 5 %, too few to judge where the targets are drawn, so a
second, seeded stratum of a quarter as many cells (at least 60) is drawn from the interpolated cells in
the map's top 5 %; the top-5 % figures weight every sampled cell by its inclusion probability, and the
map-wide figures use the uniform stratum only (about +2.5 % of the run). The errors are of
the interpolated cells (nodes are exact); the maximum is the largest error found in the sample, a
lower bound on the map's.

`probe_strides` estimates the error of several strides before any full run: for each sampled cell it
classifies the cell and the (at most four) nodes each stride would interpolate it from. The demo uses
it to choose its stride by error, not only by time.
"""

import time
from dataclasses import dataclass

import numpy as np

from ..errors import JanjaInputError
from . import windows as wn

SAMPLE_SHARE = 0.10  # of the windows the stride run classified: the check adds ~10 % to the run
SAMPLE_MIN = 200  # below this the 95th percentile is too unsteady to state
SAMPLE_MAX = 2000  # enough for the 95th percentile to about ±0.5 percentile point
DEFAULT_SEED = 0
P95_LIMIT = 0.05  # warn when the 95th-percentile error exceeds this (in probability / score)
CLASS_LIMIT = 0.05  # ... or when more than this share of sampled cells change class
TOP_PERCENT = 5.0  # the top-X % of the map whose membership is checked
TOP_MAE_LIMIT = 0.05  # ... or when the mean error in that top X % (where the targets are) exceeds this
TOP_MIN_SAMPLE = 20  # fewer sampled top cells than this: their mean error is not judged
TOP_EXTRA_SHARE = 0.25  # the top stratum: this share of the uniform sample, drawn from the map's top X % ...
TOP_EXTRA_MIN = 60  # ... and at least this many cells (where there are so many)


@dataclass
class StrideSample:
    """The sampled interpolated cells, their map (interpolated) value and the model's own value there."""

    stride: int
    rows: np.ndarray
    cols: np.ndarray
    interpolated: np.ndarray  # the map's value (float64)
    exact: np.ndarray  # the model's value at stride 1 (float64)
    n_interpolated: int  # interpolated cells in the map (the population sampled)
    n_windows: int  # extra windows the check classified
    seconds: float
    seed: int
    top_stratum: np.ndarray | None = None  # bool per cell: drawn from the map's top X %, not uniformly
    weights: np.ndarray | None = None  # 1 / inclusion probability of each cell (None: a uniform sample)


@dataclass
class StrideError:
    """The measured error of a stride-k map on its sample (a small record for logs, reports, metadata)."""

    stride: int
    n_sample: int = 0
    n_interpolated: int = 0
    mae: float = 0.0
    p95: float = 0.0
    max: float = 0.0
    class_changed: float | None = None  # share of sampled cells whose class changes; None = no classes
    top_changed: float | None = None  # share whose top-X % membership changes; None = not computed
    n_top: int = 0  # sampled cells in the top X % on the map or at stride 1 (where the targets are)
    top_mae: float | None = None  # their mean error: the background dilutes the map-wide figures
    top_percent: float = TOP_PERCENT
    seconds: float = 0.0
    n_windows: int = 0
    seed: int = DEFAULT_SEED
    dense_model: bool = False  # shared trunk with a head trained on its features: every cell is the model's output
    requested: int = 1  # the stride asked for (a dense model ignores it: it has nothing to interpolate)

    @property
    def exact(self):
        """Stride 1: every cell classified, nothing to measure."""
        return self.stride <= 1

    @property
    def too_large(self):
        if self.exact or self.n_sample == 0:
            return False
        return self.p95 > P95_LIMIT or (self.class_changed or 0.0) > CLASS_LIMIT or self.targets_off

    @property
    def targets_off(self):
        """The map-wide figures are diluted by a flat background: the top cells, where targets are drawn,
        are judged on their own (measured on the bundled WA model: p95 0.006 map-wide, 0.115 in the top 5 %)."""
        return self.top_mae is not None and self.n_top >= TOP_MIN_SAMPLE and self.top_mae > TOP_MAE_LIMIT

    def suggested_stride(self):
        """A stride to try instead: half this one (the error measured here does not say how much smaller)."""
        return max(1, self.stride // 2)

    def sentence(self):
        """One line for the log and the report."""
        if self.dense_model:
            return ("No stride: every cell is the model's exact output (shared trunk, and the model's head was "
                    "trained on shared-trunk features), so nothing was interpolated"
                    + (f"; the stride {self.requested} asked for was not used." if self.requested > 1 else "."))
        if self.exact:
            return "Stride 1: every cell classified, no interpolation error."
        if self.n_sample == 0 and self.n_interpolated == 0:
            return f"Stride {self.stride}: no cell was interpolated, so every cell was classified."
        if self.n_sample == 0:
            return (f"Stride {self.stride}: {self.n_interpolated:,} cells interpolated; their error was not measured "
                    "(a sample of 0 cells was asked for).")
        changes = []
        if self.class_changed is not None:
            changes.append(f"{100 * self.class_changed:.1f} % change class")
        if self.top_changed is not None:
            changes.append(f"{100 * self.top_changed:.1f} % change top-{self.top_percent:g} % membership")
        if self.top_mae is not None:
            changes.append(f"in the top {self.top_percent:g} % ({self.n_top} sampled cells, a stratum of their own, "
                           f"weighted) the mean error is {self.top_mae:.3f}")
        text = (f"Stride {self.stride}: measured on {self.n_sample:,} of the {self.n_interpolated:,} interpolated "
                f"cells, classified exactly (seeded sample, seed {self.seed}"
                + (f"; {self.seconds:.1f} s" if np.isfinite(self.seconds) else "") + "): interpolation "
                f"error mean {self.mae:.3f}, 95th percentile {self.p95:.3f}, max {self.max:.3f}"
                + (f"; {', '.join(changes)}" if changes else "") + ".")
        return text

    def warning(self):
        """A sentence when the error is too large to ignore, else None."""
        if not self.too_large:
            return None
        what = []
        if self.p95 > P95_LIMIT:
            what.append(f"5 % of its interpolated cells are off by more than {self.p95:.2f} (limit {P95_LIMIT:g})")
        if (self.class_changed or 0.0) > CLASS_LIMIT:
            what.append(f"{100 * self.class_changed:.1f} % of them fall in the wrong class (limit "
                        f"{100 * CLASS_LIMIT:g} %)")
        if self.targets_off:
            what.append(f"in the top {self.top_percent:g} % of the map, where the target areas are drawn, the mean "
                        f"error is {self.top_mae:.3f} (limit {TOP_MAE_LIMIT:g})")
        k = self.suggested_stride()
        run = ("Run at stride 1 (every cell classified)" if k == 1 else
               f"Run at stride ≤ {k} and read this line again (stride 1 classifies every cell)")
        return f"Stride {self.stride} misplaces this map: {' and '.join(what)}. {run} before trusting its classes " \
               "and target areas."

    def tags(self):
        """GeoTIFF metadata (janja_stride_*), so the error travels with the raster."""
        if self.dense_model:
            return {"janja_stride": "1", "janja_stride_check": "every cell is the model's exact output (shared trunk, "
                    "head trained on shared-trunk features)"}
        if self.exact:
            return {"janja_stride": "1", "janja_stride_check": "every cell classified"}
        tags = {"janja_stride": str(self.stride), "janja_stride_mae": f"{self.mae:.6f}",
                "janja_stride_p95": f"{self.p95:.6f}", "janja_stride_max": f"{self.max:.6f}",
                "janja_stride_sample": str(self.n_sample), "janja_stride_interpolated": str(self.n_interpolated),
                "janja_stride_seed": str(self.seed), "janja_stride_seconds": f"{self.seconds:.1f}"}
        if self.class_changed is not None:
            tags["janja_stride_class_changed"] = f"{self.class_changed:.6f}"
        if self.top_changed is not None:
            tags["janja_stride_top_changed"] = f"{self.top_changed:.6f}"
        if self.top_mae is not None:
            tags["janja_stride_top_mae"] = f"{self.top_mae:.6f}"
            tags["janja_stride_top_sample"] = str(self.n_top)
        return tags

    @classmethod
    def from_tags(cls, tags):
        """The record back from a raster's metadata (janja_stride_*), or None when it has none."""
        tags = tags or {}
        if "janja_stride" not in tags:
            return None
        try:
            stride = int(tags["janja_stride"])
            if stride <= 1:
                return cls(stride=1, dense_model="shared trunk" in tags.get("janja_stride_check", ""))

            def opt(key):
                return float(tags[key]) if key in tags else None

            return cls(stride=stride, n_sample=int(tags.get("janja_stride_sample", 0)),
                       n_interpolated=int(tags.get("janja_stride_interpolated", 0)),
                       mae=float(tags["janja_stride_mae"]), p95=float(tags["janja_stride_p95"]),
                       max=float(tags["janja_stride_max"]), class_changed=opt("janja_stride_class_changed"),
                       top_changed=opt("janja_stride_top_changed"), seed=int(tags.get("janja_stride_seed", 0)),
                       top_mae=opt("janja_stride_top_mae"), n_top=int(tags.get("janja_stride_top_sample", 0)),
                       seconds=float(tags.get("janja_stride_seconds", "nan")))
        except (KeyError, ValueError):
            return None


def dense_exact(requested=1):
    """The record of a shared-trunk run of a model whose head was trained on shared-trunk features: exact."""
    return StrideError(stride=1, dense_model=True, requested=max(1, int(requested)))


def no_check(stride=1):
    """The record of a run that needs no check (stride 1, or the shared-trunk mode, which has no stride)."""
    return StrideError(stride=1 if stride <= 1 else stride)


def sample_size(n_windows, n_interpolated, share=SAMPLE_SHARE, least=SAMPLE_MIN, most=SAMPLE_MAX):
    """Cells to check: `share` of the windows the run classified, within [least, most] and the interpolated."""
    n = int(np.clip(round(share * n_windows), least, most))
    return max(0, min(n, int(n_interpolated)))


def interpolated_cells(values, stride):
    """bool (rows, cols): the cells a stride-k map interpolated (not a node, not predicted exactly as an orphan).

    Recomputed from the map itself exactly as windows.predict fills it: a non-node cell with a value whose
    bracketing nodes give an interpolation (orphans, with no valid node around, were classified exactly).
    """
    values = np.asarray(values)
    nrows, ncols = values.shape
    if stride <= 1:
        return np.zeros(values.shape, bool)
    return interpolated_rows(lambda a, b: values[a:b], 0, nrows, stride, nrows, ncols)


def interpolated_rows(read, r0, r1, stride, nrows, ncols):
    """interpolated_cells for rows [r0, r1) of a map read by read(a, b) -> rows [a, b) (NaN = no value): it
    reads those rows and the node rows bracketing them, so a streamed map is checked tile by tile."""
    row_nodes, col_nodes = wn.stride_nodes(nrows, stride), wn.stride_nodes(ncols, stride)
    rn0, rn1, rw = wn._axis_weights(nrows, row_nodes)
    cn0, cn1, cw = wn._axis_weights(ncols, col_nodes)
    j_lo, j_hi = int(rn0[r0]), int(rn1[r1 - 1])
    coarse = np.stack([np.asarray(read(int(row_nodes[j]), int(row_nodes[j]) + 1))[0, col_nodes]
                       for j in range(j_lo, j_hi + 1)])
    reachable = np.isfinite(wn._interpolate_rows(np.where(np.isfinite(coarse), 1.0, np.nan), rn0[r0:r1] - j_lo,
                                                 rn1[r0:r1] - j_lo, rw[r0:r1], cn0, cn1, cw))
    is_row, is_col = np.zeros(nrows, bool), np.zeros(ncols, bool)
    is_row[row_nodes], is_col[col_nodes] = True, True
    node = is_row[r0:r1, None] & is_col[None, :]
    return np.isfinite(np.asarray(read(r0, r1))) & ~node & reachable


def draw_sample(candidates, n, seed=DEFAULT_SEED):
    """(rows, cols) of n cells drawn without replacement from the True cells, seeded, in row-major order."""
    flat = np.flatnonzero(candidates)
    n = min(int(n), flat.size)
    if n <= 0:
        return np.zeros(0, int), np.zeros(0, int)
    pick = np.sort(np.random.default_rng(seed).choice(flat, size=n, replace=False))
    return np.unravel_index(pick, candidates.shape)


def draw_stratified(candidates, values, n, n_top=None, top_percent=TOP_PERCENT, seed=DEFAULT_SEED):
    """A uniform sample of n candidate cells plus a top stratum of the candidates in the map's top X %.

    Returns (rows, cols, top_stratum, weights). The uniform part is draw_sample(candidates, n, seed) itself;
    the top part (n_top cells, default max(TOP_EXTRA_MIN, TOP_EXTRA_SHARE * n)) is drawn with seed + 1 from
    the candidates at or above the map's top-X % threshold that the uniform part missed. weights are
    1 / inclusion probability: N / n for a cell below the threshold, 1 / (n / N + n_top / N_top) above it.
    """
    rows, cols = draw_sample(candidates, n, seed)
    n_cand = int(np.count_nonzero(candidates))
    if n_cand == 0 or rows.size == 0:
        return rows, cols, np.zeros(rows.size, bool), np.ones(rows.size)
    threshold = top_threshold(values, top_percent)
    with np.errstate(invalid="ignore"):
        top = candidates & (np.asarray(values) >= threshold) if np.isfinite(threshold) else \
            np.zeros_like(candidates)
    n_top_all = int(np.count_nonzero(top))
    left = top.copy()
    left[rows, cols] = False
    want = max(TOP_EXTRA_MIN, int(round(TOP_EXTRA_SHARE * rows.size))) if n_top is None else int(n_top)
    extra_r, extra_c = draw_sample(left, want, seed + 1)
    p_uniform = rows.size / n_cand
    p_top = min(1.0, p_uniform + extra_r.size / n_top_all) if n_top_all else p_uniform
    all_r, all_c = np.r_[rows, extra_r], np.r_[cols, extra_c]
    in_top = top[all_r, all_c]
    weights = 1.0 / np.where(in_top, p_top, p_uniform)
    stratum = np.r_[np.zeros(rows.size, bool), np.ones(extra_r.size, bool)]
    return all_r, all_c, stratum, weights


def classify_cells(model, stack, bands, rows, cols, batch_size=wn.DEFAULT_BATCH, tile_rows=None, progress=None,
                   lo=0.0, hi=1.0, prefetch=True):
    """The model's value at each (row, col) at stride 1: the engine's own windows and batches.

    Returns (values float64, EngineStats). progress(lo..hi) returning True cancels (windows.Cancelled).
    """
    if model.fixed_batch:
        batch_size = model.fixed_batch
    stats = wn.EngineStats()
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    out = _Cells(rows, cols, stack.ncols)  # memory: the cells asked for, not the grid
    prep = wn._Preparer(model.card, stack, bands, batch_size, tile_rows)
    t0 = time.perf_counter()
    if rows.size:
        wn._run_pass(model, prep, out.want, out, None, stats, progress, lo, hi, prefetch)
    if progress is not None and progress(hi):
        raise wn.Cancelled("The prospectivity run was cancelled.")
    stats.seconds = time.perf_counter() - t0
    return out.values_at(rows, cols), stats


class _Cells:
    """A sparse map of a few cells for the window engine: want(r0, r1) and out[rows, cols] = values."""

    def __init__(self, rows, cols, ncols):
        self.ncols = ncols
        self.keys = np.unique(rows * ncols + cols)
        self.values = np.full(self.keys.size, np.nan, np.float32)

    def want(self, r0, r1):
        a, b = np.searchsorted(self.keys, [r0 * self.ncols, r1 * self.ncols])
        sel = np.zeros((r1 - r0, self.ncols), bool)
        k = self.keys[a:b] - r0 * self.ncols
        sel[k // self.ncols, k % self.ncols] = True
        return sel

    def __setitem__(self, key, values):
        rows, cols = key
        self.values[np.searchsorted(self.keys, np.asarray(rows) * self.ncols + np.asarray(cols))] = values

    def values_at(self, rows, cols):
        return self.values[np.searchsorted(self.keys, rows * self.ncols + cols)].astype(np.float64)


def check_sample(sample):
    """Refuse a sample size that is not a whole number of cells (None = the default size)."""
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, int | np.integer) or sample < 0):
        raise JanjaInputError(f"The stride check's sample must be a whole number of cells, 0 or more, not {sample!r}.")


def predict_and_check(model, stack, bands, stride, mask=None, batch_size=wn.DEFAULT_BATCH, tile_rows=None,
                      progress=None, sample=None, seed=DEFAULT_SEED):
    """The window engine at `stride`, then (stride > 1) the exact check of a sample of its interpolated cells.

    Returns (values, valid, stats, StrideSample or None). Progress runs 0-0.9 for the map and 0.9-1 for the
    check (about a tenth of the windows), never backwards; cancelling works in both (windows.Cancelled).
    """
    check_sample(sample)
    checked = stride > 1
    scaled = progress
    if checked and progress is not None:
        def scaled(fraction):
            return progress(0.9 * fraction)
    values, valid, stats = wn.predict(model, stack, bands, stride=stride, mask=mask, batch_size=batch_size,
                                      tile_rows=tile_rows, progress=scaled)
    checked_sample = None
    if checked:
        checked_sample = sample_stride_map(model, stack, bands, values, stride, stats.n_windows, sample=sample,
                                           seed=seed, batch_size=batch_size, tile_rows=tile_rows,
                                           progress=progress, lo=0.9, hi=1.0)
    return values, valid, stats, checked_sample


def sample_stride_map(model, stack, bands, values, stride, n_windows, sample=None, seed=DEFAULT_SEED,
                      batch_size=wn.DEFAULT_BATCH, tile_rows=None, progress=None, lo=0.0, hi=1.0):
    """Classify a seeded sample of the interpolated cells of the stride-k map `values` exactly.

    n_windows: the windows the stride run classified (sets the default sample size, see sample_size).
    sample: cells to check (None = the default size). Returns a StrideSample.
    """
    check_sample(sample)
    t0 = time.perf_counter()
    candidates = interpolated_cells(values, stride)
    n_interp = int(candidates.sum())
    n = sample_size(n_windows, n_interp) if sample is None else min(int(sample), n_interp)
    rows, cols, stratum, weights = draw_stratified(candidates, values, n, seed=seed)
    exact, stats = classify_cells(model, stack, bands, rows, cols, batch_size, tile_rows, progress, lo, hi)
    return StrideSample(stride=int(stride), rows=rows, cols=cols, interpolated=values[rows, cols].astype(np.float64),
                        exact=exact, n_interpolated=n_interp, n_windows=stats.n_windows,
                        seconds=time.perf_counter() - t0, seed=seed, top_stratum=stratum, weights=weights)


def measure(sample, breaks=None, top_threshold=None, top_percent=TOP_PERCENT):
    """The error record of a StrideSample (pure numbers, no model).

    breaks: the map's class breaks (increasing; a class is the number of breaks at or below the value),
    or None when no classes were made. top_threshold: the value from which a cell is in the map's top
    `top_percent` % (None: not computed).
    """
    ok_all = np.isfinite(sample.exact) & np.isfinite(sample.interpolated)
    stratum = np.zeros(ok_all.size, bool) if sample.top_stratum is None else np.asarray(sample.top_stratum, bool)
    weights = np.ones(ok_all.size) if sample.weights is None else np.asarray(sample.weights, float)
    ok = ok_all & ~stratum  # map-wide figures: the uniform stratum only
    interp, exact = sample.interpolated[ok], sample.exact[ok]
    record = StrideError(stride=sample.stride, n_sample=int(ok.sum()), n_interpolated=sample.n_interpolated,
                         top_percent=top_percent, seconds=sample.seconds, n_windows=sample.n_windows,
                         seed=sample.seed)
    if record.n_sample == 0:
        return record
    err = np.abs(interp - exact)
    record.mae, record.p95, record.max = float(err.mean()), float(np.percentile(err, 95)), float(err.max())
    if breaks is not None and len(breaks) and np.all(np.isfinite(breaks)):
        b = np.asarray(breaks, float)
        record.class_changed = float(np.mean(np.searchsorted(b, interp, side="right")
                                             != np.searchsorted(b, exact, side="right")))
    if top_threshold is not None and np.isfinite(top_threshold):
        record.top_changed = float(np.mean((interp >= top_threshold) != (exact >= top_threshold)))
        # the top X %: both strata, each cell weighted by 1 / its inclusion probability
        t_interp, t_exact, t_w = sample.interpolated[ok_all], sample.exact[ok_all], weights[ok_all]
        top = (t_interp >= top_threshold) | (t_exact >= top_threshold)
        record.n_top = int(top.sum())
        if record.n_top:
            record.top_mae = float(np.average(np.abs(t_interp - t_exact)[top], weights=t_w[top]))
    return record


def top_threshold(values, top_percent=TOP_PERCENT):
    """The value from which a cell is in the map's top `top_percent` % (NaN for an empty map)."""
    v = np.asarray(values)
    v = v[np.isfinite(v)]
    return float(np.percentile(v, 100.0 - top_percent)) if v.size else float("nan")


def probe_strides(model, stack, bands, strides, n_sample=200, seed=DEFAULT_SEED, mask=None,
                  batch_size=wn.DEFAULT_BATCH, tile_rows=None, progress=None):
    """Estimate the interpolation error of each stride before any full run: {stride: StrideError}.

    A seeded sample of valid cells (valid: every element at the centre; inside `mask` if given) is
    classified together with the nodes each stride would interpolate it from; the stride's value there is
    the engine's own bilinear interpolation (windows._axis_weights, weights renormalised over valid nodes).
    Cells that are nodes at a stride are exact there and are left out of that stride's figures, as in the
    check of a full run. Costs at most n_sample × (1 + 4 × strides) windows. No classes: a probe has no map.
    """
    t0 = time.perf_counter()
    nrows, ncols = stack.nrows, stack.ncols
    valid = _valid_centres(model, stack, bands, tile_rows)
    if mask is not None:
        valid &= wn.checked_mask(mask, stack)
    rows, cols = draw_sample(valid, n_sample, seed)
    geometry = {}
    wanted = np.zeros((nrows, ncols), bool)
    wanted[rows, cols] = True
    for s in strides:
        rn, cn = wn.stride_nodes(nrows, s), wn.stride_nodes(ncols, s)
        r0, r1, wr = wn._axis_weights(nrows, rn)
        c0, c1, wc = wn._axis_weights(ncols, cn)
        corners = [(rn[r0[rows]], cn[c0[cols]], (1 - wr[rows]) * (1 - wc[cols])),
                   (rn[r0[rows]], cn[c1[cols]], (1 - wr[rows]) * wc[cols]),
                   (rn[r1[rows]], cn[c0[cols]], wr[rows] * (1 - wc[cols])),
                   (rn[r1[rows]], cn[c1[cols]], wr[rows] * wc[cols])]
        is_node = np.isin(rows, rn) & np.isin(cols, cn)
        for rr, cc, _ in corners:
            wanted[rr, cc] = True
        geometry[s] = (corners, is_node)
    wr_all, wc_all = np.nonzero(wanted)
    values, stats = classify_cells(model, stack, bands, wr_all, wc_all, batch_size, tile_rows, progress)
    exact_map = np.full((nrows, ncols), np.nan)
    exact_map[wr_all, wc_all] = values
    exact = exact_map[rows, cols]
    seconds = time.perf_counter() - t0
    out = {}
    for s, (corners, is_node) in geometry.items():
        num = np.zeros(rows.size)
        den = np.zeros(rows.size)
        for rr, cc, w in corners:
            v = exact_map[rr, cc]
            good = np.isfinite(v)
            num += np.where(good, w * np.where(good, v, 0.0), 0.0)
            den += np.where(good, w, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            interp = np.where(den > 1e-12, num / np.where(den > 1e-12, den, 1), np.nan)
        keep = ~is_node & np.isfinite(interp)  # nodes are exact; orphans are classified exactly by the engine
        sample = StrideSample(stride=int(s), rows=rows[keep], cols=cols[keep], interpolated=interp[keep],
                              exact=exact[keep], n_interpolated=int(keep.sum()), n_windows=stats.n_windows,
                              seconds=seconds, seed=seed)
        out[int(s)] = measure(sample, top_threshold=None)
    return out


def _valid_centres(model, stack, bands, tile_rows=None):
    """bool (rows, cols): cells whose centre has every element after the card's transform (as the engine sees)."""
    prep = wn._Preparer(model.card, stack, bands, wn.DEFAULT_BATCH, tile_rows)
    valid = np.zeros((stack.nrows, stack.ncols), bool)
    for r0, r1 in prep.tile_ranges():
        block = wn.transform_values(stack.read(r0, r1, prep.bands), model.card.elements)
        valid[r0:r1] = np.isfinite(block).all(axis=0)
    return valid


def strides_below(stride, most=4):
    """Strides to probe when `stride` errs too much: up to `most` distinct smaller ones from 2, largest first."""
    picks = {max(2, round(stride * f)) for f in (0.75, 0.5, 0.25)} | {2}
    return sorted((k for k in picks if k < stride), reverse=True)[:most]


def choose_by_error(time_stride, measured, probe, p95_limit=P95_LIMIT, class_limit=CLASS_LIMIT):
    """(stride, reason): the demo's stride, chosen by the measured error and not only by time.

    time_stride: the smallest stride the time budget allows (it spends the budget on accuracy).
    measured: its run's StrideError. probe: {smaller stride: StrideError} (probe_strides), used only when
    the measured error is too large; then the largest probed stride whose 95th-percentile error is within
    the limit, else 1 (every cell classified).
    """
    if measured is None or measured.exact:
        return time_stride, f"stride {time_stride}: every cell classified, no interpolation error"
    changed = measured.class_changed or 0.0
    if measured.p95 <= p95_limit and changed <= class_limit and not measured.targets_off:
        return time_stride, (f"stride {time_stride} kept: the smallest stride within the time budget, and its "
                             f"measured error is within the limits (95th percentile {measured.p95:.3f} ≤ "
                             f"{p95_limit:g}, {100 * changed:.1f} % class changes ≤ {100 * class_limit:g} %)")
    why = (f"stride {time_stride} measured a 95th-percentile error of {measured.p95:.3f} and "
           f"{100 * changed:.1f} % class changes (limits {p95_limit:g}, {100 * class_limit:g} %)"
           + (f", and a mean error of {measured.top_mae:.3f} in the top {measured.top_percent:g} % (limit "
              f"{TOP_MAE_LIMIT:g})" if measured.targets_off else ""))
    passing = [k for k, e in (probe or {}).items()
               if k < time_stride and e.n_sample and e.p95 <= p95_limit and not e.targets_off]
    if passing:
        k = max(passing)
        return k, (f"{why}; stride {k} is the largest probed stride within {p95_limit:g} "
                   f"(95th percentile {probe[k].p95:.3f} on {probe[k].n_sample} sampled cells)")
    return 1, f"{why}; no probed stride was within {p95_limit:g}, so every cell is classified (stride 1)"
