"""The janja:thresholds, janja:fractal and janja:robust_mahalanobis reports name their map once, in the title (they
repeated it as the first section heading: "Anomaly thresholds: X" then "Anomaly thresholds — X"), as janja:krige's
and janja:spatial_anomaly's reports do."""

import re
from pathlib import Path

import pytest
from testdata import SAMPLE_DATA

SAMPLES = f"{SAMPLE_DATA / 'wa_sample_data.gpkg'}|layername=samples"

CASES = {
    # algorithm: (parameters, words only a heading that names the map has, what the title must say)
    "janja:thresholds": ({"POINTS": SAMPLES, "FIELD": "Au_ppm", "METHOD": 1, "K": "1,2"},
                         "anomaly thresholds", "Anomaly thresholds — Au (ppm)"),
    "janja:fractal": ({"POINTS": SAMPLES, "FIELD": "Au_ppm", "N_SEGMENTS": 0},
                      "(c-n)", "Fractal thresholds, concentration–number (C-N) — Au (ppm)"),
    "janja:robust_mahalanobis": ({"POINTS": SAMPLES, "FIELDS": ["Au_ppm", "Cu_ppm", "Pb_ppm", "As_ppm"]},
                                 "robust multivariate", "Robust multivariate anomaly score"),
}


@pytest.mark.parametrize("algorithm", sorted(CASES))
def test_report_names_the_map_once(qgis_app, tmp_path, algorithm):
    import processing

    params, words, title = CASES[algorithm]
    report = processing.run(algorithm, dict(params, OUTPUT_POINTS=None,
                                            REPORT=str(tmp_path / "r.html")))["REPORT"]
    html = Path(report).read_text(encoding="utf-8")
    headings = re.findall(r"<h(\d)>(.*?)</h\1>", html)
    assert headings and headings[0][0] == "1" and headings[0][1].startswith(title), headings
    assert [h for h in headings if h[0] == "1"] == [headings[0]], headings
    assert [h for h in headings if words in h[1].lower()] == [headings[0]], headings
