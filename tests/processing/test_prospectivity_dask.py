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
    from test_dense import build_dense_model

    dense_model = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1, head_trained_on="dense_features")
    message = processing_error("janja:prospectivity", {
        "STACK": stack, "MODEL": str(dense_model), "SCHEDULER": "tcp://127.0.0.1:9",
        "PROBABILITY": str(tmp_path / "p.tif")})
    assert "Could not use the Dask scheduler at 'tcp://127.0.0.1:9'" in message  # the shared trunk's run too
    assert not (tmp_path / "p.tif").exists()


def test_a_dense_features_card_with_a_scheduler_equals_the_run_without(qgis_app, cluster, tmp_path):
    """The card's head is trained on shared-trunk features (and smooths its map): its bands run on the cluster,
    the files are this computer's and the log and the report say where the bands ran."""
    import processing
    from qgis.core import QgsProcessingFeedback
    from test_dense import build_dense_model

    class Infos(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.infos = []

        def pushInfo(self, text):
            self.infos.append(text)

    stack, _, _, _ = make_inputs(tmp_path)
    model = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1, head_trained_on="dense_features",
                              head_output="logits", map_smoothing_cells=1.5)
    runs, logs = {}, {}
    for tag, scheduler in (("local", ""), ("dask", cluster.scheduler_address)):
        (tmp_path / tag).mkdir()
        logs[tag] = Infos()
        runs[tag] = processing.run("janja:prospectivity", {
            "STACK": stack, "MODEL": str(model), "HIGH": 0.8, "MODERATE": 0.5, "THREADS": 1,
            "SCHEDULER": scheduler, "PROBABILITY": str(tmp_path / tag / "p.tif"),
            "CLASSES": str(tmp_path / tag / "c.tif"), "TARGETS": None, "REPORT": str(tmp_path / tag / "r.html")},
            feedback=logs[tag])
    for key in ("PROBABILITY", "CLASSES"):
        local, dask = read_output(runs["local"][key]), read_output(runs["dask"][key])
        assert local[0].tobytes() == dask[0].tobytes() and local[1:] == dask[1:]
    where = f"the Dask cluster at {cluster.scheduler_address} (2 workers, 2 threads)"
    assert f"Bands computed on {where}." in logs["dask"].infos
    assert not any("Dask" in line for line in logs["local"].infos)
    report = (tmp_path / "dask" / "r.html").read_text()
    assert "shared trunk" in report and f"on {where}" in report
