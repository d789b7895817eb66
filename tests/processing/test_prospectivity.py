"""janja:prospectivity in-process with a small ONNX model built from known weights."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from test_model_card import build_model, card_dict  # noqa: E402 - the shared test-model builder
from testdata import processing_error  # noqa: E402

from janja_plugin.core.raster_grid import Grid, write_stack  # noqa: E402

GRID = Grid(400000.0, 6500000.0, 250.0, 16, 12)
ELEMENTS = [("Au_ppb", "ppb", "log10", 0.5, 0.4), ("As_ppm", "ppm", "log10", 1.0, 0.5)]


def make_inputs(tmp_path, names=("Au_ppb", "As_ppm")):
    yy, xx = np.mgrid[0:GRID.nrows, 0:GRID.ncols]
    au = 2 + 60 * np.exp(-((yy - 3) ** 2 + (xx - 3) ** 2) / 4) + 25 * np.exp(-((yy - 9) ** 2 + (xx - 12) ** 2) / 3)
    as_ = 8 + 0.5 * xx + 0.2 * yy
    stack = write_stack(tmp_path / "stack.tif", [au, as_], list(names), GRID, "EPSG:28350")
    card = card_dict(elements=ELEMENTS, channels=2, window=3, size=6)
    # logit(prospective) = 3 * mean(standardised log10 Au) + 1 * mean(standardised log10 As) - 1.5
    build_model(tmp_path / "m.onnx", card, weights=(np.array([[0, 0], [3.0, 1.0]], np.float32),
                                                      np.array([0, -1.5], np.float32)), pool=True)
    return str(stack), str(tmp_path / "m.onnx"), au, as_


def test_probability_classes_and_ranked_targets(qgis_app, tmp_path):
    import processing
    import rasterio
    from qgis.core import QgsVectorLayer

    stack, model, au, as_ = make_inputs(tmp_path)
    result = processing.run("janja:prospectivity", {
        "STACK": stack, "MODEL": model, "HIGH": 0.9, "MODERATE": 0.5,
        "PROBABILITY": str(tmp_path / "p.tif"), "CLASSES": str(tmp_path / "c.tif"),
        "TARGETS": str(tmp_path / "targets.gpkg"), "REPORT": str(tmp_path / "r.html")})
    with rasterio.open(result["PROBABILITY"]) as src:
        p = src.read(1)
    # an interior cell, by hand: 3x3 window means of the standardised log10 values (resize keeps the mean)
    r, c = 5, 7
    za = ((np.log10(au[r - 1:r + 2, c - 1:c + 2]) - 0.5) / 0.4).mean()
    zs = ((np.log10(as_[r - 1:r + 2, c - 1:c + 2]) - 1.0) / 0.5).mean()
    expected = 1 / (1 + np.exp(-(3 * za + zs - 1.5)))
    assert p[r, c] == pytest.approx(expected, abs=1e-5)
    assert np.all((p >= 0) & (p <= 1))
    targets = QgsVectorLayer(result["TARGETS"], "t", "ogr")
    rows = sorted((f["rank"], f["name"], f["mean_prob"]) for f in targets.getFeatures())
    assert len(rows) == result["N_TARGETS"] >= 1 and rows[0][1] == "Area I"
    assert [m for _, _, m in rows] == sorted([m for _, _, m in rows], reverse=True)
    assert (tmp_path / "p.qml").exists() and (tmp_path / "c.qml").exists()
    assert "Area I" in (tmp_path / "r.html").read_text()
    del targets



def test_a_learned_map_that_loses_points_to_the_label_free_map_in_its_report(qgis_app, tmp_path):
    """A card whose held-out score is below the kriged target's: the report's verdict recommends the kriged
    target's classes and, in the same warning, names janja:spatial_anomaly as the label-free map beside them (the
    report janja:workflow writes as prospectivity:prospectivity_report)."""
    import re

    import processing

    stack, _, _, _ = make_inputs(tmp_path)
    card = card_dict(elements=ELEMENTS, channels=2, window=3, size=6)
    card["validation"] = {"method": "spatial_blocks", "metrics": {
        "protocol_auc_held_out_blocks": 0.853, "protocol_auc_sd": 0.035, "kriged_target_protocol_auc": 0.922}}
    build_model(tmp_path / "loses.onnx", card, weights=(np.array([[0, 0], [3.0, 1.0]], np.float32),
                                                          np.array([0, -1.5], np.float32)), pool=True)
    processing.run("janja:prospectivity", {
        "STACK": stack, "MODEL": str(tmp_path / "loses.onnx"), "PROBABILITY": str(tmp_path / "p.tif"),
        "CLASSES": None, "TARGETS": None, "REPORT": str(tmp_path / "r.html")})
    html = (tmp_path / "r.html").read_text()
    verdict = [p for p in re.findall(r'<p class="warning">(.*?)</p>', html) if "does NOT beat" in p]
    assert len(verdict) == 1, html
    assert "recommended map is the kriged target" in verdict[0] and "janja:spatial_anomaly" in verdict[0]
    assert "0.880" in verdict[0] and "0.736" in verdict[0] and html.count("janja:spatial_anomaly") == 1

def test_stack_without_the_models_elements_is_refused(qgis_app, tmp_path):
    stack, model, _, _ = make_inputs(tmp_path, names=("Au_ppb", "Cu_ppm"))
    message = processing_error("janja:prospectivity", {"STACK": stack, "MODEL": model,
                                                       "PROBABILITY": str(tmp_path / "p.tif"), "CLASSES": None,
                                                       "TARGETS": None, "REPORT": None})
    assert "lacks As_ppm" in message
    assert not (tmp_path / "p.tif").exists()


def test_known_deposits_set_the_classes_by_prediction_area(qgis_app, tmp_path):
    import processing
    import rasterio
    from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsVectorLayer

    stack, model, _, _ = make_inputs(tmp_path)
    deposits = QgsVectorLayer("Point?crs=EPSG:28350", "deposits", "memory")
    for r, c in ((3, 3), (9, 12)):
        f = QgsFeature()
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(GRID.xmin + (c + 0.5) * 250, GRID.ymax - (r + 0.5) * 250)))
        deposits.dataProvider().addFeatures([f])
    result = processing.run("janja:prospectivity", {
        "STACK": stack, "MODEL": model, "DEPOSITS": deposits, "PROBABILITY": str(tmp_path / "p.tif"),
        "CLASSES": str(tmp_path / "c.tif"), "TARGETS": None, "REPORT": str(tmp_path / "r.html")})
    with rasterio.open(result["CLASSES"]) as src:
        classes = src.read(1)
    assert classes[3, 3] == 3 and classes[9, 12] >= 2
    assert "prediction-area" in (tmp_path / "r.html").read_text()
    del deposits


def test_shared_trunk_option_equals_per_window_for_an_exact_model(qgis_app, tmp_path):
    import processing
    import rasterio
    from test_dense import build_dense_model

    stack, _, _, _ = make_inputs(tmp_path)
    model = build_dense_model(tmp_path, window=3, size=3, stride=1)  # no resize, valid conv: dense is exact
    maps = {}
    for shared in (False, True):
        result = processing.run("janja:prospectivity", {
            "STACK": stack, "MODEL": str(model), "SHARED_TRUNK": shared,
            "PROBABILITY": str(tmp_path / f"p{shared}.tif"), "CLASSES": None, "TARGETS": None,
            "REPORT": str(tmp_path / f"r{shared}.html")})
        with rasterio.open(result["PROBABILITY"]) as src:
            maps[shared] = src.read(1)
    np.testing.assert_allclose(maps[True], maps[False], atol=1e-6)
    assert "Shared-trunk evaluation" in (tmp_path / "rTrue.html").read_text()


def test_a_dense_features_model_runs_on_the_shared_trunk_without_the_option(qgis_app, tmp_path):
    """SHARED_TRUNK unticked: the card decides; a head trained on shared-trunk features is run on them."""
    import processing
    from test_dense import build_dense_model

    stack, _, _, _ = make_inputs(tmp_path)
    model = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1, head_trained_on="dense_features")
    from qgis.core import QgsProcessingFeedback

    class Infos(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.infos = []

        def pushInfo(self, text):
            self.infos.append(text)

    feedback = Infos()
    processing.run("janja:prospectivity", {
        "STACK": stack, "MODEL": str(model), "STRIDE": 2, "PROBABILITY": str(tmp_path / "p.tif"), "CLASSES": None,
        "TARGETS": None, "REPORT": str(tmp_path / "r.html")}, feedback=feedback)
    report = (tmp_path / "r.html").read_text()
    assert "trained on exactly these features" in report and "exact output" in report
    assert any("every cell is the model's exact output" in line for line in feedback.infos)


def test_shared_trunk_refused_for_a_model_without_parts(qgis_app, tmp_path):
    stack, model, _, _ = make_inputs(tmp_path)
    message = processing_error("janja:prospectivity", {"STACK": stack, "MODEL": model, "SHARED_TRUNK": True,
                                                       "PROBABILITY": str(tmp_path / "p.tif"), "CLASSES": None,
                                                       "TARGETS": None, "REPORT": None})
    assert "no shared-trunk parts" in message
    assert not (tmp_path / "p.tif").exists()


def test_single_band_element_rasters_give_the_stack_result(qgis_app, tmp_path):
    """One raster per element (named by file), in any order, maps exactly as the multi-band stack does."""
    import processing
    import rasterio

    stack, model, au, as_ = make_inputs(tmp_path)
    # As first: the card's element order, not the list order, decides the channels
    singles = [write_stack(tmp_path / "As_ppm.tif", [as_], [""], GRID, "EPSG:28350"),
               write_stack(tmp_path / "Au_ppb.tif", [au], [""], GRID, "EPSG:28350")]
    out = {}
    for key, params in (("stack", {"STACK": stack}), ("singles", {"ELEMENT_RASTERS": [str(p) for p in singles]})):
        processing.run("janja:prospectivity", {**params, "MODEL": model, "PROBABILITY": str(tmp_path / f"{key}.tif"),
                                               "CLASSES": None, "TARGETS": None, "REPORT": None})
        with rasterio.open(tmp_path / f"{key}.tif") as src:
            out[key] = src.read(1)
    np.testing.assert_array_equal(out["singles"], out["stack"])
    message = processing_error("janja:prospectivity", {"STACK": stack, "ELEMENT_RASTERS": [str(p) for p in singles],
                                                       "MODEL": model, "PROBABILITY": str(tmp_path / "both.tif")})
    assert "not both" in message


def test_a_stack_unlike_the_training_data_is_refused_and_nothing_is_written(qgis_app, tmp_path):
    """Au in ppb where the model read ppm-like values (x 1000): every cell outside the card's range."""
    stack, model, au, as_ = make_inputs(tmp_path)
    write_stack(tmp_path / "shifted.tif", [au * 1000.0, as_], ["Au_ppb", "As_ppm"], GRID, "EPSG:28350")
    outputs = {"PROBABILITY": str(tmp_path / "p.tif"), "CLASSES": str(tmp_path / "c.tif"),
               "TARGETS": str(tmp_path / "t.gpkg"), "REPORT": str(tmp_path / "r.html")}
    message = processing_error("janja:prospectivity", {"STACK": str(tmp_path / "shifted.tif"), "MODEL": model,
                                                       **outputs})
    assert "outside what the model" in message and "Au_ppb" in message and "Extrapolate" in message
    assert not any(Path(p).exists() for p in outputs.values())


