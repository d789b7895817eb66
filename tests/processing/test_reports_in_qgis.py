"""Reports from the algorithms: units on the numbers, coordinates as whole metres with the CRS named,
no scientific notation (issue 14), and evaluation files of kilobytes on a large raster."""

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np


def _sibling(name):
    """A module of this folder by path: tests/core has a test_prospectivity too."""
    spec = importlib.util.spec_from_file_location(f"processing_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
krige_params = _sibling("test_krige").krige_params
make_inputs = _sibling("test_prospectivity").make_inputs

from janja_plugin.core.raster_grid import Grid, write_stack  # noqa: E402

SCIENTIFIC = re.compile(r"\d[eE][+-]\d")


def visible_text(html):
    """The report's text and tick labels (SVG coordinates and styles are not read by anyone)."""
    return re.sub(r"<[^>]+>", " ", html)


def test_prospectivity_report_names_the_crs_and_prints_whole_metres(qgis_app, tmp_path):
    import processing

    stack, model, _, _ = make_inputs(tmp_path)
    processing.run("janja:prospectivity", {
        "STACK": stack, "MODEL": model, "HIGH": 0.9, "MODERATE": 0.5, "PROBABILITY": str(tmp_path / "p.tif"),
        "CLASSES": None, "TARGETS": None, "REPORT": str(tmp_path / "r.html")})
    text = visible_text((tmp_path / "r.html").read_text())
    assert "EPSG:28350 (GDA94 / MGA zone 50)" in text
    assert re.search(r"Area I .*? 40\d,\d{3} E / 6,49\d,\d{3} N", text), text[-1500:]
    assert "km²" in text and not SCIENTIFIC.search(text)


def test_krige_report_gives_distances_in_m_or_km_and_no_scientific_notation(qgis_app, tmp_path):
    import processing

    processing.run("janja:krige", krige_params(tmp_path, FIELDS=["zinc"], LOG_OUTPUT=None, CV_TABLE=None))
    text = visible_text((tmp_path / "report.html").read_text())
    assert re.search(r"\b\d{3} m\b", text)  # the Meuse range, about 900 m
    assert not SCIENTIFIC.search(text), SCIENTIFIC.findall(text)[:5]


def test_evaluation_of_a_large_raster_writes_kilobytes(qgis_app, tmp_path):
    import processing
    from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsVectorLayer

    grid = Grid(400000.0, 6500000.0, 100.0, 500, 400)
    rng = np.random.default_rng(3)
    score = rng.random((400, 500))
    raster = write_stack(tmp_path / "score.tif", [score], ["probability"], grid, "EPSG:28350")
    deposits = QgsVectorLayer("Point?crs=EPSG:28350", "deposits", "memory")
    features = []
    for x, y in zip(rng.uniform(400000, 450000, 25), rng.uniform(6460000, 6500000, 25)):
        f = QgsFeature()
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(x, y)))
        features.append(f)
    deposits.dataProvider().addFeatures(features)
    processing.run("janja:evaluate", {"SCORE_RASTER": str(raster), "BAND": 1, "DEPOSITS": deposits,
                                      "TABLE": str(tmp_path / "e.csv"), "REPORT": str(tmp_path / "e.html")})
    assert (tmp_path / "e.csv").stat().st_size < 50_000  # was one row per cell: 200,000 rows, 8 MB
    assert (tmp_path / "e.html").stat().st_size < 60_000
    rows = [line.split(",") for line in (tmp_path / "e.csv").read_text().splitlines()[1:]]
    area = np.array([float(r[2]) for r in rows if r[0] == "success_rate"])
    assert area.size > 100 and np.max(np.diff(area)) <= 0.0051  # still readable every 0.5 % of the area
    del deposits
