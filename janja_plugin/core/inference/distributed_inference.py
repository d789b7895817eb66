"""Inference tiles on a Dask cluster (dask.distributed): the window engine's row tiles as tasks.

Each task is one row tile of windows.stream_predict with the stack rows it reads (the tile, half a
window above and below, and at stride k the node rows that bracket it), cut from the stack by this
process (the driver) and sent with the task, so workers need neither the stack file nor a shared disk.
The model travels once to every worker (client.scatter, broadcast: the .onnx bytes and its card); each
worker process opens it once, cached in memory by the file's sha256 (the file it is opened from is a
private temporary copy, deleted as soon as onnxruntime has read it: nothing is left on the workers' disks).
A task computes its tile alone (stream_predict(tiles=[t])): the values are the local run's bit for bit
and the counts add up to the local run's, so the stride check draws the same cells. At most 2 x the
cluster's threads tiles are in flight; tiles come back in order and only the driver writes files. The
whole-map passes (thresholds, target areas, the stride check's few windows) stay on the driver.

The shared trunk (streamed_dense) goes through the same queue (in_order): stream_dense_bands sends each row band
of trunk tiles with its stack rows and the trunk's margin (dense.dense_bands(only=) on the worker) and gets back
its probability or log-odds and valid mask; the trunk and head files travel once (DenseSetup, not the per-window
file) and the driver keeps the map smoothing, the writing and the statistics.

The connection, its refusals and the cluster's failure sentences are distributed_kriging's (connect,
Cluster), with the job's words: janja:prospectivity (streamed_prospectivity) and janja:anomaly_score
(streamed_anomaly) both use this module, each with its own words (connect(doing=), stream_tiles(cancelled=)).
`distributed` is optional: imported only when a scheduler is given.
"""

import dataclasses
import hashlib
import shutil
import tempfile
import threading
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..geostatistics import distributed_kriging as dk
from . import model_card as mc
from . import windows as wn

DOING, LOCAL = "Mapping prospectivity", "map"  # janja:prospectivity's words in the refusals
CANCELLED = "The prospectivity run was cancelled."


class Cluster(dk.Cluster):
    code = __name__
    what = "inference code"
    task_words = "running the model on a row tile"


def connect(scheduler, doing=DOING, local=LOCAL):
    """distributed_kriging.connect with the job's words ("Scoring anomalies on the Dask cluster at ... needs ...";
    "... leave the Dask scheduler empty to map on this computer's threads"): a Cluster, or None when empty."""
    return dk.connect(scheduler, Cluster, doing, local)


def where(cluster):
    """Where the tiles ran, for the log and the report: the cluster's address and size when they started."""
    workers = cluster.client.nthreads()
    return (f"the Dask cluster at {cluster.address} ({len(workers)} worker{'s' if len(workers) != 1 else ''}, "
            f"{sum(workers.values())} thread{'s' if sum(workers.values()) != 1 else ''})")


@dataclass(frozen=True)
class ModelSetup:
    """What every worker needs to open the model: its bytes and card, sent once."""

    sha256: str
    onnx: bytes
    card_json: str | None  # the card beside the file (None: inside it)
    threads: int

    def open(self, folder):
        """The LoadedModel, from copies written into `folder` (removed by the caller once opened)."""
        path = folder / f"{self.sha256}.onnx"
        path.write_bytes(self.onnx)
        card = None
        if self.card_json is not None:
            card = folder / f"{self.sha256}.json"
            card.write_text(self.card_json, encoding="utf-8")
        return mc.load_model(path, card_path=card, threads=self.threads)


def make_model_setup(model, threads=1):
    path = Path(model.path)
    data = path.read_bytes()
    beside = mc.card_path_for(path)
    card_json = beside.read_text(encoding="utf-8") if beside.is_file() else None
    key = hashlib.sha256(data)
    key.update((card_json or "").encode("utf-8"))  # an edited card beside the same .onnx is another model
    return ModelSetup(key.hexdigest(), data, card_json, int(threads or 1))


