"""janja:anomaly_score streamed to GeoTIFF: memory bounded by a row tile, not by the grid.

anomaly_score.run_anomaly_score + write_rasters hold the whole score and class grids. Here the window
engine's row tiles (windows.stream_predict, as in streamed_prospectivity) are written as they are finished,
and what needs the whole map comes from running per-tile numbers or from passes reading the written score
back in blocks (streamed_prospectivity's helpers, not copies):

- the cells with a score, min/max, the report's 40-bin histogram and the score under each sample: gathered
  while the tiles are written;
- the constant-map check (0.1-99.9 % spread, float64), the class breaks (the map's percentiles, float32 as
  np.percentile gives them on the float32 score) and the stride check's top-5 % threshold: exact
  percentiles (map_stats), 3 passes a batch;
- the classes: one more pass classifies each block, counts the classes and writes the class raster;
- the stride check's sample: streamed_prospectivity.stride_sample (uniform + top stratum, 2 passes).

Every value equals the whole-grid run's: files, tags, breaks, notes, stride check and report
(tests/core/test_streamed_anomaly.py). The files appear only when complete: a refusal, an error or a
cancel leaves none. Peak memory: memory_bound().
"""

import time
from contextlib import ExitStack

import numpy as np

from ..tiled_geotiff import check_free_disk, limited_block_cache
from . import anomaly_score as an
from . import distribution as dist
from . import map_stats as ms
from . import model_card as mc
from . import streamed_prospectivity as sp
from . import stride_check as sc
from . import windows as wn

DOING = "Scoring anomalies"  # the refusals' words on a Dask cluster (distributed_inference.connect)
CANCELLED = "The anomaly-score run was cancelled."
POINT_BYTES = 64  # per sample: its x, y (the caller's), cell row, column, inside flag, score


def memory_bound(grid, model, n_elements, settings=None, masked=False, n_points=0):
    """About the peak memory (bytes) of run_anomaly_score_to_files: streamed_prospectivity.memory_bound (the
    same engine, tiles, GDAL cache and read-back blocks; the class pass holds one block, less than the target
    search it budgets) + POINT_BYTES per sample. It does not grow with the grid's height."""
    return sp.memory_bound(grid, model, n_elements, settings or an.AnomalySettings(), masked) + POINT_BYTES * n_points


def check_memory(grid, model, n_elements, settings=None, masked=False, n_points=0, limit=None):
    """Refuse, before any work, a run whose memory_bound exceeds `limit` (streamed_prospectivity.refuse_memory)."""
    return sp.refuse_memory(memory_bound(grid, model, n_elements, settings, masked, n_points), limit,
                            "Scoring anomalies", grid)