def test_extrapolate_runs_and_marks_the_outputs(qgis_app, tmp_path):
    import processing
    from qgis.core import QgsVectorLayer

    stack, model, au, as_ = make_inputs(tmp_path)
    write_stack(tmp_path / "shifted.tif", [au / 30.0, as_], ["Au_ppb", "As_ppm"], GRID, "EPSG:28350")
    result = processing.run("janja:prospectivity", {
        "STACK": str(tmp_path / "shifted.tif"), "MODEL": model, "EXTRAPOLATE": True, "HIGH": 0.01,
        "MODERATE": 0.005, "PROBABILITY": str(tmp_path / "p.tif"), "CLASSES": str(tmp_path / "c.tif"),
        "TARGETS": str(tmp_path / "t.gpkg"), "REPORT": str(tmp_path / "r.html")})
    from osgeo import gdal

    assert gdal.Open(result["PROBABILITY"]).GetMetadata()["janja_extrapolation"] == "yes"
    html = (tmp_path / "r.html").read_text()
    assert "Prospectivity — EXTRAPOLATION" in html
    targets = QgsVectorLayer(result["TARGETS"], "t", "ogr")
    names = [f["name"] for f in targets.getFeatures()]
    assert names and all(n.endswith("(extrapolation)") for n in names)
    del targets


