"""janja:spatial_anomaly in-process: the core map written whole and styled, the sample spacing measured from the
points, the benchmark in the report, refusals with a sentence and nothing left behind, warnings and cancel; and
janja:anomaly_score's report now opens by pointing here."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_spatial_context import NAMES, planted  # noqa: E402 - the shared planted-halo stack
from testdata import processing_error  # noqa: E402

from janja_plugin.core.anomaly import spatial_context as sc  # noqa: E402
from janja_plugin.core.raster_grid import Grid, write_stack  # noqa: E402

GRID = Grid(400000.0, 6500000.0, 250.0, 48, 48)
SPACING = 750.0  # three cells


def make_stack(path, bands=None, names=NAMES, grid=GRID, crs="EPSG:28350"):
    if bands is None:
        bands = planted(0, size=48, n_halo=3, radius=3.0)[0]
    write_stack(path, bands, names, grid, crs)
    return str(path), bands


def params(stack, tmp_path, **extra):
    p = {"STACK": stack, "TARGET": 1, "SPACING": SPACING, "OUTPUT": str(tmp_path / "score.tif"),
         "CLASSES": str(tmp_path / "classes.tif"), "REPORT": str(tmp_path / "report.html")}
    p.update(extra)
    return p


def points_layer(step=3, crs="EPSG:28350"):
    from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsVectorLayer

    layer = QgsVectorLayer(f"Point?crs={crs}", "samples", "memory")
    feats = []
    for r in range(1, GRID.nrows, step):
        for c in range(1, GRID.ncols, step):
            f = QgsFeature()
            f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(GRID.xmin + (c + 0.5) * GRID.cell,
                                                             GRID.ymax - (r + 0.5) * GRID.cell)))
            feats.append(f)
    layer.dataProvider().addFeatures(feats)
    return layer


def test_score_classes_style_and_report(qgis_app, tmp_path):
    import processing
    import rasterio
    from qgis.core import QgsRasterLayer

    stack, bands = make_stack(tmp_path / "stack.tif")
    result = processing.run("janja:spatial_anomaly", params(stack, tmp_path, PERCENTILES="75,90,98"))
    expected = sc.spatial_context_score([np.float32(b).astype(float) for b in bands], NAMES, GRID.cell, SPACING, 0)
    with rasterio.open(result["OUTPUT"]) as src:
        score = src.read(1, masked=True)
        assert src.descriptions == ("spatial_anomaly",) and src.tags()["janja_target"] == "Au_ppb"
    np.testing.assert_allclose(score.filled(np.nan), expected.score.astype(np.float32), rtol=1e-6)
    with rasterio.open(result["CLASSES"]) as src:
        classes = src.read(1)
    ref, _ = sc.percentile_classes(expected.score.astype(np.float32), (75, 90, 98))
    assert np.mean(classes == ref) > 0.99 and set(np.unique(classes)) == {1, 2, 3, 4}
    for path, labels in ((result["OUTPUT"], "≥ P98"), (result["CLASSES"], "P90–P98")):
        layer = QgsRasterLayer(path, "out", "gdal")
        layer.loadDefaultStyle()  # the sidecar .qml, as QGIS applies it on opening
        renderer = layer.renderer()
        assert renderer.type() == "singlebandpseudocolor"
        items = renderer.shader().rasterShaderFunction().colorRampItemList()
        assert [i.label for i in items][-1 if labels.startswith("≥") else 2] == labels
        del layer
    html = Path(result["REPORT"]).read_text()
    for text in ("0.880", "0.927", "0.637", "0.736", "still better", "Au_ppb", "<svg"):
        assert text in html, text


def test_report_names_the_map_once(qgis_app, tmp_path):
    """The title is the report's only heading that names the map (it was repeated as the first section heading),
    as in janja:krige's report: one <h1>, and no section heading that restates it."""
    import re

    import processing

    stack, _ = make_stack(tmp_path / "stack.tif")
    html = Path(processing.run("janja:spatial_anomaly", params(stack, tmp_path, CLASSES=None))["REPORT"]).read_text()
    headings = re.findall(r"<h(\d)>(.*?)</h\1>", html)
    naming = [h for h in headings if "anomaly map" in h[1].lower()]
    assert naming == [headings[0]] and headings[0][0] == "1", headings
    assert [h for h in headings if h[0] == "1"] == [headings[0]], headings

