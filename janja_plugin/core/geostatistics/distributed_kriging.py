"""Kriging chunks on a Dask cluster (dask.distributed), for national grids that outgrow one machine.

A chunk's result depends only on the samples, the model and the chunk's cells (tiled_kriging), so the
cluster gets the very chunks this computer's threads would solve, and the maps are bit for bit the
local ones. The samples and the model travel once to every worker (client.scatter, broadcast); each
worker process builds its KD-tree (or global factorisation) once, cached under a token of the setup;
every chunk is one task; at most 2 x the cluster's threads chunks are in flight; results come back in
order and only this process (the driver) writes files, because GeoTIFF has no concurrent writers.
The variogram fit and leave-one-out stay on the driver.

`distributed` is optional: it is imported only when a scheduler address is given.
"""

import hashlib
import os
import pickle
import re
import sys
import threading
from collections import Counter, OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import JanjaInputError, MissingDependencyError
from . import kriging, tiled_kriging

CONNECT_TIMEOUT = 10.0  # seconds to reach the scheduler and to see a first worker
DISTRIBUTED_PIN = "distributed==2026.8.0"  # the version tested; driver and workers must match
_ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss|inproc)://\S+$|^[^\s/:]+:\d+$")


def _distributed(address, doing="Kriging", local="krige"):
    """The `distributed` module, or the sentence that says what to install (doing/local: the job's words,
    shared with the inference tiles, core/inference/distributed_inference.py)."""
    try:
        import distributed
    except ImportError as exc:
        raise MissingDependencyError(
            f"{doing} on the Dask cluster at {address} needs the Python package 'distributed', which is not "
            f"installed for QGIS's Python: install it on this computer and on every worker with "
            f"'/usr/bin/python3 -m pip install {DISTRIBUTED_PIN}' (in a virtual environment, or "
            f"'pip install --target' into a folder on PYTHONPATH), or leave the Dask scheduler empty to "
            f"{local} on this computer's threads.") from exc
    return distributed


@dataclass(frozen=True)
class _Setup:
    """What every worker needs to krige any chunk: the samples and model once, not per task."""

    token: str
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    model: object
    neighbours: object
    search_radius: object
    min_neighbours: int
    lognormal: object  # True/False: (values in data units, variance) as tiled_kriging.solve_cells; None: raw


def _token(x, y, z, model, neighbours, search_radius, min_neighbours, lognormal):
    h = hashlib.blake2b(digest_size=16)
    for a in (x, y, z):
        h.update(np.ascontiguousarray(a, float).tobytes())
    h.update(pickle.dumps((model, neighbours, search_radius, min_neighbours, lognormal)))
    return h.hexdigest()


def make_setup(x, y, z, model, neighbours, search_radius, min_neighbours=1, lognormal=None):
    x, y, z = (np.asarray(a, float).ravel() for a in (x, y, z))
    return _Setup(_token(x, y, z, model, neighbours, search_radius, min_neighbours, lognormal), x, y, z,
                  model, neighbours, search_radius, int(min_neighbours), lognormal)


# ---- on the workers ------------------------------------------------------------------------------

_KRIGERS = OrderedDict()  # token -> tiled_kriging._Kriger, per worker process
_KEEP = 2  # a few elements' trees at most (10^6 samples: ~50 MB each)
_LOCK = threading.Lock()
_BUILDS = Counter()  # token -> times this process built it (1 unless evicted): what the tests check


def _kriger(setup):
    """This worker's _Kriger for `setup`, built (KD-tree or factorisation) the first time only."""
    with _LOCK:
        kr = _KRIGERS.get(setup.token)
        if kr is None:
            _tune_worker_process()
            kr = tiled_kriging._Kriger(setup.x, setup.y, setup.z, setup.model, setup.neighbours,
                                       setup.search_radius, setup.min_neighbours, workers=1)
            _KRIGERS[setup.token] = kr
            _BUILDS[setup.token] += 1
            while len(_KRIGERS) > _KEEP:
                _KRIGERS.popitem(last=False)
        else:
            _KRIGERS.move_to_end(setup.token)
    return kr


