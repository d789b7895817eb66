"""janja:prospectivity's shared-trunk ("dense") mode streamed to GeoTIFF: memory bounded by a band of trunk tiles.

prospectivity.run_prospectivity with the shared trunk holds the whole probability (and, when the card smooths
its map, a float64 log-odds grid) plus the class and label grids. Here dense.dense_bands' row bands (one row
of trunk tiles, each reading only its stack rows and the trunk's margin) are written as they are finished,
with the writer, whole-map passes, tags, notes and report numbers of the per-window streamed run
(streamed_prospectivity); the stride line is the shared trunk's ("every cell is the model's exact output").

Map smoothing (card dense.map_smoothing_cells, sigma): a smoothed cell reads the log-odds within
h = halo_cells(sigma) rows of it, so a rolling window of log-odds rows is kept and rows are smoothed once the
h rows below them exist, padded with the real rows h above and below. The Gaussian is separable and cut at
h cells, so those rows get exactly the whole-map values; only at the grid's own top and bottom does the
block edge meet scipy's 'reflect', as it does for the whole map (tests/core/test_streamed_dense.py checks the
equality cell for cell with bands thinner and thicker than the halo).

With a Dask scheduler (distributed_inference.stream_dense_bands) each band's trunk and head run on the
cluster's workers (the band's stack rows and the trunk's margin in; its values and valid mask out), in order,
a few at a time; this process keeps the smoothing, the writing and every statistic, so the files are the
local run's cell for cell. The trunk and head files travel once to every worker.

Peak memory: memory_bound(). The files appear only when complete: a refusal, an error or a cancel leaves none.
"""

import os
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from ..smoothing import halo_cells, smooth
from ..tiled_geotiff import check_free_disk, limited_block_cache
from . import dense
from . import distribution as dist
from . import prospectivity as pr
from . import streamed_prospectivity as sp
from . import stride_check as sc
from . import windows as wn


def smoothed_rows(bands, sigma, nrows, mask=None):
    """(row0, float32 probability rows) from dense_bands' log-odds bands, smoothed as over the whole map.

    Keeps at most h + band + h rows of log-odds (h = halo_cells(sigma)); whatever the band height (thinner
    than h too), rows [done, end) are smoothed on the block [done - h, end + h) cut to the grid, so the
    filter never reflects at a block edge inside the grid.
    """
    h = halo_cells(sigma)
    held, held0, done = [], 0, 0  # log-odds row blocks from grid row held0 on; rows before `done` are written
    for band in bands:
        held.append(band.values)
        have = band.row1
        end = nrows if have >= nrows else have - h
        if end <= done:
            continue
        block = np.concatenate(held) if len(held) > 1 else held[0]
        lo = max(0, done - h)
        s = smooth(block[lo - held0:min(nrows, end + h) - held0], sigma)[done - lo:end - lo]
        keep = np.isfinite(s) if mask is None else np.isfinite(s) & mask[done:end]
        p = np.full(s.shape, np.nan, np.float32)
        p[keep] = (1.0 / (1.0 + np.exp(-s[keep]))).astype(np.float32)
        yield done, p
        done = end
        first = max(0, done - h)  # rows a later block still reads
        held, held0 = [block[first - held0:]], first


def run_dense_to_files(stack, model, probability_path, classes_path=None, labels_path=None, settings=None,
                       mask=None, deposit_cells=None, progress=None, grid=None, crs_wkt=None, memory_limit=None,
                       tile=None, scheduler=None):
    """The shared-trunk run_prospectivity written band by band (streamed_prospectivity.run_prospectivity_to_files
    calls it when the run uses the shared trunk): the same values, tags, targets, thresholds and notes. model:
    a model_card.LoadedModel. tile: trunk tile (rows, cols) of output cells (default dense.DEFAULT_TILE, as the
    whole-grid run). progress(fraction) -> True cancels (windows.Cancelled) and no file is left. scheduler: a
    Dask scheduler address or Client to compute the bands on (distributed_inference); None or "" = this computer.
    The result's computed_on says where the bands ran (None: here)."""
    settings = settings or pr.ProspectivitySettings()
    t0 = time.perf_counter()
    card = model.card
    sigma = dense.map_smoothing_cells(card)
    shifts = settings.dense_shifts or int((card.dense or {}).get("shifts", 1))
    with limited_block_cache(), wn.checked_stack(stack, card, grid, crs_wkt) as (stack, bands, grid, crs_wkt):
        check_memory(grid, model, len(bands), shifts, tile, masked=mask is not None, limit=memory_limit)
        check_free_disk([(p, 1) for p in (probability_path, classes_path, labels_path) if p], grid)
        check = dist.guard(card, dist.read_columns(stack, bands, mask), settings.extrapolate)
        parts = dense.load_parts(model)
        end_map, tick = sp.pass_ticker(progress, False, "The prospectivity run was cancelled.")
        with ExitStack() as files:
            cluster = None
            if scheduler is not None and not (isinstance(scheduler, str) and not scheduler.strip()):
                from . import distributed_inference as di

                cluster = files.enter_context(di.connect(scheduler))  # before any file is started
            prob_w, cls_w, lab_w = sp.open_writers(files, grid, crs_wkt, (probability_path, "probability"),
                                                   (classes_path, "class"), (labels_path, "target_rank"))
            stats = wn.EngineStats()
            tally = sp.map_tally(deposit_cells)
            scaled = None if progress is None else (lambda f: progress(end_map * f))
            t_map = time.perf_counter()
            if cluster is None:
                out = dense.dense_bands(model, parts, stack, bands, mask, shifts, tile, scaled, stats=stats,
                                        smoothing_sigma=sigma)
            else:  # the same bands, computed by the cluster's workers
                out = di.stream_dense_bands(cluster, model, parts, stack, bands, mask, shifts, tile, scaled,
                                            stats=stats, smoothing_sigma=sigma)
            rows_out = smoothed_rows(out, sigma, grid.nrows, wn.checked_mask(mask, stack)) if sigma > 0 else (
                (b.row0, b.values) for b in out)
            for row0, values in rows_out:
                prob_w.write_band_rows(0, row0, values)
                tally.add(row0, values)
            stats.seconds = time.perf_counter() - t_map
            classed = sp.classify_written_map(sp.map_reader(prob_w), grid, settings, tally.n_finite,
                                              None if deposit_cells is None else tally.at_cells, cls_w, lab_w, tick)
            # as the whole-grid shared-trunk run: exact at every cell for a head trained on these features
            stride_error = sc.dense_exact(settings.stride) if pr.dense_head(card) else None
            result = sp.streamed_result(check, model, settings, stats, tally, classed, grid, crs_wkt, 1, stride_error)
            result.computed_on = None if cluster is None else di.where(cluster)
            sp.tag_and_finish(result, (prob_w, cls_w, lab_w), progress, "The prospectivity run was cancelled.")
    result.seconds = time.perf_counter() - t0
    result.paths = {"probability": probability_path, "class": classes_path, "target_rank": labels_path}
    return result