@dataclass(frozen=True)
class DenseSetup:
    """What every worker needs for the shared trunk: the trunk and head files' bytes and the card, sent once.

    The per-window model file is not sent (dense_bands never runs it): for Inception-v3 the trunk is 87 MB,
    the head 17 kB, the per-window file another 87 MB."""

    sha256: str
    card: mc.ModelCard  # its dense trunk and head renamed to the plain names of `parts`
    parts: tuple  # (("trunk.onnx", bytes), ("head.onnx", bytes))
    threads: int

    def open(self, folder):
        """(model, DenseParts): the parts opened from copies in `folder` as dense.load_parts opens them (the
        card's checksums checked), beside a model without a session (the shared trunk needs only its card).
        The copies have plain names, so a card naming its parts in another folder ("../parts/x.onnx") cannot
        make a worker write outside its private temporary folder."""
        from . import dense

        for name, data in self.parts:
            (folder / name).write_bytes(data)
        model = mc.LoadedModel(path=folder / "model.onnx", card=self.card, session=None, input_name="",
                               fixed_batch=None, threads=self.threads)
        return model, dense.load_parts(model)


def make_dense_setup(model, threads=1):
    """The DenseSetup of a LoadedModel whose parts dense.load_parts has accepted (they exist beside it)."""
    folder, spec = Path(model.path).parent, model.card.dense
    parts = tuple((f"{p}.onnx", (folder / spec[p]).read_bytes()) for p in ("trunk", "head"))
    card = dataclasses.replace(model.card, dense={**spec, "trunk": "trunk.onnx", "head": "head.onnx"})
    h = hashlib.sha256()
    for name, data in parts:
        h.update(name.encode("utf-8") + b"\0" + data)
    h.update(repr(card).encode("utf-8"))
    return DenseSetup(h.hexdigest(), card, parts, int(threads or 1))


# ---- on the workers ------------------------------------------------------------------------------

_MODELS = OrderedDict()  # sha256 -> LoadedModel, per worker process
_KEEP = 2
_LOCK = threading.Lock()
_LOADS = Counter()  # sha256 -> times this process opened it (1 unless evicted): what the tests check


def _model(setup):
    """This worker process's model for `setup` (ModelSetup or DenseSetup: setup.open(folder)), opened the first
    time only (kept in memory across tiles).

    onnxruntime opens a file, so the bytes go to a temporary folder of this process alone (two worker
    processes of one machine never share or delete each other's copy) that is removed as soon as the
    session has read them: a run leaves no model copies on the workers' disks."""
    with _LOCK:
        model = _MODELS.get(setup.sha256)
        if model is None:
            folder = Path(tempfile.mkdtemp(prefix="janja-model-"))
            try:
                model = setup.open(folder)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            _MODELS[setup.sha256] = model
            _LOADS[setup.sha256] += 1
            while len(_MODELS) > _KEEP:
                _MODELS.popitem(last=False)
        else:
            _MODELS.move_to_end(setup.sha256)
    return model


@dataclass
class TileTask:
    """One row tile and the stack rows [row0, row0 + rows) it reads, in card element order, NaN = missing."""

    index: int
    row0: int
    block: np.ndarray  # float32 (elements, rows, ncols)
    mask: np.ndarray | None  # bool (rows, ncols) of the same rows
    names: list
    nrows: int
    ncols: int
    stride: int
    batch_size: int
    tile_rows: int


class _Rows:
    """The rows sent with a task, read as the whole stack's (the engine asks only for those)."""

    def __init__(self, task):
        self.task = task
        self.names, self.nrows, self.ncols, self.nodata = task.names, task.nrows, task.ncols, None

    def read(self, r0, r1, bands):
        a, b = r0 - self.task.row0, r1 - self.task.row0
        if a < 0 or b > self.task.block.shape[1]:
            raise IndexError(f"rows {r0}-{r1} outside the rows sent ({self.task.row0}-"
                             f"{self.task.row0 + self.task.block.shape[1]})")
        return self.task.block[bands, a:b].astype(np.float32, copy=True)


