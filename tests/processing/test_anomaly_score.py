"""janja:anomaly_score in-process: a hand-computable anomaly model, the refusal of a classifier, and the
bundled f-AnoGAN model on a stack laid out like the Western Australia one."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from test_model_card import build_model, card_dict  # noqa: E402 - the shared test-model builder
from testdata import REPO, processing_error  # noqa: E402

from janja_plugin.core.raster_grid import Grid, write_stack  # noqa: E402

GRID = Grid(400000.0, 6500000.0, 250.0, 16, 12)
ELEMENTS = [("Au_ppb", "ppb", "log10", 0.5, 0.4), ("As_ppm", "ppm", "log10", 1.0, 0.5)]
BUNDLED = REPO / "models" / "wa_anomaly" / "wa_anomaly_fanogan.onnx"


def make_inputs(tmp_path, kind="unsupervised_anomaly"):
    yy, xx = np.mgrid[0:GRID.nrows, 0:GRID.ncols]
    au = 2 + 60 * np.exp(-((yy - 3) ** 2 + (xx - 3) ** 2) / 4)
    as_ = 8 + 0.5 * xx + 0.2 * yy
    stack = write_stack(tmp_path / "stack.tif", [au, as_], ["Au_ppb", "As_ppm"], GRID, "EPSG:28350")
    if kind == "unsupervised_anomaly":
        card = card_dict(elements=ELEMENTS, channels=2, window=3, size=3, class_names=("anomaly",),
                         output_kind="score", model_kind="unsupervised_anomaly")
        # score = 0.5 + 0.1 * mean(standardised log10 Au) + 0.05 * mean(standardised log10 As), clipped to 0..1
        build_model(tmp_path / "m.onnx", card, weights=(np.array([[0.1, 0.05]], np.float32),
                                                          np.array([0.5], np.float32)), pool=True, softmax=False)
    else:
        card = card_dict(elements=ELEMENTS, channels=2, window=3, size=3)
        build_model(tmp_path / "m.onnx", card, pool=True)
    return str(stack), str(tmp_path / "m.onnx"), au, as_


def expected_score(au, as_, r, c):
    za = ((np.log10(au[r - 1:r + 2, c - 1:c + 2]) - 0.5) / 0.4).mean()
    zs = ((np.log10(as_[r - 1:r + 2, c - 1:c + 2]) - 1.0) / 0.5).mean()
    return float(np.clip(0.5 + 0.1 * za + 0.05 * zs, 0, 1))


def points_layer(cells, crs="EPSG:28350"):
    from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsVectorLayer

    from janja_plugin.processing.qgis_compat import field

    layer = QgsVectorLayer(f"Point?crs={crs}", "samples", "memory")
    layer.dataProvider().addAttributes([field("sample_id", "string")])
    layer.updateFields()
    feats = []
    for i, (r, c) in enumerate(cells):
        f = QgsFeature(layer.fields())
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(GRID.xmin + (c + 0.5) * 250, GRID.ymax - (r + 0.5) * 250)))
        f.setAttributes([f"S{i}"])
        feats.append(f)
    layer.dataProvider().addFeatures(feats)
    return layer


def test_score_raster_percentile_classes_and_scored_samples(qgis_app, tmp_path):
    import processing
    import rasterio
    from qgis.core import NULL, QgsVectorLayer

    stack, model, au, as_ = make_inputs(tmp_path)
    samples = points_layer([(5, 7), (3, 3), (100, 100)])  # the last one lies outside the stack
    result = processing.run("janja:anomaly_score", {
        "STACK": stack, "MODEL": model, "POINTS": samples, "PERCENTILES": "50,90",
        "OUTPUT": str(tmp_path / "s.tif"), "CLASSES": str(tmp_path / "c.tif"),
        "OUTPUT_POINTS": str(tmp_path / "scored.gpkg"), "REPORT": str(tmp_path / "r.html")})
    with rasterio.open(result["OUTPUT"]) as src:
        s = src.read(1)
    with rasterio.open(result["CLASSES"]) as src:
        classes = src.read(1)
    assert s[5, 7] == pytest.approx(expected_score(au, as_, 5, 7), abs=1e-5)
    assert np.all((s >= 0) & (s <= 1))
    p50, p90 = np.percentile(s, [50, 90])
    assert set(np.unique(classes)) == {1, 2, 3}
    np.testing.assert_array_equal(classes, 1 + (s >= p50).astype(int) + (s >= p90).astype(int))
    scored = QgsVectorLayer(result["OUTPUT_POINTS"], "scored", "ogr")
    rows = {f["sample_id"]: (f["anomaly_score"], f["class"], f["class_name"]) for f in scored.getFeatures()}
    assert rows["S0"][0] == pytest.approx(float(s[5, 7]), abs=1e-6)
    assert rows["S1"][0] == pytest.approx(float(s[3, 3]), abs=1e-6) and rows["S1"][1] == classes[3, 3]
    assert rows["S1"][2] == ["< P50", "P50–P90", "≥ P90"][int(classes[3, 3]) - 1]
    assert rows["S2"][0] is None or rows["S2"][0] == NULL  # outside: no score
    assert (tmp_path / "s.qml").exists() and (tmp_path / "c.qml").exists()
    assert "P90" in (tmp_path / "s.qml").read_text()
    html = (tmp_path / "r.html").read_text()
    assert "Unsupervised anomaly score" in html and "<svg" in html
    del scored


def test_a_classifier_is_refused_with_a_pointer_to_prospectivity(qgis_app, tmp_path):
    stack, model, _, _ = make_inputs(tmp_path, kind="supervised_classifier")
    message = processing_error("janja:anomaly_score", {"STACK": stack, "MODEL": model,
                                                       "OUTPUT": str(tmp_path / "s.tif"), "CLASSES": None,
                                                       "OUTPUT_POINTS": None, "REPORT": None})
    assert "not an unsupervised anomaly model" in message and "janja:prospectivity" in message
    assert not (tmp_path / "s.tif").exists()


def test_bad_percentiles_are_refused(qgis_app, tmp_path):
    stack, model, _, _ = make_inputs(tmp_path)
    message = processing_error("janja:anomaly_score", {"STACK": stack, "MODEL": model, "PERCENTILES": "90,50",
                                                       "OUTPUT": str(tmp_path / "s.tif"), "CLASSES": None,
                                                       "OUTPUT_POINTS": None, "REPORT": None})
    assert "increasing" in message
    assert not (tmp_path / "s.tif").exists()


def test_cancel_writes_nothing(qgis_app, tmp_path):
    import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    stack, model, _, _ = make_inputs(tmp_path)
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run("janja:anomaly_score", {"STACK": stack, "MODEL": model, "OUTPUT": str(tmp_path / "s.tif"),
                                               "CLASSES": str(tmp_path / "c.tif"), "OUTPUT_POINTS": None,
                                               "REPORT": None}, feedback=feedback)
    assert not (tmp_path / "s.tif").exists() and not (tmp_path / "c.tif").exists()


@pytest.mark.skipif(not BUNDLED.is_file(), reason="the bundled anomaly model is not in models/")
def test_bundled_model_is_the_default_and_scores_a_wa_layout_stack(qgis_app, tmp_path):
    import processing
    import rasterio

    from janja_plugin.core.inference.model_card import load_model

    card = load_model(BUNDLED, threads=1).card
    assert card.model_kind == "unsupervised_anomaly"
    grid = Grid(300000.0, 6900000.0, card.cell_size, 40, 30)
    rng = np.random.default_rng(3)
    bands = [10 ** (e.mean + e.std * (0.3 * rng.normal(size=(30, 40)))) for e in card.elements]
    bands[0][12:16, 20:24] *= 30  # an Au high with nothing else: unlike the bulk
    stack = write_stack(tmp_path / "wa_like.tif", bands, card.element_names, grid, card.crs or "EPSG:32750")
    result = processing.run("janja:anomaly_score", {"STACK": str(stack), "THREADS": 1,
                                                    "OUTPUT": str(tmp_path / "s.tif"), "CLASSES": None,
                                                    "OUTPUT_POINTS": None, "REPORT": None})
    with rasterio.open(result["OUTPUT"]) as src:
        s = src.read(1)
    assert np.all((s >= 0) & (s <= 1))
    assert s[12:16, 20:24].mean() > np.median(s)


def test_streamed_outputs_equal_the_whole_grid_core_run(qgis_app, tmp_path, monkeypatch):
    """janja:anomaly_score writes tile by tile (streamed_anomaly; the whole-grid engine is made to fail inside the
    plugin): its files, breaks and scored samples equal the whole-grid core run (run_anomaly_score +
    write_rasters), here at stride 2 with a sample on the edge."""
    import importlib

    import processing
    import rasterio
    from qgis.core import QgsVectorLayer

    from janja_plugin.core.inference import anomaly_score as an

    stack, model, _, _ = make_inputs(tmp_path)
    cells = [(5, 7), (3, 3), (11, 15), (0, 8)]
    settings = an.AnomalySettings(stride=2, threads=1, percentiles=(60.0, 85.0))
    x = np.array([GRID.xmin + (c + 0.5) * 250 for _, c in cells])
    y = np.array([GRID.ymax - (r + 0.5) * 250 for r, _ in cells])
    whole = an.run_anomaly_score(stack, model, settings, sample_xy=(x, y))
    ref = an.write_rasters(whole, tmp_path / "ws.tif", tmp_path / "wc.tif")

    def whole_grid(*args, **kwargs):
        raise AssertionError("the whole grid was gathered in memory")
    monkeypatch.setattr(importlib.import_module("janja.janja_plugin.core.inference.windows"), "predict", whole_grid)
    result = processing.run("janja:anomaly_score", {
        "STACK": stack, "MODEL": model, "POINTS": points_layer(cells), "PERCENTILES": "60,85", "STRIDE": 2,
        "THREADS": 1, "OUTPUT": str(tmp_path / "s.tif"), "CLASSES": str(tmp_path / "c.tif"),
        "OUTPUT_POINTS": str(tmp_path / "scored.gpkg"), "REPORT": str(tmp_path / "r.html")})
    for key, name in (("OUTPUT", "score"), ("CLASSES", "classes")):
        with rasterio.open(result[key]) as got, rasterio.open(ref[name]) as want:
            assert np.array_equal(got.read(1), want.read(1)), name
            tags, want_tags = got.tags(), want.tags()
            tags.pop("janja_stride_seconds"), want_tags.pop("janja_stride_seconds")
            assert tags == want_tags and got.transform == want.transform and got.crs == want.crs
            assert got.descriptions == want.descriptions and got.nodata == want.nodata
    scored = QgsVectorLayer(result["OUTPUT_POINTS"], "scored", "ogr")
    rows = {f["sample_id"]: (f["anomaly_score"], f["class"]) for f in scored.getFeatures()}
    want_classes = an.values_at(whole.classes.astype(float), GRID, x, y)
    for i in range(len(cells)):
        assert rows[f"S{i}"] == (pytest.approx(whole.sample_scores[i], abs=0), int(want_classes[i]))
    assert f"{whole.breaks[1]:.4f}" in (tmp_path / "r.html").read_text()
    del scored


def test_a_run_too_large_for_memory_is_refused_with_a_sentence(qgis_app, tmp_path, monkeypatch):
    import importlib

    raster_grid = importlib.import_module("janja.janja_plugin.core.raster_grid")  # the plugin's own copy
    stack, model, _, _ = make_inputs(tmp_path)
    monkeypatch.setattr(raster_grid, "DEFAULT_MEMORY_LIMIT", 10 * 1024**2)
    message = processing_error("janja:anomaly_score", {"STACK": stack, "MODEL": model,
                                                       "OUTPUT": str(tmp_path / "s.tif"), "CLASSES": None,
                                                       "OUTPUT_POINTS": None, "REPORT": None})
    assert "would need about" in message and "memory even streamed tile by tile" in message
    assert not (tmp_path / "s.tif").exists()
