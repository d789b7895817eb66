"""Kriging on a Dask cluster (2 worker processes) writes exactly what this computer's threads write."""

import sys
import time

import numpy as np
import pytest

from janja_plugin.core.errors import JanjaInputError, MissingDependencyError
from janja_plugin.core.geostatistics import distributed_kriging as dk
from janja_plugin.core.geostatistics import krige_pipeline as kp
from janja_plugin.core.geostatistics import kriging
from janja_plugin.core.geostatistics import tiled_kriging as tk
from janja_plugin.core.raster_grid import grid_for_extent

WKT = 'LOCAL_CS["metres",UNIT["metre",1]]'


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        yield c


def samples(n=400, seed=5):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 12_000, n), rng.uniform(0, 9_000, n)
    au = np.exp(np.sin(x / 2000) + np.cos(y / 1700) + 0.3 * rng.standard_normal(n))
    cu = 10 * np.exp(np.cos(x / 3000) + 0.2 * rng.standard_normal(n))
    return x, y, {"Au": list(au), "Cu": list(cu)}


GRID = grid_for_extent(0, 0, 12_000, 9_000, cell=100.0)  # 120 x 90 cells


def mask():
    inside = np.ones((GRID.nrows, GRID.ncols), bool)
    inside[:20, :50] = False
    inside[60:, 100:] = False
    return inside


def files(tmp_path, tag, settings, inside=None, **kw):
    x, y, cols = samples()
    res = tk.krige_elements_to_files(x, y, cols, settings, GRID, tmp_path / f"{tag}.tif", tmp_path / f"{tag}_v.tif",
                                     WKT, inside=inside, tile_rows=7, log=lambda s: None, **kw)
    return res, (tmp_path / f"{tag}.tif").read_bytes(), (tmp_path / f"{tag}_v.tif").read_bytes()


@pytest.mark.parametrize("settings, masked", [
    (kp.KrigeSettings(neighbours=16), True),  # lognormal, a mask
    (kp.KrigeSettings(neighbours=12, transform="none", anisotropy_angle=30, anisotropy_ratio=0.6), False),
    (kp.KrigeSettings(neighbours=0), False),  # global: each worker factorises the system once
])
def test_cluster_files_equal_local_files_byte_for_byte(tmp_path, monkeypatch, cluster, settings, masked):
    # small chunks: many tasks per element, chunks straddling the 7-row tiles
    monkeypatch.setattr(kriging, "CHUNK_TARGETS", 1000)
    monkeypatch.setattr(kriging, "GLOBAL_BATCH_DOUBLES", 401 * 700)
    inside = mask() if masked else None
    local, p, v = files(tmp_path, "local", settings, inside, workers=2)
    remote, rp, rv = files(tmp_path, "dask", settings, inside, scheduler=cluster.scheduler_address)
    assert rp == p and rv == v
    assert [r.fit for r in remote] == [r.fit for r in local]
    assert [r.cv_summary for r in remote] == [r.cv_summary for r in local]
    from osgeo import gdal

    ds = gdal.Open(str(tmp_path / "dask.tif"))
    band = ds.GetRasterBand(1).ReadAsArray()
    assert np.isfinite(band).all() and (band[:20, :50] == ds.GetRasterBand(1).GetNoDataValue()).all() == masked
    ds = None


@pytest.mark.parametrize("settings", [kp.KrigeSettings(neighbours=16), kp.KrigeSettings(neighbours=8,
                                      transform="none", search_radius=700.0)])
def test_whole_grid_arrays_equal_in_float64_with_a_client(monkeypatch, cluster, settings):
    """krige_elements (today's janja:krige) with a scheduler: every float64 value and the missing-cell count."""
    from distributed import Client

    monkeypatch.setattr(kriging, "CHUNK_TARGETS", 1000)
    x, y, cols = samples()
    inside = mask()
    local = kp.krige_elements(x, y, cols, settings, GRID, inside=inside, log=lambda s: None)
    notes = []
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        remote = kp.krige_elements(x, y, cols, settings, GRID, inside=inside, log=notes.append, scheduler=client)
    for a, b in zip(local, remote):
        for key in ("prediction", "variance", "log_prediction", "log_variance"):
            if getattr(a, key) is not None:
                np.testing.assert_array_equal(getattr(b, key), getattr(a, key))
        assert a.notes == b.notes
    if settings.search_radius:  # a 700 m radius leaves cells without samples: counted the same
        assert any("too few samples within the search radius" in n for r in local for n in r.notes)


def test_each_worker_builds_its_kd_tree_once(cluster):
    from distributed import Client

    x, y, cols = samples()
    model = kp.variogram.make_model("spherical", 0.05, 1.0, 3000.0)
    setup = dk.make_setup(x, y, np.log(cols["Au"]), model, 16, None)
    cx, cy = GRID.cell_centres()
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        future = client.scatter(setup, broadcast=True, hash=True)
        for _ in range(3):
            client.gather([client.submit(dk.solve_chunk, future, cx[i::7], cy[i::7], pure=False) for i in range(7)])
        built = client.run(lambda token=setup.token: dk._BUILDS[token])
    assert list(built.values()) == [1, 1]  # one tree per worker process, reused by 21 tasks
    assert dk.make_setup(x, y, np.log(cols["Au"]), model, 16, None).token == setup.token
    assert dk.make_setup(x, y, np.log(cols["Au"]), model, 17, None).token != setup.token