def predict_tile(setup, task):
    """One task: (Tile, EngineStats) of tile `task.index`, exactly as the local engine computes it."""
    model = _model(setup)
    stack = _Rows(task)
    mask = None if task.mask is None else wn.RowMask(task.mask, task.row0, (task.nrows, task.ncols))
    stats = wn.EngineStats()
    tiles = list(wn.stream_predict(model, stack, list(range(len(task.names))), task.stride, mask, task.batch_size,
                                   task.tile_rows, None, True, stats, tiles=[task.index], final=False))
    return tiles[0], stats


@dataclass
class BandTask:
    """One shared-trunk row band [index, row1) and the stack rows [row0, row0 + rows) it reads (card element
    order, NaN = missing), with the mask rows it reads (a windows.RowMask) and the driver's settings."""

    index: int  # the band's first row
    row0: int
    block: np.ndarray  # float32 (elements, rows, ncols)
    mask: object  # windows.RowMask or None
    names: list
    nrows: int
    ncols: int
    shifts: int
    tile: tuple
    sigma: float
    head_batch: int


def dense_band(setup, task):
    """One task: (DenseBand, EngineStats) of the band starting at row `task.index`, as dense_bands computes it."""
    from . import dense

    model, parts = _model(setup)
    stats = wn.EngineStats()
    band, = dense.dense_bands(model, parts, _Rows(task), list(range(len(task.names))), task.mask, task.shifts,
                              task.tile, None, task.head_batch, stats, task.sigma, only=task.index)
    return band, stats


# ---- on the driver -------------------------------------------------------------------------------

def in_order(cluster, setup, fn, tasks):
    """fn(setup, task) on the cluster for each task of the iterable `tasks` (made lazily, as slots free up),
    results yielded in order; at most 2 x the cluster's threads in flight. setup: the object every task needs
    (ModelSetup, DenseSetup), sent once to every worker (client.scatter, broadcast) under a key made of its
    sha256 (dask's own hash=True tokenizes the bytes again: 3 s for Inception's 87 MB trunk, measured).
    Leaving early (cancel, error) cancels the rest."""
    cluster.check_code()
    key = f"janja-{type(setup).__name__}-{setup.sha256}"
    setup = cluster.client.scatter({key: setup}, broadcast=True, hash=False)[key]
    tasks = iter(tasks)
    in_flight = deque()
    more = True
    try:
        while True:
            while more and len(in_flight) < 2 * cluster.slots:
                task = next(tasks, None)
                if task is None:
                    more = False
                    break
                in_flight.append(dk._Pending(cluster, cluster.client.submit(fn, setup, task, pure=False)))
            if not in_flight:
                return
            yield in_flight.popleft().result()
    finally:
        for pending in in_flight:
            pending.cancel()


def rows_read(tile, r0, r1, nrows, stride, h):
    """(first, last + 1) of the stack rows the engine reads for tile [r0, r1) computed alone."""
    lo, hi = r0, r1
    if stride > 1:
        nodes = wn.stride_nodes(nrows, stride)
        j0, j1, _ = wn._axis_weights(nrows, nodes)
        lo = min(lo, int(nodes[j0[r0]]), int(nodes[j1[r0 - 1]]) if r0 > 0 else r0)
        hi = max(hi, int(nodes[j1[r1 - 1]]) + 1)
    rows = wn.reflect_index(np.arange(lo - h, hi + h), nrows)
    return int(rows.min()), int(rows.max()) + 1