def _tune_worker_process():
    """Once per worker process, before its first chunk: run chunks as fast as this computer's threads do.

    - OpenBLAS held to one thread, as kriging's local threads hold it: one task per worker thread does
      not oversubscribe the cores, and one BLAS thread or several give different last bits.
    - glibc's malloc thresholds back to about its defaults when the environment set a trim threshold (the
      Dask nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536): that also turns off the dynamic mmap
      threshold, so every chunk's MB-sized arrays are mapped and unmapped afresh; a chunk of 32,768 cells
      at 20,000 samples then took 2.3-3.1 s instead of 0.7 s (measured). 32 MB / 128 MB: the largest
      mmap threshold glibc reaches by itself, and a trim threshold above a chunk's temporaries.
    """
    lib = kriging._openblas()
    if lib is not None and lib.openblas_get_num_threads() != 1:
        lib.openblas_set_num_threads(1)
    if "MALLOC_TRIM_THRESHOLD_" in os.environ:
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(-3, 32 * 2**20)  # M_MMAP_THRESHOLD
            libc.mallopt(-1, 128 * 2**20)  # M_TRIM_THRESHOLD
        except (OSError, AttributeError):  # not glibc: nothing to undo
            pass


def solve_chunk(setup, xt, yt):
    """One task: one chunk of cells, solved exactly as the local thread would solve it."""
    kr = _kriger(setup)
    if setup.lognormal is None:
        return kr.solve(xt, yt)
    return tiled_kriging.solve_cells(kr, setup.lognormal, xt, yt)


# ---- on the driver -------------------------------------------------------------------------------


class _Pending:
    """A dask future seen as concurrent.futures' (result, cancel), with cluster failures as sentences."""

    def __init__(self, cluster, future):
        self.cluster, self.future = cluster, future

    def result(self):
        try:
            return self.future.result()
        except ImportError as exc:  # a worker could not import the task's code
            raise JanjaInputError(self.cluster.cannot_import(exc)) from exc
        except RuntimeError as exc:  # the scheduler could not (it unpickles the tasks too)
            if "deserializ" not in str(exc):
                raise
            raise JanjaInputError(self.cluster.cannot_import(exc)) from exc
        except self.cluster.killed as exc:
            raise JanjaInputError(
                f"A Dask worker of {self.cluster.address} died while {self.cluster.task_words} ({exc}); it may have "
                "run out of memory: give workers more memory or fewer threads, then run again.") from exc

    def cancel(self):
        self.future.cancel()


class _Executor:
    """stream_cells' pool on the cluster: submit(fn, x, y) runs fn(setup, x, y) on a worker."""

    def __init__(self, cluster, setup_future):
        self.cluster, self.setup = cluster, setup_future

    def submit(self, fn, *args):
        return _Pending(self.cluster, self.cluster.client.submit(fn, self.setup, *args, pure=False))


class Cluster:
    """A connected client; `executor(setup)` scatters the samples once and gives stream_cells' pool."""

    code = __name__  # the module every task's function comes from: the scheduler and workers import it
    what = "kriging code"  # in the sentence of a scheduler or worker that cannot import it
    task_words = "kriging a chunk"

    def __init__(self, client, address, killed):
        self.client, self.address, self.killed = client, address, killed

    def cannot_import(self, exc):
        """The sentence for a scheduler or worker that lacks the plugin: where it is here, what to start."""
        top = self.code.split(".")[0]  # 'janja' as QGIS loads the plugin, 'janja_plugin' from a checkout
        here = Path(os.path.abspath(sys.modules[top].__file__)).parent.parent  # not resolve(): a symlinked plugin
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (f"The Dask scheduler or workers at {self.address} cannot load the plugin's {self.what} "
                f"(package '{top}': {why}): start 'dask scheduler' and every 'dask worker' with the folder that "
                f"holds '{top}' on PYTHONPATH (here: PYTHONPATH={here}), with the same plugin version and "
                f"{DISTRIBUTED_PIN}.")

    @property
    def slots(self):
        """Threads of all workers now connected: stream_cells keeps twice that many chunks in flight."""
        return max(1, sum(self.client.nthreads().values()))

    def check_code(self):
        """Refuse, before any task, a scheduler or worker that cannot import the plugin: a worker that
        fails to unpickle a task is removed from the cluster (and the scattered samples with it)."""

        def importable(name, **_):  # pickled by value: runs where the plugin may be missing
            import importlib.util

            try:
                return importlib.util.find_spec(name) is not None
            except ImportError:
                return False

        where = [] if self.client.run_on_scheduler(importable, self.code) else ["the scheduler"]
        where += [w for w, ok in self.client.run(importable, self.code).items() if not ok]
        if where:
            raise JanjaInputError(self.cannot_import(f"not importable on {', '.join(where)}"))

    def executor(self, setup):
        self.check_code()
        return _Executor(self, self.client.scatter(setup, broadcast=True, hash=True))

    def stream(self, grid, inside, chunk, setup, n_out, emit, tile_rows, progress):
        """tiled_kriging.stream_cells with every chunk solved on the cluster."""
        tiled_kriging.stream_cells(grid, inside, chunk, solve_chunk, n_out, emit, tile_rows, self.slots,
                                   progress, limit_blas=False, executor=self.executor(setup))


