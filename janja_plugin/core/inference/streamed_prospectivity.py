"""janja:prospectivity streamed to GeoTIFF: memory bounded by a row tile, not by the grid.

prospectivity.run_prospectivity holds the whole probability, class and label grids (and the target
search's temporaries: about 50 bytes a cell, 5 GB at 10^8 cells). Here the window engine's row tiles
(windows.stream_predict: each tile plus half a window of halo; stride nodes are the whole grid's) are
written as they are finished (TiledStackWriter: tiled, compressed, with overviews), and everything
that needs the whole map is computed from running per-tile numbers or from passes that read the
written probability back in blocks of 256 rows. Every value equals the whole-grid run's
(tests/core/test_streamed_prospectivity.py compares them cell for cell, tags and report numbers too):

- deposit scores, the number of cells with a value, min/max and the report's histogram: gathered
  while the tiles are written (no extra pass);
- the constant-map check (0.1-99.9 % spread) and the top-5 % threshold of the stride check: exact
  percentiles (map_stats.percentiles), 3 passes each batch;
- prediction-area thresholds from deposits: 200 exact quantile levels (3 passes), the area at or
  above each (1 pass), the high class's share (1 pass) and the moderate quantile (3 passes);
- classes and target areas: one pass classifies, writes the classes and labels the high cells of each
  block (8-connected), joining the patches that touch across block boundaries (union-find); a second
  pass sums each patch's cells in raster order, as the whole-grid ndimage sums do (so the means are
  the same bits) and the patches are ranked; a third writes each cell's rank to the label raster.
  Memory: about 60 bytes per high-class patch (provisional patches of every block, their links, sums);
- the stride check's sample (stride_check.draw_stratified: a uniform stratum and a weighted top-5 %
  stratum): drawn by rank among the interpolated cells (counted per tile while streaming) and among
  the top ones the uniform part missed, found in 2 passes, and classified exactly
  (stride_check.classify_cells, the cells held sparse).

At stride > 1 with known deposits that is about 19 reads of the probability file (8 for the
prediction-area thresholds, 3 + 3 for percentiles, 3 for the targets, 2 for the sample): with a cheap
model about as long as the map itself (10^7 cells: 20.8 s streamed, 16.4 s whole grid), negligible
beside a real network's windows.

Peak memory: see memory_bound(). The files appear only when complete: a refusal, an error or a
cancel leaves none.
"""

import os
import time
from contextlib import ExitStack
from typing import NamedTuple

import numpy as np

from ..errors import JanjaInputError
from ..tiled_geotiff import BLOCK, TiledStackWriter, check_free_disk, limited_block_cache
from . import distribution as dist
from . import map_stats as ms
from . import model_card as mc
from . import prospectivity as pr
from . import stride_check as sc
from . import windows as wn

READ_ROWS = BLOCK  # rows per block of the passes that read the probability back, at most ...
READ_CELLS = 2**20  # ... and about this many cells: their temporaries (~60 bytes a cell) stay near 60 MB


