"""janja:krige with a Dask scheduler (2 worker processes) gives the maps of the run without one."""

import importlib

import numpy as np
import pytest
from test_krige import krige_params, meuse_layer, polygon_layer
from testdata import processing_error


@pytest.fixture(scope="module")
def cluster(qgis_app):
    # after qgis_app: the workers are spawned with this sys.path, so they import the plugin as QGIS does
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        yield c


def plugin_module(name):
    """The core module as the loaded plugin imported it (the plugin is `janja` here, not the checkout)."""
    return importlib.import_module(f"janja.janja_plugin.core.geostatistics.{name}")


def read(path):
    from osgeo import gdal

    ds = gdal.Open(str(path))
    bands = [ds.GetRasterBand(i + 1) for i in range(ds.RasterCount)]
    out = (np.stack([b.ReadAsArray() for b in bands]), [b.GetNoDataValue() for b in bands],
           [b.GetDescription() for b in bands], ds.GetGeoTransform())
    ds = None
    return out


def test_krige_with_a_scheduler_equals_the_run_without(qgis_app, cluster, tmp_path, monkeypatch):
    import processing

    monkeypatch.setattr(plugin_module("kriging"), "CHUNK_TARGETS", 700)  # several tasks per element
    mask = polygon_layer("POLYGON((178500 329700, 181000 329700, 181000 333000, 178500 333000, 178500 329700))")
    runs = {}
    for tag, scheduler in (("local", ""), ("dask", cluster.scheduler_address)):
        (tmp_path / tag).mkdir()
        params = krige_params(tmp_path / tag, FIELDS=["zinc", "copper"], NEIGHBOURS=16, MASK=mask,
                              SCHEDULER=scheduler)
        runs[tag] = processing.run("janja:krige", params)
    for key in ("OUTPUT", "VARIANCE", "LOG_OUTPUT"):
        local, dask = read(runs["local"][key]), read(runs["dask"][key])
        assert local[0].tobytes() == dask[0].tobytes()
        assert local[1:] == dask[1:]
        assert (local[0] == local[1][0]).any() and (local[0] != local[1][0]).any()  # masked and kriged cells
    assert (tmp_path / "dask" / "cv.gpkg").exists() and (tmp_path / "dask" / "report.html").exists()
    from distributed import Client

    dk = plugin_module("distributed_kriging")
    with Client(cluster.scheduler_address, set_as_default=False) as client:  # the workers did the kriging
        builds = client.run(lambda: sum(dk._BUILDS.values()))
    assert sum(builds.values()) >= 2  # two elements, each kriger built once per worker that solved a chunk


def test_an_unreachable_scheduler_is_refused_with_a_sentence(qgis_app, tmp_path, monkeypatch):
    monkeypatch.setattr(plugin_module("distributed_kriging"), "CONNECT_TIMEOUT", 2.0)
    message = processing_error("janja:krige", krige_params(tmp_path, INPUT=meuse_layer(), NEIGHBOURS=16,
                                                           SCHEDULER="tcp://127.0.0.1:9"))
    assert "Could not use the Dask scheduler at 'tcp://127.0.0.1:9'" in message
    assert "leave the Dask scheduler empty" in message and "Traceback" not in message
    assert not list(tmp_path.iterdir())