def run_anomaly_score_to_files(stack, model, score_path, classes_path=None, settings=None, mask=None, sample_xy=None,
                               progress=None, grid=None, crs_wkt=None, memory_limit=None, scheduler=None):
    """run_anomaly_score + write_rasters, written tile by tile: the same files, tags, breaks, notes, stride check
    and sample scores. The result's score and classes are None; its `summary` carries the report's numbers,
    `paths` the files and `computed_on` where the tiles ran. progress(fraction) -> True cancels
    (windows.Cancelled) and no file is left. scheduler: a Dask scheduler address or Client whose workers compute
    the row tiles (distributed_inference, as janja:prospectivity's); None or "" = this computer's threads.
    """
    settings = settings or an.AnomalySettings()
    percentiles = an.check_percentiles(settings.percentiles)
    sc.check_sample(settings.stride_sample)
    t0 = time.perf_counter()
    if not isinstance(model, mc.LoadedModel):
        model = mc.load_model(model, threads=settings.threads)
    card = model.card
    an.check_model(model)
    inside = rows_p = cols_p = None
    n_points = 0
    with limited_block_cache(), wn.checked_stack(stack, card, grid, crs_wkt) as (stack, bands, grid, crs_wkt):
        if sample_xy is not None:
            inside, rows_p, cols_p = an.point_cells(grid, *sample_xy)
            n_points = inside.size
        check_memory(grid, model, len(bands), settings, masked=mask is not None, n_points=n_points,
                     limit=memory_limit)
        check_free_disk([(p, 1) for p in (score_path, classes_path) if p], grid)
        check = dist.guard(card, dist.read_columns(stack, bands, mask), settings.extrapolate)
        checked = settings.stride > 1
        end_map, tick = sp.pass_ticker(progress, checked, CANCELLED)

        with ExitStack() as files:
            cluster = None
            if scheduler is not None and not (isinstance(scheduler, str) and not scheduler.strip()):
                from . import distributed_inference as di

                # before any file is started: a refusal leaves none
                cluster = files.enter_context(di.connect(scheduler, DOING, di.LOCAL))
            score_w, cls_w = sp.open_writers(files, grid, crs_wkt, (score_path, "anomaly_score"),
                                             (classes_path, "anomaly_class"))
            stats = wn.EngineStats()
            tally = ms.RunningStats(40, rows_p, cols_p, inside)  # the score under each sample
            tile_counts = []
            scaled = None if progress is None else (lambda f: progress(end_map * f))
            if cluster is None:
                tiles = wn.stream_predict(model, stack, bands, settings.stride, mask, settings.batch_size,
                                          settings.tile_rows, scaled, stats=stats)
                computed_on = an.COMPUTED_LOCALLY
            else:  # the same tiles, computed by the cluster's workers
                tiles = di.stream_tiles(cluster, model, stack, bands, settings.stride, mask, settings.batch_size,
                                        settings.tile_rows, scaled, stats, cancelled=CANCELLED)
                computed_on = di.where(cluster)
            for tile in tiles:
                score_w.write_band_rows(0, tile.row0, tile.values)
                tally.add(tile.row0, tile.values)
                if tile.interpolated is not None:
                    tile_counts.append((tile.row0, tile.row1, int(tile.interpolated.sum())))
            read = sp.map_reader(score_w)
            nrows, block_rows = grid.nrows, sp.rows_per_block(grid.ncols)
            n_finite, sample_scores = tally.n_finite, None if sample_xy is None else tally.at_cells
            constant, spread = ms.constant_map(read, nrows, n_finite, block_rows)
            tick()
            notes = an.run_notes(check, model, stats, constant, spread, *tally.value_range())
            if constant:
                breaks = [float("nan")] * len(percentiles)
            else:  # np.percentile of the float32 scores, as percentile_classes takes them
                breaks = [float(b) for b in ms.percentiles(read, nrows, n_finite, percentiles, np.float32,
                                                           block_rows)]
            tick()
            counts = np.zeros(len(percentiles) + 2, np.int64)
            for r0, r1 in sp.map_blocks(nrows, grid.ncols):
                classes = an.classes_of(read(r0, r1), breaks, constant)
                counts += np.bincount(classes.ravel(), minlength=counts.size)
                if cls_w is not None:
                    cls_w.write_band_rows(0, r0, np.where(classes > 0, classes, np.nan))
                tick(0.0005)
            stride_error = sc.no_check()
            if checked:
                top_t = float(ms.percentiles(read, nrows, n_finite, 100.0 - sc.TOP_PERCENT, np.float32, block_rows)) \
                    if n_finite else float("nan")
                sample = sp.stride_sample(read, grid, model, stack, bands, settings.stride, tile_counts,
                                           stats.n_windows, settings, progress, top_t)
                stride_error = sc.measure(sample, breaks=None if constant else breaks, top_threshold=top_t)
            if sample_scores is not None:
                an.sample_notes(sample_scores, notes)
            result = an.AnomalyResult(
                score=None, classes=None, breaks=breaks, percentiles=percentiles, grid=grid, crs_wkt=crs_wkt,
                card=card, model_path=str(model.path), stats=stats, stride=settings.stride, seconds=0.0,
                sample_scores=sample_scores, notes=notes, distribution=check, constant=constant, spread=spread,
                stride_error=stride_error, computed_on=computed_on,
                summary={"class_counts": [int(c) for c in counts[1:]], "n_classed": int(counts[1:].sum()),
                         "n_finite": n_finite, "histogram": tally.hist})
            sp.tag_and_finish(result, (score_w, cls_w), progress, CANCELLED)
    result.seconds = time.perf_counter() - t0
    result.paths = {"score": score_path, "classes": classes_path}
    return result
