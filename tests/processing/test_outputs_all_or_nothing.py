"""Issue 13 item 9 for every algorithm: a destination that cannot be written is refused with a sentence
before the work, and a failure while writing leaves none of the other outputs behind."""

import importlib
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from hostile_data import meuse_like, survey, write_points
from testdata import processing_error

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from test_model_card import build_model, card_dict  # noqa: E402 - the shared test-model builder

from janja_plugin.core.raster_grid import Grid, write_stack  # noqa: E402

GRID = Grid(400000.0, 6500000.0, 250.0, 16, 12)
ELEMENTS = [("Au_ppb", "ppb", "log10", 0.5, 0.4), ("As_ppm", "ppm", "log10", 1.0, 0.5)]


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "block").write_text("a file where a folder is expected")
    return folder


def left(folder):
    return sorted(p.name for p in folder.rglob("*"))


def stack_and_model(tmp_path, kind):
    yy, xx = np.mgrid[0:GRID.nrows, 0:GRID.ncols]
    au = 2 + 60 * np.exp(-((yy - 3) ** 2 + (xx - 3) ** 2) / 4)
    as_ = 8 + 0.5 * xx + 0.2 * yy
    stack = write_stack(tmp_path / "stack.tif", [au, as_], ["Au_ppb", "As_ppm"], GRID, "EPSG:28350")
    if kind == "score":
        card = card_dict(elements=ELEMENTS, channels=2, window=3, size=3, class_names=("anomaly",),
                         output_kind="score", model_kind="unsupervised_anomaly")
        build_model(tmp_path / "m.onnx", card, weights=(np.array([[0.1, 0.05]], np.float32),
                                                          np.array([0.5], np.float32)), pool=True, softmax=False)
    else:
        card = card_dict(elements=ELEMENTS, channels=2, window=3, size=6)
        build_model(tmp_path / "m.onnx", card, weights=(np.array([[0, 0], [3.0, 1.0]], np.float32),
                                                          np.array([0, -1.5], np.float32)), pool=True)
    return str(stack), str(tmp_path / "m.onnx")


def raster(tmp_path):
    rng = np.random.default_rng(3)
    values = 10 ** rng.normal(1, 0.3, (40, 50))
    grid = Grid(500_000.0, 6_300_000.0, 1000.0, 50, 40)
    return str(write_stack(tmp_path / "au.tif", [values], ["Au_ppb"], grid, "EPSG:32750"))


def cases(tmp_path, out):
    """(algorithm, parameters whose REPORT lies under a file) for every janja algorithm."""
    samples = meuse_like(tmp_path)
    x, y, zn = survey()
    deposits = write_points(tmp_path / "deposits.gpkg", 28992, x[::10], y[::10], {"id": np.arange(6)})
    report = str(out / "block" / "r.html")
    prosp_stack, prosp_model = stack_and_model(tmp_path / "p", "class") if (tmp_path / "p").mkdir() is None else None
    score_stack, score_model = stack_and_model(tmp_path / "s", "score") if (tmp_path / "s").mkdir() is None else None
    return {
        "thresholds": {"POINTS": samples, "FIELD": "zn", "METHOD": 1, "K": "1,2,3",
                       "OUTPUT_POINTS": str(out / "classes.gpkg"), "REPORT": report},
        "fractal": {"RASTER": raster(tmp_path), "BAND": 1, "N_SEGMENTS": 0, "OUTPUT_RASTER": str(out / "ca.tif"),
                    "REPORT": report},
        "robust_mahalanobis": {"POINTS": samples, "FIELDS": ["zn", "cu", "pb"], "OUTPUT_POINTS": str(out / "md.gpkg"),
                               "REPORT": report},
        "evaluate": {"SCORE_POINTS": samples, "SCORE_FIELD": "zn", "DEPOSITS": deposits, "MIN_DISTANCE": 300.0,
                     "TABLE": str(out / "curves.csv"), "REPORT": report},
        "prospectivity": {"STACK": prosp_stack, "MODEL": prosp_model, "PROBABILITY": str(out / "p.tif"),
                          "CLASSES": str(out / "c.tif"), "TARGETS": str(out / "targets.gpkg"), "REPORT": report},
        "anomaly_score": {"STACK": score_stack, "MODEL": score_model, "OUTPUT": str(out / "s.tif"),
                          "CLASSES": str(out / "c.tif"), "OUTPUT_POINTS": None, "REPORT": report},
        "spatial_anomaly": {"STACK": score_stack, "TARGET": 1, "SPACING": 500.0, "OUTPUT": str(out / "sa.tif"),
                            "CLASSES": str(out / "sac.tif"), "REPORT": report},
    }


ALGORITHMS = ["thresholds", "fractal", "robust_mahalanobis", "evaluate", "prospectivity", "anomaly_score",
              "spatial_anomaly"]


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_report_under_a_file_is_refused_before_any_output(qgis_app, tmp_path, out, alg):
    message = processing_error(f"janja:{alg}", cases(tmp_path, out)[alg])
    assert "REPORT" in message and "is a file, not a folder" in message
    assert left(out) == ["block"]


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_report_failing_while_written_leaves_no_other_output(qgis_app, tmp_path, out, alg, monkeypatch):
    """The report write fails after every other output was written: those must go too."""
    report_module = importlib.import_module("janja.janja_plugin.core.reporting.report")

    def no_space(self, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(report_module.HtmlReport, "write", no_space)
    params = cases(tmp_path, out)[alg]
    params["REPORT"] = str(out / "r.html")
    message = processing_error(f"janja:{alg}", params)
    assert "No space left on device" in message and "Nothing was written" in message
    assert left(out) == ["block"]


def test_polygon_layer_as_sample_points_is_refused(qgis_app, tmp_path, out):
    x, y, zn = survey()
    polygons = write_points(tmp_path / "poly.gpkg", 28992, x, y, {"zn": zn}, geometry="polygon")
    message = processing_error("janja:thresholds", {"POINTS": polygons, "FIELD": "zn",
                                                    "OUTPUT_POINTS": str(out / "c.gpkg"), "REPORT": None})
    assert "holds polygons, not points" in message
    assert left(out) == ["block"]


def test_threshold_outputs_are_readable_by_colleagues(qgis_app, tmp_path, out):
    import processing

    old = os.umask(0o022)
    try:
        processing.run("janja:fractal", {"RASTER": raster(tmp_path), "BAND": 1, "N_SEGMENTS": 0,
                                         "OUTPUT_RASTER": str(out / "ca.tif"), "REPORT": str(out / "ca.html")})
    finally:
        os.umask(old)
    for name in ("ca.tif", "ca.html"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name
