"""janja:anomaly_score with a Dask scheduler (2 worker processes) writes the files of the run without one, and
says where its tiles ran."""

import importlib

import pytest
from dask_processing import cluster_fixture, read_output  # noqa: F401 - the fixture `cluster`
from test_anomaly_score import make_inputs, points_layer
from testdata import processing_error


def test_anomaly_score_with_a_scheduler_equals_the_run_without(qgis_app, cluster, tmp_path):
    import processing
    from qgis.core import QgsProcessingFeedback, QgsVectorLayer

    class Log(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.lines = []

        def pushInfo(self, info):
            self.lines.append(info)

    stack, model, _, _ = make_inputs(tmp_path)
    runs, logs = {}, {}
    for tag, scheduler in (("local", ""), ("dask", cluster.scheduler_address)):
        (tmp_path / tag).mkdir()
        logs[tag] = Log()
        runs[tag] = processing.run("janja:anomaly_score", {
            "STACK": stack, "MODEL": model, "POINTS": points_layer([(5, 7), (3, 3), (9, 14)]), "STRIDE": 2,
            "THREADS": 1, "PERCENTILES": "50,90", "SCHEDULER": scheduler,
            "OUTPUT": str(tmp_path / tag / "s.tif"), "CLASSES": str(tmp_path / tag / "c.tif"),
            "OUTPUT_POINTS": str(tmp_path / tag / "p.gpkg"), "REPORT": str(tmp_path / tag / "r.html")},
            feedback=logs[tag])
    for key in ("OUTPUT", "CLASSES"):
        local, dask = read_output(runs["local"][key]), read_output(runs["dask"][key])
        assert local[0].tobytes() == dask[0].tobytes() and local[1:] == dask[1:]
        assert "janja_stride_mae" in local[1]
    rows = {}
    for tag in runs:
        layer = QgsVectorLayer(runs[tag]["OUTPUT_POINTS"], "p", "ogr")
        rows[tag] = sorted((f["sample_id"], f["anomaly_score"], f["class"]) for f in layer.getFeatures())
        del layer
    assert rows["local"] == rows["dask"] and len(rows["local"]) == 3
    where = f"the Dask cluster at {cluster.scheduler_address} (2 workers, 2 threads)"
    assert "Windows scored on this computer's threads." in logs["local"].lines
    assert f"Windows scored on {where}." in logs["dask"].lines
    assert f" on {where} in " in (tmp_path / "dask" / "r.html").read_text()
    from distributed import Client

    di = importlib.import_module("janja.janja_plugin.core.inference.distributed_inference")
    with Client(cluster.scheduler_address, set_as_default=False) as client:  # the workers scored the tiles
        loads = client.run(lambda: sum(di._LOADS.values()))
    assert sum(loads.values()) >= 1


def test_the_scheduler_parameter_is_prospectivitys(qgis_app):
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    ours = registry.algorithmById("janja:anomaly_score").parameterDefinition("SCHEDULER")
    theirs = registry.algorithmById("janja:prospectivity").parameterDefinition("SCHEDULER")
    assert ours is not None and ours.type() == theirs.type() == "string"
    assert (ours.description(), int(ours.flags()), ours.defaultValue()) == (
        theirs.description(), int(theirs.flags()), theirs.defaultValue())


def test_bad_scheduler_or_cancel_writes_nothing(qgis_app, cluster, tmp_path):
    import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    stack, model, _, _ = make_inputs(tmp_path)
    inputs = sorted(p.name for p in tmp_path.iterdir())
    out = {"OUTPUT": str(tmp_path / "s.tif"), "CLASSES": str(tmp_path / "c.tif"), "OUTPUT_POINTS": None,
           "REPORT": str(tmp_path / "r.html")}
    message = processing_error("janja:anomaly_score", {"STACK": stack, "MODEL": model, "SCHEDULER": "http://cluster/",
                                                       **out})
    assert "not an address of the form tcp://host:port" in message and "to map on this computer's threads" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == inputs
    feedback = QgsProcessingFeedback()
    feedback.cancel()  # seen after the cluster's first tile
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run("janja:anomaly_score", {"STACK": stack, "MODEL": model, "THREADS": 1,
                                               "SCHEDULER": cluster.scheduler_address, **out}, feedback=feedback)
    assert sorted(p.name for p in tmp_path.iterdir()) == inputs