def stream_tiles(cluster, model, stack, bands, stride=1, mask=None, batch_size=wn.DEFAULT_BATCH, tile_rows=None,
                 progress=None, stats=None, cancelled=CANCELLED):
    """windows.stream_predict with every tile computed on the cluster: the same Tiles, in order, and the same
    counts in `stats`; the same refusals at the end. cancelled: the job's sentence when progress() cancels."""
    stride = int(stride)
    if stride < 1:
        raise wn.JanjaInputError(f"The stride must be a whole number of cells, 1 or more, not {stride}.")
    if model.fixed_batch:
        batch_size = model.fixed_batch
    mask = wn.checked_mask(mask, stack)
    stats = wn.EngineStats() if stats is None else stats
    t_start = time.perf_counter()
    prep = wn._Preparer(model.card, stack, bands, batch_size, tile_rows)
    ranges = prep.tile_ranges()
    names = [stack.names[b] for b in bands]
    n_valid = n_kept = 0

    def tasks():
        for t, (r0, r1) in enumerate(ranges):
            lo, hi = rows_read(t, r0, r1, stack.nrows, stride, prep.h)
            yield TileTask(t, lo, stack.read(lo, hi, bands), None if mask is None else mask[lo:hi], names,
                           stack.nrows, stack.ncols, stride, batch_size, prep.tile_rows)

    results = in_order(cluster, make_model_setup(model), predict_tile, tasks())
    try:
        for tile, part in results:
            for key in ("n_windows", "n_windows_filled", "n_values_filled", "n_interpolated", "n_valid_cells"):
                setattr(stats, key, getattr(stats, key) + getattr(part, key))
            stats.inference_seconds += part.inference_seconds
            n_valid += int(tile.valid.sum())
            n_kept += int(tile.valid.sum() if mask is None else (tile.valid & mask[tile.row0:tile.row1]).sum())
            if progress is not None and progress(tile.row1 / stack.nrows):
                raise wn.Cancelled(cancelled)
            yield tile
    finally:
        results.close()  # cancels the tiles still in flight
    if n_valid == 0 or n_kept == 0:
        wn.check_valid_cells(np.array([n_valid > 0]), None if mask is None else np.array([False]), model.card)
    if progress is not None and progress(1.0):
        raise wn.Cancelled(cancelled)
    stats.seconds = time.perf_counter() - t_start


def stream_dense_bands(cluster, model, parts, stack, bands, mask=None, shifts=1, tile=None, progress=None,
                       head_batch=1024, stats=None, smoothing_sigma=0.0, cancelled=CANCELLED):
    """dense.dense_bands with every row band's trunk and head computed on the cluster: the same DenseBands, in
    order, the same counts in `stats` and the same refusals at the end. Each task carries its band's stack rows
    and the trunk's margin (and the mask rows it reads); the trunk and head travel once to every worker
    (DenseSetup). The caller (streamed_dense) keeps the smoothing, the writing and the statistics."""
    from . import dense

    card = model.card
    if not isinstance(mask, wn.RowMask):
        mask = wn.checked_mask(mask, stack)
    tiler = dense._DenseTiler(card, parts, stack, bands, shifts, tile)  # its refusals, before any task
    stats = wn.EngineStats() if stats is None else stats
    stats.mode = f"shared trunk, {tiler.shifts}x{tiler.shifts} shift(s)"
    tile = tuple(int(t) for t in (tile or dense.DEFAULT_TILE))  # the driver's: workers are other processes
    log_odds = smoothing_sigma > 0
    names = [stack.names[b] for b in bands]
    n_valid = n_kept = 0

    def tasks():
        for r0, r1 in tiler.band_ranges():
            lo, hi = tiler.rows_read(r0, r1)
            m = None
            if mask is not None:
                m0, m1 = dense.mask_rows_read(r0, r1, stack.nrows, smoothing_sigma, True)
                m = wn.RowMask(mask[m0:m1], m0, (stack.nrows, stack.ncols))
            yield BandTask(r0, lo, stack.read(lo, hi, bands), m, names, stack.nrows, stack.ncols, tiler.shifts,
                           tile, float(smoothing_sigma) if log_odds else 0.0, int(head_batch))

    results = in_order(cluster, make_dense_setup(model), dense_band, tasks())
    try:
        for band, part in results:
            for key in ("n_windows", "n_windows_filled", "n_values_filled"):
                setattr(stats, key, getattr(stats, key) + getattr(part, key))
            stats.inference_seconds += part.inference_seconds
            n_valid += int(band.valid.sum())
            n_kept += int(band.valid.sum() if mask is None else (band.valid & mask[band.row0:band.row1]).sum())
            if progress is not None and progress(band.row1 / stack.nrows):
                raise wn.Cancelled(cancelled)
            yield band
    finally:
        results.close()  # cancels the bands still in flight
    dense.check_counts(n_valid, n_kept, mask is not None, card, stats)