def test_sample_spacing_measured_from_the_points(qgis_app, tmp_path):
    import processing
    import rasterio

    stack, _ = make_stack(tmp_path / "stack.tif")
    measured = processing.run("janja:spatial_anomaly", params(stack, tmp_path, SPACING=0, POINTS=points_layer(),
                                                              CLASSES=None, REPORT=None))
    given = processing.run("janja:spatial_anomaly", params(stack, tmp_path, OUTPUT=str(tmp_path / "given.tif"),
                                                           CLASSES=None, REPORT=None))
    with rasterio.open(measured["OUTPUT"]) as a, rasterio.open(given["OUTPUT"]) as b:
        assert a.tags()["janja_sample_spacing_m"] == "750"
        np.testing.assert_array_equal(a.read(1), b.read(1))


def hostile(tmp_path):
    """case -> (stack path, extra parameters, what the refusal says)."""
    bands = planted(0, size=48, n_halo=3, radius=3.0)[0]
    allnan = [b.copy() for b in bands]
    allnan[1][:] = np.nan
    const = [b.copy() for b in bands]
    const[2][:] = 3.0
    geo = Grid(120.0, -30.0, 0.0025, 48, 48)
    return {
        "one band": (make_stack(tmp_path / "one.tif", bands[:1], NAMES[:1])[0], {}, "only one band (Au_ppb)"),
        "all nodata band": (make_stack(tmp_path / "nan.tif", allnan)[0], {}, "holds only nodata cells"),
        "constant band": (make_stack(tmp_path / "const.tif", const)[0], {}, "Band 'Sb_ppm' of the stack has the same"),
        "negative spacing": (make_stack(tmp_path / "s.tif")[0], {"SPACING": -250}, "must be a positive distance"),
        "no spacing, no points": (make_stack(tmp_path / "s0.tif")[0], {"SPACING": 0}, "Give the sample spacing in "
                                                                                      "metres"),
        "spacing under a cell": (make_stack(tmp_path / "s1.tif")[0], {"SPACING": 100}, "smaller than one cell"),
        "windows cover the map": (make_stack(tmp_path / "s2.tif")[0], {"SPACING": 20000}, "as wide as the whole"),
        "degrees": (make_stack(tmp_path / "geo.tif", grid=geo, crs="EPSG:4326")[0], {}, "is in degrees"),
        "target out of range": (make_stack(tmp_path / "t.tif")[0], {"TARGET": 9}, "target band 9 does not exist"),
    }


CASES = ["one band", "all nodata band", "constant band", "negative spacing", "no spacing, no points",
         "spacing under a cell", "windows cover the map", "degrees", "target out of range"]


@pytest.mark.parametrize("case", CASES)
def test_hostile_inputs_are_refused_and_nothing_is_written(qgis_app, tmp_path, case):
    stack, extra, expected = hostile(tmp_path)[case]
    out = tmp_path / "out"
    out.mkdir()
    message = processing_error("janja:spatial_anomaly", params(stack, out, **extra))
    assert expected in message, message
    assert "Traceback" not in message and "\n" not in message.strip()
    assert not list(out.iterdir()), list(out.iterdir())


def test_a_window_wider_than_half_the_map_is_a_warning_in_the_log_and_report(qgis_app, tmp_path):
    import processing
    from qgis.core import QgsProcessingFeedback

    class Warnings(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.warnings = []

        def pushWarning(self, text):  # noqa: N802 - QGIS's name
            self.warnings.append(text)
            super().pushWarning(text)

    stack, _ = make_stack(tmp_path / "stack.tif")
    feedback = Warnings()
    result = processing.run("janja:spatial_anomaly", params(stack, tmp_path, SPACING=1750), feedback=feedback)
    assert any("spans at least half of the stack" in w for w in feedback.warnings), feedback.warnings
    assert "spans at least half of the stack" in Path(result["REPORT"]).read_text()


def test_cancel_writes_nothing(qgis_app, tmp_path):
    import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    stack, _ = make_stack(tmp_path / "stack.tif")
    out = tmp_path / "out"
    out.mkdir()
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run("janja:spatial_anomaly", params(stack, out), feedback=feedback)
    assert not list(out.iterdir())


def test_anomaly_score_report_opens_with_the_benchmark_warning_and_points_here(qgis_app, tmp_path):
    import processing
    from test_anomaly_score import make_inputs

    stack, model, _, _ = make_inputs(tmp_path)
    result = processing.run("janja:anomaly_score", {"STACK": stack, "MODEL": model,
                                                    "OUTPUT": str(tmp_path / "s.tif"), "CLASSES": None,
                                                    "OUTPUT_POINTS": None, "REPORT": str(tmp_path / "r.html")})
    html = Path(result["REPORT"]).read_text()
    first = html.index("<p")
    warning = html[first:html.index("</p>", first)]
    assert 'class="warning"' in warning and "janja:spatial_anomaly" in warning
    for text in ("0.637", "0.880", "0.927"):
        assert text in warning, text