def _sentence(address, why, local="krige"):
    return (f"Could not use the Dask scheduler at '{address}' ({why}): check the address (such as "
            "tcp://host:8786), that 'dask scheduler' runs there with at least one 'dask worker', and that "
            f"this computer can reach its port; or leave the Dask scheduler empty to {local} on this "
            "computer's threads.")


@contextmanager
def connect(scheduler, cluster_class=None, doing="Kriging", local="krige"):
    """Yield a Cluster for a scheduler address or a dask Client, or None when `scheduler` is empty.

    An address is connected (CONNECT_TIMEOUT) and closed on exit; a Client is used as given.
    cluster_class, doing, local: another job's Cluster subclass and words (distributed_inference).
    """
    cluster_class = cluster_class or Cluster
    if scheduler is None or (isinstance(scheduler, str) and not scheduler.strip()):
        yield None
        return
    if not isinstance(scheduler, str):  # a dask Client made by the caller (tests, notebooks)
        address = scheduler.scheduler.address
        yield cluster_class(scheduler, address, _killed(_distributed(address, doing, local)))
        return
    address = scheduler.strip()
    if not _ADDRESS.match(address):
        raise JanjaInputError(_sentence(address, "not an address of the form tcp://host:port", local))
    distributed = _distributed(address, doing, local)
    try:
        client = distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise JanjaInputError(_sentence(address, f"no answer within {CONNECT_TIMEOUT:g} s: {exc}", local)) from exc
    try:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise JanjaInputError(_sentence(address, f"no worker joined within {CONNECT_TIMEOUT:g} s",
                                            local)) from exc
        yield cluster_class(client, address, _killed(distributed))
    finally:
        client.close(timeout=CONNECT_TIMEOUT)


def _killed(distributed):
    return getattr(distributed, "KilledWorker", ())  # a worker died (out of memory...) more than allowed


class _TargetRow:
    """Arbitrary targets as one row of a 'grid', so stream_cells chunks them as kriging does."""

    def __init__(self, xt, yt):
        self.xt, self.yt = xt, yt
        self.nrows, self.ncols = 1, xt.size
        self.n_cells = xt.size

    def cell_centres(self, row_start=0, row_stop=None):
        return self.xt, self.yt


class RemoteKriging:
    """kriging.ordinary_kriging and lognormal_kriging (same arguments, same results) with the chunks
    solved on a Dask cluster: krige_pipeline.krige_elements(..., scheduler=) uses it."""

    def __init__(self, scheduler):
        self.scheduler = scheduler

    def ordinary_kriging(self, x, y, z, xt, yt, model, neighbours=None, search_radius=None, min_neighbours=1,
                         progress=None):
        kr = tiled_kriging._Kriger(x, y, z, model, neighbours, search_radius, min_neighbours, workers=1)  # checks
        xt, yt = kriging._targets(xt, yt)
        out = [np.full(xt.size, np.nan) for _ in range(3)]

        def emit(row0, bands):
            for o, b in zip(out, bands):
                o[:] = b.ravel()

        if xt.size:
            with connect(self.scheduler) as cluster:
                cluster.stream(_TargetRow(xt, yt), None, kr.chunk,
                               make_setup(x, y, z, model, neighbours, search_radius, min_neighbours), 3, emit, 1,
                               progress)
        pred, var, mu = out
        # targets with too few neighbours inside the radius are the NaN ones, as _solve_neighbours leaves them
        return kriging.KrigingResult(pred, var, mu, int(np.isnan(pred).sum()), 0)

    def lognormal_kriging(self, x, y, z, xt, yt, model, **kwargs):
        z = np.asarray(z, dtype=float).ravel()
        if not (z > 0).all():
            return kriging.lognormal_kriging(x, y, z, xt, yt, model, **kwargs)  # its refusal, word for word
        r = self.ordinary_kriging(x, y, np.log(z), xt, yt, model, **kwargs)
        back = np.exp(r.prediction + r.variance / 2.0 - r.lagrange)
        return kriging.LognormalResult(back, r.prediction, r.variance, r.lagrange, r.n_missing, r.n_systems)