def rows_per_block(ncols):
    """Rows per block of the read-back passes: READ_ROWS, fewer on wide grids (about READ_CELLS cells)."""
    return max(1, min(READ_ROWS, READ_CELLS // max(1, ncols)))


def map_reader(writer):
    """read(r0, r1) -> rows [r0, r1) of band 1 of a TiledStackWriter's file, for the read-back passes."""
    return lambda r0, r1: writer.read_rows(0, r0, r1)


class _Patches:
    """High-class patches labelled block by block and joined across block edges (8-connected)."""

    def __init__(self):
        self.parent = np.zeros(1, np.int64)  # provisional patch -> a smaller one of the same patch (0 = none)
        self.n = 0
        self.offsets = []  # first provisional id - 1 of each block
        self.last_row = None

    def label_block(self, high):
        """Provisional labels of a block (0 = not high), numbered after the previous blocks', and links to the
        previous block's last row."""
        from scipy import ndimage

        raw, m = ndimage.label(high, structure=np.ones((3, 3), int))
        raw = np.where(raw > 0, raw + self.n, 0)
        self.offsets.append(self.n)
        if self.parent.size < self.n + m + 1:
            grown = np.zeros(max(2 * self.parent.size, self.n + m + 1), np.int64)
            grown[:self.parent.size] = self.parent
            self.parent = grown
        self.parent[self.n + 1:self.n + m + 1] = np.arange(self.n + 1, self.n + m + 1)
        self.n += m
        if self.last_row is not None and raw.shape[0]:
            above, below = self.last_row, raw[0]
            for shift in (-1, 0, 1):
                a = above[max(0, shift):above.size + min(0, shift)]
                b = below[max(0, -shift):below.size + min(0, -shift)]
                both = (a > 0) & (b > 0)
                for x, y in np.unique(np.column_stack([a[both], b[both]]), axis=0):
                    self._union(int(x), int(y))
        if raw.shape[0]:
            self.last_row = raw[-1].copy()
        return raw

    def _find(self, x):
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def _union(self, x, y):
        rx, ry = self._find(x), self._find(y)
        if rx != ry:  # the smaller id is the patch's first cell in raster order: it numbers the patch
            self.parent[max(rx, ry)] = min(rx, ry)

    def finish(self):
        """patch[provisional id] = 0-based patch number, in raster order of each patch's first cell."""
        parent = self.parent[:self.n + 1]
        for i in range(1, self.n + 1):  # ids only point to smaller ones: one sweep resolves every root
            parent[i] = parent[parent[i]]
        roots = np.unique(parent[1:])
        self.patch = np.zeros(self.n + 1, np.int64)
        self.patch[1:] = np.searchsorted(roots, parent[1:])
        self.n_patches = roots.size
        return self.n_patches

    def relabel(self, block_index, high):
        """The block's cells as patch numbers (-1 = not high), from the same labelling as label_block."""
        from scipy import ndimage

        raw, _ = ndimage.label(high, structure=np.ones((3, 3), int))
        return np.where(raw > 0, self.patch[np.where(raw > 0, raw + self.offsets[block_index], 0)], -1)


def map_blocks(nrows, ncols):
    """(r0, r1) of the read-back passes' blocks, top to bottom: the same blocks in every pass."""
    step = rows_per_block(ncols)
    return [(r0, min(r0 + step, nrows)) for r0 in range(0, nrows, step)]


def classes_and_targets(read, grid, moderate, high, constant, min_cells, cls_w, lab_w, tick):
    """Write the classes and labels, return (class counts high/moderate/low, [TargetArea]).

    Public: the per-window and shared-trunk (streamed_dense) streams classify their written maps here."""
    counts = np.zeros(4, np.int64)
    blocks = map_blocks(grid.nrows, grid.ncols)
    patches = _Patches()
    for r0, r1 in blocks:
        p = read(r0, r1)
        classes = np.zeros(p.shape, np.uint8) if constant else pr.classify(p, moderate, high)
        counts += np.bincount(classes.ravel(), minlength=4)
        if cls_w is not None:
            cls_w.write_band_rows(0, r0, np.where(classes > 0, classes, np.nan))
        patches.label_block(classes == 3)
        tick()
    n = patches.finish()
    if n == 0:
        if lab_w is not None:
            for r0, r1 in blocks:
                lab_w.write_band_rows(0, r0, np.full((r1 - r0, grid.ncols), np.nan, np.float32))
        return counts, []
    sums, n_cells, maxima = np.zeros(n), np.zeros(n), np.zeros(n)
    sum_r, sum_c = np.zeros(n), np.zeros(n)
    for b, (r0, r1) in enumerate(blocks):  # each patch's sums in raster order: the whole-grid bincount's bits
        p = read(r0, r1)
        ids = patches.relabel(b, (np.isfinite(p) & (p >= high)) if not constant else np.zeros(p.shape, bool))
        rr, cc = np.nonzero(ids >= 0)
        if rr.size:
            who, values = ids[rr, cc], p[rr, cc].astype(np.float64)
            np.add.at(sums, who, values)
            np.add.at(n_cells, who, 1.0)
            np.maximum.at(maxima, who, values)
            np.add.at(sum_r, who, (rr + r0).astype(np.float64))
            np.add.at(sum_c, who, cc.astype(np.float64))
        tick()
    lookup, targets = pr.rank_targets(n_cells, sums / n_cells, maxima, sum_r / n_cells, sum_c / n_cells, grid,
                                      min_cells)
    if lab_w is not None:
        for b, (r0, r1) in enumerate(blocks):
            p = read(r0, r1)
            ids = patches.relabel(b, np.isfinite(p) & (p >= high))
            ranks = np.where(ids >= 0, lookup[ids + 1], 0)
            lab_w.write_band_rows(0, r0, np.where(ranks > 0, ranks, np.nan))
            tick()
    return counts, targets


def prediction_area_thresholds(read, nrows, n, deposit_scores, rows=BLOCK):
    """prospectivity.prediction_area_thresholds on the written map: the same numbers, from passes (public: both
    streams, per-window and shared-trunk, use it)."""
    from ..evaluation.evaluate import prediction_area_at

    scores = pr.finite_deposit_scores(deposit_scores)
    t = np.unique(ms.quantiles(read, nrows, n, np.linspace(0.0, 1.0, 200), block_rows=rows))
    total = np.float64(n)
    area = 100.0 * (total - ms.count_below(read, nrows, t, rows).astype(np.float64)) / total
    high = float(prediction_area_at(t, area, scores).intersection_threshold)
    high_share = float(ms.count_at_least(read, nrows, high, rows) / n)
    moderate = float(ms.quantiles(read, nrows, n, 1.0 - min(0.5, 3.0 * high_share), block_rows=rows))
    if moderate >= high:
        moderate = high / 2.0
    return moderate, high


def _draw(n_pop, n, seed):
    """The sorted ranks stride_check.draw_sample picks among n_pop candidates (it draws by rank: the same
    generator call on the candidates' flat indices picks the same ranks)."""
    n = min(int(n), int(n_pop))
    if n <= 0:
        return np.zeros(0, np.int64)
    return np.sort(np.random.default_rng(seed).choice(n_pop, size=n, replace=False))


def stride_sample(read, grid, model, stack, bands, stride, tile_counts, n_windows, settings, progress, top_t):
    """stride_check.sample_stride_map (draw_stratified) on the written map: the same cells and weights.

    The uniform cells are drawn by rank among the interpolated cells (counted per tile while streaming);
    one pass over the blocks finds them and counts each block's interpolated cells in the map's top 5 %
    (top_t) that the uniform part missed; the top stratum is drawn by rank among those, and a second pass
    finds them in the blocks that hold them. Costs two reads of the map (node rows included)."""
    t0 = time.perf_counter()
    seed, ncols = settings.stride_seed, grid.ncols
    n_interp = int(sum(c for _, _, c in tile_counts))
    n = sc.sample_size(n_windows, n_interp) if settings.stride_sample is None else min(int(settings.stride_sample),
                                                                                         n_interp)
    uniform = _draw(n_interp, n, seed)
    top_ok = bool(np.isfinite(top_t))
    found = []  # (rows, cols, values) per block, uniform stratum first
    blocks = []  # (r0, r1, flat indices of the block's uniform picks, top cells they missed)
    start = 0
    if uniform.size:
        for r0, r1 in map_blocks(grid.nrows, ncols):
            cand = sc.interpolated_rows(read, r0, r1, stride, grid.nrows, ncols)
            flat = np.flatnonzero(cand)
            picked = flat[uniform[(uniform >= start) & (uniform < start + flat.size)] - start]
            start += flat.size
            values = read(r0, r1)
            found.append((picked // ncols + r0, picked % ncols, values.ravel()[picked]))
            n_left = 0
            if top_ok:
                with np.errstate(invalid="ignore"):
                    top = cand & (values >= top_t)
                n_left = int(np.count_nonzero(top)) - int(np.count_nonzero(top.ravel()[picked]))
            blocks.append((r0, r1, picked, n_left))
    rows = np.concatenate([f[0] for f in found]) if found else np.zeros(0, np.int64)
    cols = np.concatenate([f[1] for f in found]) if found else np.zeros(0, np.int64)
    vals = np.concatenate([f[2] for f in found]) if found else np.zeros(0, np.float32)
    stratum, weights = np.zeros(rows.size, bool), np.ones(rows.size)
    if n_interp and rows.size:
        n_left_all = sum(b[3] for b in blocks)
        n_top_all = n_left_all + (int(np.count_nonzero(vals >= top_t)) if top_ok else 0)
        extra = _draw(n_left_all, max(sc.TOP_EXTRA_MIN, int(round(sc.TOP_EXTRA_SHARE * rows.size))), seed + 1)
        extra_found, start = [], 0
        for r0, r1, picked, n_left in blocks:
            mine = extra[(extra >= start) & (extra < start + n_left)] - start
            if mine.size:
                values = read(r0, r1)
                with np.errstate(invalid="ignore"):
                    left = (sc.interpolated_rows(read, r0, r1, stride, grid.nrows, ncols) & (values >= top_t)).ravel()
                left[picked] = False
                flat = np.flatnonzero(left)[mine]
                extra_found.append((flat // ncols + r0, flat % ncols, values.ravel()[flat]))
            start += n_left
        n_extra = sum(f[0].size for f in extra_found)
        p_uniform = rows.size / n_interp
        p_top = min(1.0, p_uniform + n_extra / n_top_all) if n_top_all else p_uniform
        rows = np.concatenate([rows] + [f[0] for f in extra_found])
        cols = np.concatenate([cols] + [f[1] for f in extra_found])
        vals = np.concatenate([vals] + [f[2] for f in extra_found])
        with np.errstate(invalid="ignore"):
            in_top = (vals >= top_t) if top_ok else np.zeros(vals.size, bool)  # every sampled cell is a candidate
        weights = 1.0 / np.where(in_top, p_top, p_uniform)
        stratum = np.r_[np.zeros(rows.size - n_extra, bool), np.ones(n_extra, bool)]
    exact, stats = sc.classify_cells(model, stack, bands, rows, cols, settings.batch_size, settings.tile_rows,
                                     progress, 0.9, 1.0)
    return sc.StrideSample(stride=int(stride), rows=rows, cols=cols, interpolated=vals.astype(np.float64),
                           exact=exact, n_interpolated=n_interp, n_windows=stats.n_windows,
                           seconds=time.perf_counter() - t0, seed=seed, top_stratum=stratum, weights=weights)


def map_tally(deposit_cells):
    """The running numbers of a probability map being written (map_stats.RunningStats): the report's 20-bin
    histogram and the probability at each known deposit cell ((rows, cols), or None)."""
    rows, cols = (None, None) if deposit_cells is None else deposit_cells
    return ms.RunningStats(20, rows, cols)


def open_writers(files, grid, crs_wkt, first, *optional):
    """TiledStackWriters of a streamed run's outputs, entered on the ExitStack `files` (a failure or a cancel
    leaves no file): first = (path, band name), always written; each optional one is None without a path."""
    path, band = first
    writers = [files.enter_context(TiledStackWriter(path, [band], grid, crs_wkt))]
    for path, band in optional:
        writers.append(files.enter_context(TiledStackWriter(path, [band], grid, crs_wkt)) if path else None)
    return writers


class ClassedMap(NamedTuple):
    """What classify_written_map found: the constant check, the thresholds and the classes' numbers."""

    constant: bool
    spread: float
    moderate: float
    high: float
    method: str
    counts: np.ndarray  # cells per class, index 1 low, 2 moderate, 3 high
    targets: list


def classify_written_map(read, grid, settings, n_finite, deposit_scores, cls_w, lab_w, tick):
    """The whole-map passes after a probability map is written, the same for the per-window and shared-trunk
    streams: the constant check; the thresholds (the user's, from the deposits' scores by prediction area
    when deposit_scores is not None, or the user's unused on a constant map); the classes and target areas
    written (classes_and_targets). tick(share) moves progress on and cancels."""
    nrows, rows = grid.nrows, rows_per_block(grid.ncols)
    constant, spread = ms.constant_map(read, nrows, n_finite, rows)
    tick()
    if constant:
        moderate, high, method = settings.moderate, settings.high, "none: the map is constant"
    elif deposit_scores is not None:
        moderate, high = prediction_area_thresholds(read, nrows, n_finite, deposit_scores, rows)
        method = "prediction-area"
    else:
        moderate, high, method = settings.moderate, settings.high, "user"
    tick()
    counts, targets = classes_and_targets(read, grid, moderate, high, constant, settings.min_target_cells, cls_w,
                                          lab_w, lambda: tick(0.0005))
    return ClassedMap(constant, spread, moderate, high, method, counts, targets)


def streamed_result(check, model, settings, stats, tally, classed, grid, crs_wkt, stride, stride_error):
    """The ProspectivityResult of a streamed run (no arrays; `summary` carries the report's numbers), with the
    whole-grid run's notes: one builder for the per-window and shared-trunk streams."""
    low, top = tally.value_range()
    notes = pr.run_notes(check, model, settings, stats, classed.constant, classed.spread, low, top, classed.targets,
                         classed.high)
    counts = classed.counts
    return pr.ProspectivityResult(
        probability=None, classes=None, labels=None, targets=classed.targets,
        thresholds={"moderate": float(classed.moderate), "high": float(classed.high), "method": classed.method},
        grid=grid, crs_wkt=crs_wkt, card=model.card, model_path=str(model.path), stats=stats, stride=stride,
        seconds=0.0, notes=notes, distribution=check, constant=classed.constant, spread=classed.spread,
        stride_error=stride_error,
        summary={"class_counts": [int(counts[3]), int(counts[2]), int(counts[1])], "n_finite": tally.n_finite,
                 "histogram": tally.hist},
    )


def tag_and_finish(result, writers, progress, cancelled):
    """Tag every written file with the result's tags, then the run's last chance to cancel, both before the
    files are closed (and only then moved into place): shared by every streamed run."""
    for w in writers:
        if w is not None:
            w.set_tags(result.tags())
    if progress is not None and progress(1.0):
        raise wn.Cancelled(cancelled)


def pass_ticker(progress, checked, cancelled):
    """(end of the map's share of progress, tick): the map takes 0-0.85 (0.95 without a stride check); each
    tick(share) of a whole-map pass moves on by `share`, never past 0.9 (1.0), and cancels like the map does."""
    end_map = 0.85 if checked else 0.95
    done = [end_map]

    def tick(share=0.005):
        done[0] = min(done[0] + share, 0.9 if checked else 1.0)
        if progress is not None and progress(done[0]):
            raise wn.Cancelled(cancelled)

    return end_map, tick


def run_prospectivity_to_files(stack, model, probability_path, classes_path=None, labels_path=None, settings=None,
                               mask=None, deposit_cells=None, progress=None, grid=None, crs_wkt=None,
                               memory_limit=None, scheduler=None):
    """run_prospectivity written tile by tile into GeoTIFFs (probability; classes and target-rank labels
    when their paths are given): the same values, tags, targets, thresholds, notes and stride check. The
    result's probability, classes and labels are None; its `summary` carries the report's numbers.
    progress(fraction) -> True cancels (windows.Cancelled) and no file is left. scheduler: a Dask scheduler
    address or Client to compute the row tiles on (distributed_inference); None or "" = this computer.
    A run on the shared trunk (forced, or the card's head trained on its features) goes to
    streamed_dense.run_dense_to_files: band by band, its bands on the cluster too when a scheduler is given.
    The result's computed_on says where the tiles or bands ran (None: this computer).
    """
    settings = settings or pr.ProspectivitySettings()
    t0 = time.perf_counter()
    if not isinstance(model, mc.LoadedModel):
        model = mc.load_model(model, threads=settings.threads)
    card = model.card
    if pr.uses_dense(settings, card):  # forced, or the card's head was trained on shared-trunk features
        pr.check_thresholds(settings.moderate, settings.high)
        from . import streamed_dense

        return streamed_dense.run_dense_to_files(stack, model, probability_path, classes_path, labels_path, settings,
                                                 mask, deposit_cells, progress, grid, crs_wkt, memory_limit,
                                                 scheduler=scheduler)
    sc.check_sample(settings.stride_sample)
    pr.check_thresholds(settings.moderate, settings.high)
    # GDAL's block cache (5 % of RAM by default) would keep the stack's and the outputs' blocks as they are
    # read: 1.2 GB at 10^8 cells here, measured, before the map had started (the distribution check's reads)
    with limited_block_cache(), wn.checked_stack(stack, card, grid, crs_wkt) as (stack, bands, grid, crs_wkt):
        check_memory(grid, model, len(bands), settings, masked=mask is not None, limit=memory_limit)
        outputs = [(p, 1) for p in (probability_path, classes_path, labels_path) if p]
        check_free_disk(outputs, grid)
        check = dist.guard(card, dist.read_columns(stack, bands, mask), settings.extrapolate)
        checked = settings.stride > 1
        end_map, tick = pass_ticker(progress, checked, "The prospectivity run was cancelled.")

        with ExitStack() as files:
            cluster = None
            if scheduler is not None and not (isinstance(scheduler, str) and not scheduler.strip()):
                from . import distributed_inference as di

                cluster = files.enter_context(di.connect(scheduler))  # before any file is started
            prob_w, cls_w, lab_w = open_writers(files, grid, crs_wkt, (probability_path, "probability"),
                                                (classes_path, "class"), (labels_path, "target_rank"))
            stats = wn.EngineStats()
            tally = map_tally(deposit_cells)
            tile_counts = []
            scaled = None if progress is None else (lambda f: progress(end_map * f))
            if cluster is None:
                tiles = wn.stream_predict(model, stack, bands, settings.stride, mask, settings.batch_size,
                                          settings.tile_rows, scaled, stats=stats)
            else:  # the same tiles, computed by the cluster's workers
                tiles = di.stream_tiles(cluster, model, stack, bands, settings.stride, mask, settings.batch_size,
                                        settings.tile_rows, scaled, stats)
            for tile in tiles:
                prob_w.write_band_rows(0, tile.row0, tile.values)
                tally.add(tile.row0, tile.values)
                if tile.interpolated is not None:
                    tile_counts.append((tile.row0, tile.row1, int(tile.interpolated.sum())))
            read = map_reader(prob_w)
            n_finite = tally.n_finite
            classed = classify_written_map(read, grid, settings, n_finite,
                                           None if deposit_cells is None else tally.at_cells, cls_w, lab_w, tick)
            stride_error = sc.no_check() if not checked else None
            if checked:
                top_t = float(ms.percentiles(read, grid.nrows, n_finite, 95.0, np.float32,
                                             rows_per_block(grid.ncols))) if n_finite else float("nan")
                sample = stride_sample(read, grid, model, stack, bands, settings.stride, tile_counts,
                                        stats.n_windows, settings, progress, top_t)
                stride_error = sc.measure(sample, breaks=None if classed.constant else [classed.moderate, classed.high],
                                          top_threshold=top_t)
            result = streamed_result(check, model, settings, stats, tally, classed, grid, crs_wkt, settings.stride,
                                     stride_error)
            result.computed_on = None if cluster is None else di.where(cluster)
            tag_and_finish(result, (prob_w, cls_w, lab_w), progress, "The prospectivity run was cancelled.")
    result.seconds = time.perf_counter() - t0
    result.paths = {"probability": probability_path, "class": classes_path, "target_rank": labels_path}
    return result


# Peak memory of a streamed run, by part (bytes); calibrated in bench/bench_prospectivity.py --streamed.
MEMORY_BASE = 300 * 1024**2  # Python, numpy, scipy, GDAL, onnxruntime loaded (QGIS adds its own)
MEMORY_MODEL_FACTOR = 3  # onnxruntime's copy of the weights, its arena and the file read: ~3 x the file
PREFETCH_BATCHES = 6  # batches of prepared windows alive at once (queue of 3, one running, one being cut)


def memory_bound(grid, model, n_elements, settings=None, masked=False):
    """About the peak memory (bytes) of run_prospectivity_to_files, whatever the grid's height:

    base + 3 x the model file + the window engine's tile (windows.TILE_BUDGET_BYTES) + prepared batches
    (6 x batch x channels x height x width x 4) + the tile's outputs (rows x ncols x 10 bytes, twice)
    + stride node rows (tile rows / k + 2 rows of ncols / k floats) + GDAL's block cache (held to 64 MB)
    + the passes' temporaries (60 bytes for each of READ_CELLS cells) + 1 byte a cell for a mask (the caller's array)
    + 60 bytes per high-class patch (not known beforehand; a few thousand in practice, so left out).
    """
    from ..tiled_geotiff import OVERVIEW_CACHE

    settings = settings or pr.ProspectivitySettings()
    card = model.card
    try:
        model_bytes = os.path.getsize(model.path)
    except (OSError, TypeError):
        model_bytes = 0
    h = card.window_pixels // 2
    budget_rows = settings.tile_rows or max(1, wn.TILE_BUDGET_BYTES // (n_elements * (grid.ncols + 2 * h) * 48)
                                            - 2 * h)
    tile_rows = min(budget_rows, grid.nrows)
    engine = max(wn.TILE_BUDGET_BYTES, n_elements * (tile_rows + 2 * h) * (grid.ncols + 2 * h) * 48)
    channels = len(card.channel_map)
    batches = PREFETCH_BATCHES * settings.batch_size * channels * card.input_height * card.input_width * 4
    outputs = 2 * tile_rows * grid.ncols * 10
    k = max(1, int(settings.stride))
    nodes = (tile_rows // k + 2) * (grid.ncols // k + 2) * 4 if k > 1 else 0
    blocks = READ_CELLS * 60  # the passes' temporaries
    mask = grid.n_cells if masked else 0
    return (MEMORY_BASE + MEMORY_MODEL_FACTOR * model_bytes + engine + batches + outputs + nodes + OVERVIEW_CACHE
            + blocks + mask)


WINDOW_ADVICE = "Use fewer windows per batch, a larger cell size, or split the area into strips."


def refuse_memory(need, limit, doing, grid, unit="tile", held="the model and its batches", advice=WINDOW_ADVICE):
    """Refuse, before any work, a streamed run that needs more than `limit` bytes (default: raster_grid's
    DEFAULT_MEMORY_LIMIT, read now), with one sentence for every streamed run (doing: "Mapping prospectivity",
    "Scoring anomalies", ...; streamed `unit` by `unit`; `held`: what is held at once). Returns need."""
    from .. import raster_grid

    limit = raster_grid.DEFAULT_MEMORY_LIMIT if limit is None else limit
    if need > limit:
        raise JanjaInputError(
            f"{doing} on {grid.ncols} x {grid.nrows} cells would need about {need / 1024**3:.1f} GB of memory even "
            f"streamed {unit} by {unit} (limit {limit / 1024**3:.1f} GB): rows this wide, {held} are held at once. "
            f"{advice}")
    return need


def check_memory(grid, model, n_elements, settings=None, masked=False, limit=None):
    """Refuse, before any work, a streamed run whose memory_bound exceeds `limit` (refuse_memory); the cells
    count only through the grid's width and the mask."""
    return refuse_memory(memory_bound(grid, model, n_elements, settings, masked), limit, "Mapping prospectivity",
                         grid)