def test_cancel_cancels_the_tasks_and_leaves_no_file(tmp_path, monkeypatch, cluster):
    monkeypatch.setattr(kriging, "CHUNK_TARGETS", 500)
    x, y, cols = samples()
    seen = []

    def progress(f):
        seen.append(f)
        return f > 0.2

    with pytest.raises(kriging.KrigingCancelled):
        tk.krige_elements_to_files(x, y, cols, kp.KrigeSettings(neighbours=16), GRID, tmp_path / "p.tif",
                                   tmp_path / "v.tif", WKT, tile_rows=10, progress=progress, log=lambda s: None,
                                   scheduler=cluster.scheduler_address)
    assert list(tmp_path.iterdir()) == []
    assert 0.2 < seen[-1] < 0.5  # stopped soon after the request, not at the end


def test_workers_without_the_code_are_refused_before_any_task(tmp_path, monkeypatch, cluster):
    """Code only this process can import (as when workers lack the plugin): a sentence, and no worker lost."""
    from distributed import Client

    (tmp_path / "only_on_the_driver.py").write_text("def solve(setup, x, y):\n    return x, y\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # after the workers started: they cannot import it
    import only_on_the_driver  # noqa: F401

    monkeypatch.setattr(dk.Cluster, "code", "only_on_the_driver")
    x, y, cols = samples()
    setup = dk.make_setup(x, y, np.log(cols["Au"]), kp.variogram.make_model("spherical", 0.05, 1.0, 3000.0),
                          16, None)
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        workers = set(client.nthreads())
        with pytest.raises(JanjaInputError, match=r"cannot load the plugin's kriging code \(package "
                                                  r"'only_on_the_driver': not importable on tcp://.*start "
                                                  r"'dask scheduler' and every 'dask worker' .* on PYTHONPATH"):
            dk.Cluster(client, cluster.scheduler_address, ()).executor(setup)
        assert set(client.nthreads()) == workers
    monkeypatch.undo()
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        dk.Cluster(client, cluster.scheduler_address, ()).check_code()  # the plugin itself is importable there


def test_an_unreachable_scheduler_is_a_sentence_within_seconds(tmp_path, monkeypatch):
    monkeypatch.setattr(dk, "CONNECT_TIMEOUT", 2.0)
    x, y, cols = samples()
    t = time.perf_counter()
    with pytest.raises(JanjaInputError, match="Could not use the Dask scheduler at 'tcp://127.0.0.1:9'.*"
                                              "leave the Dask scheduler empty"):
        tk.krige_elements_to_files(x, y, cols, kp.KrigeSettings(neighbours=16), GRID, tmp_path / "p.tif",
                                   tmp_path / "v.tif", WKT, log=lambda s: None, scheduler="tcp://127.0.0.1:9")
    assert time.perf_counter() - t < 10
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(JanjaInputError, match="not an address of the form tcp://host:port"):
        kp.krige_elements(x, y, cols, kp.KrigeSettings(neighbours=16), GRID, log=lambda s: None,
                          scheduler="http://cluster/")


def test_a_scheduler_without_workers_is_a_sentence(tmp_path, monkeypatch):
    from distributed import LocalCluster

    monkeypatch.setattr(dk, "CONNECT_TIMEOUT", 1.0)
    x, y, cols = samples()
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as empty:
        with pytest.raises(JanjaInputError, match="no worker joined within 1 s"):
            tk.krige_elements_to_files(x, y, cols, kp.KrigeSettings(neighbours=16), GRID, tmp_path / "p.tif",
                                       tmp_path / "v.tif", WKT, log=lambda s: None, scheduler=empty.scheduler_address)
    assert list(tmp_path.iterdir()) == []


def test_without_distributed_the_sentence_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    x, y, cols = samples()
    with pytest.raises(MissingDependencyError, match=r"needs the Python package 'distributed'.*pip install "
                                                     r"distributed==.*leave the Dask scheduler empty"):
        tk.krige_elements_to_files(x, y, cols, kp.KrigeSettings(neighbours=16), GRID, tmp_path / "p.tif",
                                   tmp_path / "v.tif", WKT, log=lambda s: None, scheduler="tcp://10.0.0.5:8786")
    assert list(tmp_path.iterdir()) == []
    # no scheduler: the plugin runs without distributed
    res = kp.krige_elements(*samples()[:2], {"Au": samples()[2]["Au"]}, kp.KrigeSettings(neighbours=16), GRID,
                            log=lambda s: None, scheduler="  ")
    assert np.isfinite(res[0].prediction).all()


def test_blas_hold_asks_openblas_not_the_environment(monkeypatch):
    """A LocalCluster's nanny sets OPENBLAS_NUM_THREADS=1 in the driver after OpenBLAS loaded: the local
    run must still hold OpenBLAS to one thread (else other bits, and oversubscribed cores)."""
    lib = kriging._openblas()
    assert lib is not None  # Debian's numpy links OpenBLAS
    before = lib.openblas_get_num_threads()
    lib.openblas_set_num_threads(2)
    try:
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
        with kriging._blas_threads_limited() as limited:
            assert limited and lib.openblas_get_num_threads() == 1
        assert lib.openblas_get_num_threads() == 2
    finally:
        lib.openblas_set_num_threads(before)
