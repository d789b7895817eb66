"""Kriging streamed to GeoTIFF in row tiles: memory bounded by the tile, not the grid.

krige_pipeline.krige_elements holds every element's whole grid (several float64 arrays per cell);
at 10^8 cells that does not fit a laptop. Here the cells are kriged in the same chunks, in the same
order, with the same neighbour search and solvers as kriging.ordinary_kriging, and each row tile is
written (TiledStackWriter) as soon as all its cells are done. Because the chunks are the very same
(CHUNK_TARGETS cells of the row-major sequence of cells inside the mask for a local neighbourhood,
the global solve's batch size for a global one), every cell gets bit for bit the value of the
whole-grid run; tests/core/test_tiled_kriging.py checks the written files are equal.

Peak memory: the samples and their KD-tree, plus (2 x workers + 1) chunks in flight and at most a
few tiles of tile_rows x ncols float64 per output band (default 256 rows, the GeoTIFF block);
leave-one-out runs in chunks of LOO_CHUNK samples (cross_validate_chunked).
"""

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, nullcontext

import numpy as np

from .. import blas
from ..errors import JanjaInputError
from ..tiled_geotiff import BLOCK, TiledStackWriter
from . import distributed_kriging, krige_pipeline, kriging
from .variogram import _check_points


class _Kriger:
    """One element's kriging set up once (checks, KD-tree or global factorisation), solved chunk by chunk."""

    def __init__(self, x, y, z, model, neighbours, search_radius, min_neighbours=1, workers=None):
        x, y, z = _check_points(x, y, z)
        self.model = model
        self.tx, self.ty = model.transform(x, y)
        kriging._check_duplicates(self.tx, self.ty, x, y)
        self.s = kriging._scale(model, self.tx, self.ty)
        self.z = z
        n = x.size
        if neighbours is not None and neighbours < 1:
            raise JanjaInputError(f"The number of neighbours must be at least 1 (got {neighbours}).")
        if search_radius is not None and not search_radius > 0:
            raise JanjaInputError(f"The search radius must be > 0 metres (got {search_radius}).")
        self.is_global = (neighbours is None or neighbours >= n) and search_radius is None
        self.radius = search_radius
        self.min_neighbours = min_neighbours
        if self.is_global:
            self.lu_piv = kriging._global_system(self.tx, self.ty, model, self.s)
            self.chunk = max(1, kriging.GLOBAL_BATCH_DOUBLES // (n + 1))
            self.workers = 1
        else:
            from scipy.spatial import cKDTree

            self.tree = cKDTree(np.column_stack([self.tx, self.ty]))
            self.k = n if neighbours is None else min(int(neighbours), n)
            self.chunk = kriging.CHUNK_TARGETS
            self.workers = max(1, int(workers or min(os.cpu_count() or 1, 8)))

    def solve(self, xt, yt):
        """(prediction, variance, Lagrange multiplier) at targets in the layer's coordinates."""
        qx, qy = self.model.transform(xt, yt)
        if self.is_global:
            from scipy.linalg import lu_solve

            n, s = self.tx.size, self.s
            b = np.ones((n + 1, qx.size))
            b[:n] = self.model(kriging._dist(self.tx[:, None], self.ty[:, None], qx[None, :], qy[None, :])) / s
            w = lu_solve(self.lu_piv, b, check_finite=False)
            return blas.matmul(self.z, w[:n]), s * (np.einsum("ij,ij->j", w[:n], b[:n]) + w[n]), s * w[n]
        k = self.k
        if self.radius is None:
            idx = kriging._k_nearest(self.tree, self.tx, self.ty, qx, qy, k)
        else:
            idx = self.tree.query(np.column_stack([qx, qy]), k=k, distance_upper_bound=float(self.radius),
                                  workers=1)[1]
        p, v, u, _, _ = kriging._solve_neighbours(self.tx, self.ty, self.z, self.model, self.s,
                                                  idx.reshape(-1, k), qx, qy, self.min_neighbours, True)
        return p, v, u


def solve_cells(kr, lognormal, xt, yt):
    """At targets: (prediction in data units, ln variance, ln prediction) for the lognormal back-transform
    of Journel (1980) as kriging.lognormal_kriging gives it, else (prediction, variance); the local threads
    and the Dask workers (distributed_kriging) both call it, so both give the same bits."""
    p, v, u = kr.solve(xt, yt)
    if not lognormal:
        return p, v
    with np.errstate(over="ignore"):  # an overflow is inf; MapStats refuses the map by name (back-transform)
        return np.exp(p + v / 2.0 - u), v, p


LOO_CHUNK = 65_536  # samples per leave-one-out chunk: ~20 MB of neighbour lists instead of ~1.3 GB at 10^6


def cross_validate_chunked(x, y, z, model, neighbours, search_radius=None, min_neighbours=1,
                           chunk=None):
    """kriging.cross_validate with a local neighbourhood, in chunks of LOO_CHUNK samples.

    The whole-sample version holds (n, k+1) neighbour lists and their grouping at once: about 1.3 GB
    at 10^6 samples and 32 neighbours (measured). Each sample's system is the same; only which
    identical neighbour sets share a factorisation changes, so values agree to rounding (equal when
    n <= chunk). Global neighbourhoods (at most GLOBAL_MAX_SAMPLES samples) go to cross_validate.
    """
    n = np.asarray(x).size
    if (neighbours is None or neighbours >= n - 1) and search_radius is None:
        return kriging.cross_validate(x, y, z, model, neighbours, search_radius, min_neighbours)
    from scipy.spatial import cKDTree

    x, y, z = _check_points(x, y, z, "cross-validation")
    tx, ty = model.transform(x, y)
    kriging._check_duplicates(tx, ty, x, y)
    s = kriging._scale(model, tx, ty)
    k = min(int(neighbours) if neighbours is not None else n - 1, n - 1)
    bound = np.inf if search_radius is None else float(search_radius)
    tree = cKDTree(np.column_stack([tx, ty]))
    pred, var = np.empty(n), np.empty(n)
    step = LOO_CHUNK if chunk is None else int(chunk)
    for a in range(0, n, step):
        b = min(a + step, n)
        _, idx = tree.query(np.column_stack([tx[a:b], ty[a:b]]), k=k + 1, distance_upper_bound=bound,
                            workers=-1)
        idx = idx.reshape(b - a, k + 1)
        me = idx == np.arange(a, b)[:, None]
        idx = np.where(me, n, idx)  # drop the sample itself; the padding sorts to the end
        idx = np.sort(np.where(me.any(axis=1)[:, None], idx, np.where(np.arange(k + 1) == k, n, idx)), axis=1)
        pred[a:b], var[a:b], _, _, _ = kriging._solve_neighbours(tx, ty, z, model, s, idx[:, :k], tx[a:b],
                                                                 ty[a:b], min_neighbours, True)
    return kriging.CrossValidation(x, y, z, pred, var)


def stream_cells(grid, inside, chunk, solve, n_out, emit, tile_rows=BLOCK, workers=1, progress=None,
                 limit_blas=True, executor=None):
    """Solve every cell (inside the mask) in chunks of `chunk` cells of the row-major cell sequence and
    hand each finished row tile to emit(row0, [n_out arrays (rows, ncols), NaN outside the mask]).

    solve(x, y) -> n_out arrays, one value per cell; it runs in `workers` threads, 2 x workers chunks
    in flight at most, with OpenBLAS held to one thread when `limit_blas` (as kriging's local
    neighbourhood does: same threads, same bits). progress(fraction) -> True cancels
    (kriging.KrigingCancelled). executor: an object whose submit(solve, x, y) returns a future (result,
    cancel) to use instead of the thread pool, e.g. a Dask cluster's (distributed_kriging).
    """
    tile_rows = max(1, int(tile_rows))  # multiples of the GeoTIFF block (256) write each block once
    total = grid.n_cells if inside is None else int(np.count_nonzero(inside))
    tiles = {}  # tile row0 -> [buffers, cells still to solve]
    pieces = deque()  # (row0, positions, x, y) of cells waiting for a chunk
    waiting = 0
    in_flight = deque()
    done = 0

    def finish(fut, segments):
        nonlocal done
        out = fut.result()
        at = 0
        for row0, pos in segments:
            entry = tiles[row0]
            for buf, values in zip(entry[0], out):
                buf[pos] = values[at:at + pos.size]
            at += pos.size
            entry[1] -= pos.size
            done += pos.size
            if entry[1] == 0:
                rows = entry[0][0].size // grid.ncols
                emit(row0, [b.reshape(rows, grid.ncols) for b in entry[0]])
                del tiles[row0]
        kriging._report(progress, done / max(total, 1))

    def take(count, pool):
        nonlocal waiting
        segments, xs, ys = [], [], []
        while count:
            row0, pos, x, y = pieces[0]
            if pos.size <= count:
                pieces.popleft()
                use = pos.size
            else:
                use = count
                pieces[0] = (row0, pos[use:], x[use:], y[use:])
            segments.append((row0, pos[:use]))
            xs.append(x[:use])
            ys.append(y[:use])
            count -= use
            waiting -= use
        fx, fy = np.concatenate(xs), np.concatenate(ys)
        in_flight.append((pool.submit(solve, fx, fy), segments))
        while len(in_flight) > 2 * workers:
            finish(*in_flight.popleft())

    blas = kriging._blas_threads_limited() if limit_blas else nullcontext(False)
    with blas as limited, ThreadPoolExecutor(workers if limited else 1) if executor is None \
            else nullcontext(executor) as pool:
        try:
            for row0 in range(0, grid.nrows, tile_rows):
                row1 = min(row0 + tile_rows, grid.nrows)
                cx, cy = grid.cell_centres(row0, row1)
                pos = np.arange(cx.size) if inside is None else np.flatnonzero(inside[row0:row1].ravel())
                tiles[row0] = [[np.full(cx.size, np.nan) for _ in range(n_out)], pos.size]
                if pos.size == 0:
                    emit(row0, [b.reshape(row1 - row0, grid.ncols) for b in tiles.pop(row0)[0]])
                    continue
                pieces.append((row0, pos, cx[pos], cy[pos]))
                waiting += pos.size
                while waiting >= chunk:
                    take(chunk, pool)
            if waiting:
                take(waiting, pool)
            while in_flight:
                finish(*in_flight.popleft())
        except BaseException:
            for fut, _ in in_flight:
                fut.cancel()
            raise


def krige_elements_to_files(x, y, raw_columns, settings, grid, prediction_path, variance_path, crs_wkt,
                            inside=None, tile_rows=BLOCK, progress=None, log=print, workers=None, flags=None,
                            warn=None, log_path=None, scheduler=None):
    """krige_pipeline.krige_elements streamed: the same checks, refusals, warnings, notes and values, but
    every element's prediction and variance (and, with log_path and the log transform, its ln prediction
    and ln variance, two bands per element) are written tile by tile into the stacks instead of being
    returned. The ElementResults carry everything else (fit, cross-validation, counts, class breaks) with
    prediction = variance = None. The files appear only when complete: a refusal, an error or a cancel
    leaves none. Memory: see memory_bound(). scheduler: a Dask scheduler address or Client to solve the
    chunks on (distributed_kriging); None = this computer's threads.
    """
    warn = warn or log
    run = krige_pipeline.prepare_run(x, y, raw_columns, settings, grid, flags, log, warn)
    k = run.neighbours
    names = [el.name for el in run.elements]
    lognormal = settings.transform == "log"
    if inside is not None:
        inside = np.asarray(inside, bool).reshape(grid.nrows, grid.ncols)
    tags = krige_pipeline.stack_tags(run.elements, settings)
    results = []
    with ExitStack() as files:
        cluster = files.enter_context(distributed_kriging.connect(scheduler))  # before any file is started
        pred_w = files.enter_context(TiledStackWriter(prediction_path, names, grid, crs_wkt, tags=tags))
        var_w = files.enter_context(TiledStackWriter(variance_path, names, grid, crs_wkt, tags=tags))
        log_w = None
        if log_path and lognormal:
            log_names = [n for name in names for n in (f"log_{name}", f"log_{name}_variance")]
            log_w = files.enter_context(TiledStackWriter(log_path, log_names, grid, crs_wkt, tags=tags))
        for i, el in enumerate(run.elements):
            kr = _Kriger(el.x, el.y, el.z_t, el.fit, k, settings.search_radius, workers=workers)
            stats = krige_pipeline.MapStats(el, lognormal)

            def solve(xt, yt, kr=kr):
                return solve_cells(kr, lognormal, xt, yt)

            def emit(row0, bands, i=i, stats=stats):
                pred_w.write_band_rows(i, row0, bands[0])
                var_w.write_band_rows(i, row0, bands[1])
                if log_w is not None:
                    log_w.write_band_rows(2 * i, row0, bands[2])
                    log_w.write_band_rows(2 * i + 1, row0, bands[1])
                cells = slice(None) if inside is None else inside[row0:row0 + bands[0].shape[0]]
                stats.add(*(b[cells] for b in bands))

            def part(fraction, i=i):
                return progress((i + fraction) / len(names)) if progress else False

            n_out = 3 if lognormal else 2
            if cluster is None:
                stream_cells(grid, inside, kr.chunk, solve, n_out, emit, tile_rows, kr.workers, part,
                             limit_blas=not kr.is_global)
            else:  # the same chunks on the cluster's workers
                cluster.stream(grid, inside, kr.chunk, distributed_kriging.make_setup(
                    el.x, el.y, el.z_t, el.fit, k, settings.search_radius, lognormal=lognormal), n_out, emit,
                    tile_rows, part)
            stats.refuse_unusable(settings)
            cv = cross_validate_chunked(el.x, el.y, el.z_t, el.fit, k, settings.search_radius)
            results.append(krige_pipeline.element_result(el, stats, cv, settings, warn))
            log(krige_pipeline.summary_line(results[-1]))
    return results


# Calibrated on streamed runs (32 nearest, 2 threads; 200,000 samples: 287 MB with 1 field, 486 MB with 4;
# 1,000,000 samples, 1 field: 615 MB), rounded up.
MEMORY_BASE = 150 * 1024**2  # Python, numpy, scipy, GDAL and QGIS loaded
MEMORY_VARIOGRAM = 200 * 1024**2  # the experimental variogram's 8 million pairs (exact or sampled), one at a time
MEMORY_PER_SAMPLE = 500  # bytes: the element being kriged (parsed, merged, KD-tree, leave-one-out chunk)
MEMORY_PER_SAMPLE_FIELD = 350  # bytes per sample of every further field (raw values, parsed and merged arrays)
MEMORY_PER_NEIGHBOUR = 16  # bytes per target and neighbour of a chunk in flight (lists, grouped solves)


def memory_bound(grid, n_samples, n_fields, neighbours, workers=None, tile_rows=BLOCK, n_bands=3, masked=False):
    """About the peak memory (bytes) of krige_elements_to_files: samples and their KD-tree, the variogram
    pairs, the chunks in flight, at most two row tiles per output band, the class-break samples and, with a
    mask, 2 bytes a cell (the rasterised mask and its boolean copy). Apart from the mask it does not grow
    with the cells, only with the grid's width."""
    workers = max(1, int(workers or min(os.cpu_count() or 1, 8)))
    k = n_samples if neighbours is None else min(int(neighbours), n_samples)
    if neighbours is None:  # the global system's LU factor and one batch of right-hand sides
        in_flight = 8 * (n_samples + 1) ** 2 + 8 * kriging.GLOBAL_BATCH_DOUBLES * 3
    else:
        in_flight = (2 * workers + 1) * kriging.CHUNK_TARGETS * max(k, 1) * MEMORY_PER_NEIGHBOUR
    tiles = 2 * n_bands * min(max(1, tile_rows), grid.nrows) * grid.ncols * 8
    styles = 2 * 16 * krige_pipeline.STYLE_SAMPLE_MAX  # values and their hashes, two bands
    mask = 2 * grid.n_cells if masked else 0
    samples = n_samples * (MEMORY_PER_SAMPLE + MEMORY_PER_SAMPLE_FIELD * max(0, n_fields - 1))
    return MEMORY_BASE + MEMORY_VARIOGRAM + samples + in_flight + tiles + styles + mask


def check_memory(grid, n_samples, n_fields, neighbours, workers=None, n_bands=3, masked=False, limit=None):
    """Refuse, before any work, a streamed run whose memory_bound exceeds `limit` (default: raster_grid's
    DEFAULT_MEMORY_LIMIT, read now); the cells count only through the tile width and the mask."""
    from .. import raster_grid

    limit = raster_grid.DEFAULT_MEMORY_LIMIT if limit is None else limit
    need = memory_bound(grid, n_samples, n_fields, neighbours, workers, n_bands=n_bands, masked=masked)
    if need > limit:
        raise JanjaInputError(
            f"Kriging {n_samples:,} samples onto {grid.ncols} x {grid.nrows} cells would need about "
            f"{need / 1024**3:.1f} GB of memory even streamed tile by tile (limit {limit / 1024**3:.1f} GB): "
            "the samples, their neighbour search and rows of this width are held at once. Use fewer nearest "
            "samples per cell, a larger cell size, or split the area.")
    return need
