"""janja:prospectivity with a shared-trunk model streams band by band (streamed_dense), equal to the whole-grid core."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_dense import build_dense_model  # noqa: E402 - the shared tiny ONNX dense models
from test_prospectivity import make_inputs  # noqa: E402
from testdata import processing_error  # noqa: E402


def test_a_dense_features_model_streams_and_equals_the_whole_grid_core_run(qgis_app, tmp_path, monkeypatch):
    """The card's head was trained on shared-trunk features and smooths its map (sigma 1.5 cells, halo 6 rows); the
    plugin's whole-grid shared-trunk engine is made to fail, and trunk tiles are 2 rows (bands thinner than the
    halo) inside the plugin: the files, tags and target polygons still equal the whole-grid core run's."""
    import importlib

    import processing
    from osgeo import gdal
    from qgis.core import QgsVectorLayer

    from janja_plugin.core.inference import prospectivity as pr

    stack, _, _, _ = make_inputs(tmp_path)
    model = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1, head_trained_on="dense_features",
                              head_output="logits", map_smoothing_cells=1.5)
    settings = pr.ProspectivitySettings(threads=1, moderate=0.3, high=0.36, extrapolate=True)
    whole = pr.run_prospectivity(stack, str(model), settings)
    ref = pr.write_rasters(whole, tmp_path / "wp.tif", tmp_path / "wc.tif")
    assert whole.targets

    plugin_dense = importlib.import_module("janja.janja_plugin.core.inference.dense")

    def whole_grid(*args, **kwargs):
        raise AssertionError("the whole grid was gathered in memory")
    monkeypatch.setattr(plugin_dense, "predict_dense", whole_grid)
    monkeypatch.setattr(plugin_dense, "DEFAULT_TILE", (2, 5))
    result = processing.run("janja:prospectivity", {
        "STACK": stack, "MODEL": str(model), "HIGH": 0.36, "MODERATE": 0.3, "THREADS": 1, "EXTRAPOLATE": True,
        "PROBABILITY": str(tmp_path / "p.tif"), "CLASSES": str(tmp_path / "c.tif"),
        "TARGETS": str(tmp_path / "targets.gpkg"), "REPORT": str(tmp_path / "r.html")})
    for got, want in ((result["PROBABILITY"], ref["probability"]), (result["CLASSES"], ref["class"])):
        a, b = gdal.Open(str(got)), gdal.Open(str(want))
        assert np.array_equal(a.ReadAsArray(), b.ReadAsArray())
        assert a.GetMetadata() == b.GetMetadata() and "shared trunk" in a.GetMetadata()["janja_stride_check"]
        assert a.GetGeoTransform() == b.GetGeoTransform() and a.GetProjection() == b.GetProjection()
        a = b = None
    targets = QgsVectorLayer(result["TARGETS"], "t", "ogr")
    rows = sorted((f["rank"], f["cells"], f["mean_prob"]) for f in targets.getFeatures())
    assert rows == [(t.rank, t.n_cells, pytest.approx(t.mean_probability, abs=1e-12)) for t in whole.targets]
    assert "Gaussian of sigma 1.5 cells" in (tmp_path / "r.html").read_text()
    del targets


def test_a_shared_trunk_run_too_large_for_memory_is_refused_with_a_sentence(qgis_app, tmp_path, monkeypatch):
    import importlib

    raster_grid = importlib.import_module("janja.janja_plugin.core.raster_grid")  # the plugin's own copy
    stack, _, _, _ = make_inputs(tmp_path)
    model = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1, head_trained_on="dense_features")
    monkeypatch.setattr(raster_grid, "DEFAULT_MEMORY_LIMIT", 10 * 1024**2)
    message = processing_error("janja:prospectivity", {"STACK": stack, "MODEL": str(model), "EXTRAPOLATE": True,
                                                       "PROBABILITY": str(tmp_path / "p.tif"), "CLASSES": None,
                                                       "TARGETS": None, "REPORT": None})
    assert "with the shared trunk" in message and "memory even streamed band by band" in message
    assert not (tmp_path / "p.tif").exists()
