"""janja:prospectivity and janja:anomaly_score at stride > 1 state the measured interpolation error: in the
log, near the top of the report, and in the GeoTIFF metadata (janja_stride_*); stride 1 says every cell."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_anomaly_score import make_inputs as anomaly_inputs  # noqa: E402
from test_censoring import Log  # noqa: E402
from test_model_card import build_model, card_dict  # noqa: E402

from janja_plugin.core.raster_grid import Grid, write_stack  # noqa: E402

KEYS = ("janja_stride", "janja_stride_mae", "janja_stride_p95", "janja_stride_max", "janja_stride_sample")


def make_inputs(tmp_path):
    """The small stack and hand-weighted classifier of tests/processing/test_prospectivity.py."""
    grid = Grid(400000.0, 6500000.0, 250.0, 16, 12)
    yy, xx = np.mgrid[0:grid.nrows, 0:grid.ncols]
    au = 2 + 60 * np.exp(-((yy - 3) ** 2 + (xx - 3) ** 2) / 4) + 25 * np.exp(-((yy - 9) ** 2 + (xx - 12) ** 2) / 3)
    as_ = 8 + 0.5 * xx + 0.2 * yy
    stack = write_stack(tmp_path / "stack.tif", [au, as_], ["Au_ppb", "As_ppm"], grid, "EPSG:28350")
    card = card_dict(elements=[("Au_ppb", "ppb", "log10", 0.5, 0.4), ("As_ppm", "ppm", "log10", 1.0, 0.5)],
                     channels=2, window=3, size=6)
    build_model(tmp_path / "m.onnx", card, weights=(np.array([[0, 0], [3.0, 1.0]], np.float32),
                                                      np.array([0, -1.5], np.float32)), pool=True)
    return str(stack), str(tmp_path / "m.onnx"), au, as_


def metadata(path):
    from osgeo import gdal

    ds = gdal.Open(str(path))
    try:
        return ds.GetMetadata()
    finally:
        ds = None


def run(alg, params):
    import processing

    log = Log()
    result = processing.run(alg, params, feedback=log)
    return result, log.text()


def outputs(tmp_path):
    return {"PROBABILITY": str(tmp_path / "p.tif"), "CLASSES": str(tmp_path / "c.tif"),
            "TARGETS": str(tmp_path / "t.gpkg"), "REPORT": str(tmp_path / "r.html")}


def test_prospectivity_at_stride_2_states_its_error_everywhere(qgis_app, tmp_path):
    stack, model, _, _ = make_inputs(tmp_path)
    _, log = run("janja:prospectivity", {"STACK": stack, "MODEL": model, "STRIDE": 2, **outputs(tmp_path)})
    tags = metadata(tmp_path / "p.tif")
    assert all(k in tags for k in KEYS) and tags["janja_stride"] == "2"
    assert metadata(tmp_path / "c.tif")["janja_stride_p95"] == tags["janja_stride_p95"]
    n = int(tags["janja_stride_sample"])
    assert n == int(tags["janja_stride_interpolated"]) > 0  # a small map: every interpolated cell checked
    assert 0 <= float(tags["janja_stride_mae"]) <= float(tags["janja_stride_p95"]) <= float(tags["janja_stride_max"])
    assert f"Stride 2: measured on {n:,} of the {n:,} interpolated cells" in log
    html = (tmp_path / "r.html").read_text()
    assert f"Stride 2: measured on {n:,} of the" in html
    assert html.index("Stride 2: measured") < html.index("Probability histogram")
    assert html.index("Stride 2: measured") < html.index("Class</th>")


def test_a_checkerboard_map_warns_to_lower_the_stride(qgis_app, tmp_path):
    grid = Grid(400000.0, 6500000.0, 250.0, 21, 21)
    r, c = np.indices((21, 21))
    au = 10 ** (0.5 + 0.4 * np.where((r + c) % 2 == 0, 1.0, -1.0))
    stack = write_stack(tmp_path / "stack.tif", [au], ["Au_ppb"], grid, "EPSG:28350")
    card = card_dict(elements=(("Au_ppb", "ppb", "log10", 0.5, 0.4),), channels=1, size=1, window=1)
    build_model(tmp_path / "m.onnx", card, weights=(np.array([[0.0], [3.0]], np.float32), np.zeros(2, np.float32)),
                pool=True)
    _, log = run("janja:prospectivity", {"STACK": str(stack), "MODEL": str(tmp_path / "m.onnx"), "STRIDE": 2,
                                         "EXTRAPOLATE": True, **outputs(tmp_path)})
    assert "WARNING Stride 2 misplaces this map" in log and "Run at stride 1 (every cell classified)" in log
    assert float(metadata(tmp_path / "p.tif")["janja_stride_p95"]) > 0.5
    assert 'class="warning">Stride 2: measured' in (tmp_path / "r.html").read_text()


def test_stride_1_says_every_cell_classified(qgis_app, tmp_path):
    stack, model, _, _ = make_inputs(tmp_path)
    _, log = run("janja:prospectivity", {"STACK": stack, "MODEL": model, "STRIDE": 1, **outputs(tmp_path)})
    tags = metadata(tmp_path / "p.tif")
    assert tags["janja_stride"] == "1" and tags["janja_stride_check"] == "every cell classified"
    assert "janja_stride_mae" not in tags
    assert "Stride 1: every cell classified" in log and "misplaces" not in log
    assert "Stride 1: every cell classified" in (tmp_path / "r.html").read_text()


def test_anomaly_score_at_stride_2_states_its_error(qgis_app, tmp_path):
    stack, model, _, _ = anomaly_inputs(tmp_path)
    _, log = run("janja:anomaly_score", {"STACK": stack, "MODEL": model, "STRIDE": 2,
                                         "OUTPUT": str(tmp_path / "s.tif"), "CLASSES": str(tmp_path / "c.tif"),
                                         "REPORT": str(tmp_path / "r.html")})
    tags = metadata(tmp_path / "s.tif")
    assert all(k in tags for k in KEYS) and tags["janja_stride"] == "2"
    assert "janja_stride_class_changed" in tags  # the percentile classes
    assert "Stride 2: measured on" in log
    html = (tmp_path / "r.html").read_text()
    assert html.index("Stride 2: measured on") < html.index("Anomaly score histogram")


def test_demo_report_states_the_maps_stride_error_before_the_picture(qgis_app, tmp_path):
    from testdata import REPO

    sys.path.insert(0, str(REPO / "tools"))
    from demo_project import PICTURE, REPORT, WORKFLOW_OUTPUTS, stride_error_of, write_report

    stack, model, _, _ = make_inputs(tmp_path)
    prob = tmp_path / WORKFLOW_OUTPUTS["prospectivity:probability"]
    run("janja:prospectivity", {"STACK": stack, "MODEL": model, "STRIDE": 2, "PROBABILITY": str(prob)})
    measured = stride_error_of(prob)
    assert measured.stride == 2 and measured.n_sample > 0
    (tmp_path / PICTURE).write_bytes(b"\x89PNG not really")
    write_report(tmp_path, model, 250.0, 2)
    html = (tmp_path / REPORT).read_text()
    assert html.index(f"Stride 2: measured on {measured.n_sample:,}") < html.index('alt="workflow maps"')
