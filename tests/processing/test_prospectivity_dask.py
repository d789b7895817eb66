"""janja:prospectivity with a Dask scheduler (2 worker processes) writes the files of the run without one."""

import importlib

from dask_processing import cluster_fixture, read_output  # noqa: F401 - the fixture `cluster`
from test_prospectivity import make_inputs
from testdata import processing_error


def test_prospectivity_with_a_scheduler_equals_the_run_without(qgis_app, cluster, tmp_path):
    import processing
    from qgis.core import QgsVectorLayer

    stack, model, _, _ = make_inputs(tmp_path)
    runs = {}
    for tag, scheduler in (("local", ""), ("dask", cluster.scheduler_address)):
        (tmp_path / tag).mkdir()
        runs[tag] = processing.run("janja:prospectivity", {
            "STACK": stack, "MODEL": model, "HIGH": 0.8, "MODERATE": 0.5, "STRIDE": 2, "THREADS": 1,
            "SCHEDULER": scheduler, "PROBABILITY": str(tmp_path / tag / "p.tif"),
            "CLASSES": str(tmp_path / tag / "c.tif"), "TARGETS": str(tmp_path / tag / "t.gpkg")})
    for key in ("PROBABILITY", "CLASSES"):
        local, dask = read_output(runs["local"][key]), read_output(runs["dask"][key])
        assert local[0].tobytes() == dask[0].tobytes() and local[1:] == dask[1:]
    rows = {}
    for tag in runs:
        layer = QgsVectorLayer(runs[tag]["TARGETS"], "t", "ogr")
        rows[tag] = sorted((f["rank"], f["cells"], f["mean_prob"], f.geometry().asWkt()) for f in layer.getFeatures())
        del layer
    assert rows["local"] == rows["dask"] and len(rows["local"]) >= 2
    from distributed import Client

    di = importlib.import_module("janja.janja_plugin.core.inference.distributed_inference")
    with Client(cluster.scheduler_address, set_as_default=False) as client:  # the workers classified the tiles
        loads = client.run(lambda: sum(di._LOADS.values()))
    assert sum(loads.values()) >= 1


def test_bad_scheduler_address_is_a_sentence_and_nothing_is_written(qgis_app, tmp_path):
    stack, model, _, _ = make_inputs(tmp_path)
    message = processing_error("janja:prospectivity", {
        "STACK": stack, "MODEL": model, "SCHEDULER": "http://cluster/", "PROBABILITY": str(tmp_path / "p.tif")})
    assert "not an address of the form tcp://host:port" in message and "to map on this computer's threads" in message
    assert not (tmp_path / "p.tif").exists()
    message = processing_error("janja:prospectivity", {
        "STACK": stack, "MODEL": model, "SCHEDULER": "tcp://127.0.0.1:9", "SHARED_TRUNK": True,
        "PROBABILITY": str(tmp_path / "p.tif")})
    assert "The shared trunk runs on this computer only" in message
    assert not (tmp_path / "p.tif").exists()