# Peak memory of a streamed shared-trunk run, by part (bytes); see bench/bench_prospectivity.py --streamed --dense.
TRUNK_BYTES_PER_PIXEL = 192  # onnxruntime's activations per trunk input pixel: Inception-v3 measured 160-172 MiB
# per 10^6 px (425 x 1385 px, the default tile at 75 px / 15 cells: 94 MiB; 850 x 2770 px: 405 MiB), 1 thread


def memory_bound(grid, model, n_elements, shifts=1, tile=None, masked=False):
    """About the peak memory (bytes) of run_dense_to_files, whatever the grid's height:

    the per-window stream's base (streamed_prospectivity.MEMORY_BASE) + 3 x the model, trunk and head files
    + the trunk's activations on one tile (TRUNK_BYTES_PER_PIXEL x its input pixels; the tile is fixed, so
    this does not grow with the grid) + the tile's image (float64, three copies while resized) + its
    feature nodes (shifts^2 x nodes x features) + the band's transformed stack rows (full width, about 48
    bytes an element cell with their temporaries, as windows.TILE_BUDGET_BYTES counts them) + the band's
    outputs and, with map smoothing, the rolling log-odds rows and the Gaussian's temporaries (band + 2
    halos, 8 arrays of 8 bytes) + GDAL's block cache (64 MB) + the passes' blocks (60 MB) + 1 byte a cell
    for a mask (the caller's array).
    """
    from ..tiled_geotiff import OVERVIEW_CACHE

    card = model.card
    spec = card.dense or {}
    folder = Path(model.path).parent
    files = 0
    for path in [Path(model.path)] + [folder / spec[p] for p in ("trunk", "head") if spec.get(p)]:
        try:
            files += os.path.getsize(path)
        except (OSError, TypeError):
            pass
    factor = max(1, card.input_height // card.window_pixels)
    stride = int(spec.get("feature_stride") or card.input_height)
    shifts = max(1, int(shifts or 1))
    step = max(1, stride // shifts)
    tile_rows, tile_cols = (int(t) for t in (tile or dense.DEFAULT_TILE))
    tile_rows += step  # rounded up to the node period (at most one node step of pixels)
    tile_cols += step
    margin = card.window_pixels + 2 + -(-stride // factor)  # 2 half windows, the resize margin, the extra cells
    px_r, px_c = factor * (min(tile_rows, grid.nrows) + margin), factor * (min(tile_cols, grid.ncols) + margin)
    channels = len(card.channel_map)
    activations = TRUNK_BYTES_PER_PIXEL * px_r * px_c
    image = 3 * 8 * channels * px_r * px_c
    n_features = int(spec.get("features") or 2048)
    nodes = 2 * shifts * shifts * (px_r // stride + 2) * (px_c // stride + 2) * n_features * 4
    band_rows = min(tile_rows, grid.nrows)
    stack_rows = n_elements * (band_rows + margin) * (grid.ncols + margin) * 48
    halo = halo_cells(dense.map_smoothing_cells(card))
    outputs = band_rows * grid.ncols * (8 + 1 + 4) + (band_rows + 2 * halo) * grid.ncols * 8 * 8 * (halo > 0)
    head = 2 * 1024 * n_features * 4  # a head batch of features and its copy
    blocks = sp.READ_CELLS * 60
    return (sp.MEMORY_BASE + sp.MEMORY_MODEL_FACTOR * files + activations + image + nodes + stack_rows + outputs
            + head + OVERVIEW_CACHE + blocks + (grid.n_cells if masked else 0))


def check_memory(grid, model, n_elements, shifts=1, tile=None, masked=False, limit=None):
    """Refuse, before any work, a streamed shared-trunk run whose memory_bound exceeds `limit` (default:
    raster_grid's DEFAULT_MEMORY_LIMIT, read now, streamed_prospectivity.refuse_memory); the cells count only
    through the grid's width and the mask."""
    return sp.refuse_memory(memory_bound(grid, model, n_elements, shifts, tile, masked), limit,
                            "Mapping prospectivity with the shared trunk", grid, unit="band",
                            held="the model and the trunk's tile",
                            advice="Use a larger cell size, or split the area into strips.")