def test_streamed_outputs_equal_the_whole_grid_run(qgis_app, tmp_path):
    """janja:prospectivity writes tile by tile (streamed_prospectivity); the files equal the whole-grid core run's
    cell for cell, with the same tags, and the target polygons carry the same ranks and numbers."""
    import processing
    from osgeo import gdal
    from qgis.core import QgsVectorLayer

    from janja_plugin.core.inference import prospectivity as pr

    stack, model, _, _ = make_inputs(tmp_path)
    result = processing.run("janja:prospectivity", {
        "STACK": stack, "MODEL": model, "HIGH": 0.8, "MODERATE": 0.5, "STRIDE": 2, "THREADS": 1,
        "PROBABILITY": str(tmp_path / "p.tif"), "CLASSES": str(tmp_path / "c.tif"),
        "TARGETS": str(tmp_path / "targets.gpkg")})
    whole = pr.run_prospectivity(stack, model, pr.ProspectivitySettings(stride=2, threads=1, moderate=0.5, high=0.8))
    ref = pr.write_rasters(whole, tmp_path / "wp.tif", tmp_path / "wc.tif")
    for got, want in ((result["PROBABILITY"], ref["probability"]), (result["CLASSES"], ref["class"])):
        a, b = gdal.Open(str(got)), gdal.Open(str(want))
        assert np.array_equal(a.ReadAsArray(), b.ReadAsArray())
        tags_a, tags_b = a.GetMetadata(), b.GetMetadata()
        tags_a.pop("janja_stride_seconds"), tags_b.pop("janja_stride_seconds")
        assert tags_a == tags_b and "janja_stride_mae" in tags_a
        assert a.GetGeoTransform() == b.GetGeoTransform() and a.GetProjection() == b.GetProjection()
        a = b = None
    targets = QgsVectorLayer(result["TARGETS"], "t", "ogr")
    rows = sorted((f["rank"], f["cells"], f["mean_prob"]) for f in targets.getFeatures())
    assert rows == [(t.rank, t.n_cells, pytest.approx(t.mean_probability, abs=1e-12)) for t in whole.targets]
    assert len(rows) == result["N_TARGETS"] >= 2
    del targets
