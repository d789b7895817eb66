"""Censored values through janja:thresholds, janja:fractal and janja:krige in-process: non-detects
are background, flag fields and stated limits are honoured, refusals are sentences, nothing is
written when the run is refused."""

import re
from pathlib import Path

import numpy as np
import pytest
from testdata import processing_error

GTK = Path(__file__).resolve().parents[1] / "data" / "gtk_till_clb" / "IOCG_CLB_Till_Geochem_reg_511p.gpkg"
GTK_LAYER = f"{GTK}|layername=iocg_clb_till_geochem_reg_511p"


def write_points(path, columns, crs=3067, seed=0):
    """A GeoPackage point layer whose columns are all text, as laboratories deliver them."""
    from osgeo import ogr, osr

    n = len(next(iter(columns.values())))
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(350_000, 410_000, n), rng.uniform(7_460_000, 7_530_000, n)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(crs)
    lyr = ds.CreateLayer("samples", srs, ogr.wkbPoint)
    for name in columns:
        lyr.CreateField(ogr.FieldDefn(name, ogr.OFTString))
    for i in range(n):
        f = ogr.Feature(lyr.GetLayerDefn())
        for name, col in columns.items():
            if col[i] is not None:
                f.SetField(name, str(col[i]))
        f.SetGeometry(ogr.CreateGeometryFromWkt(f"POINT ({x[i]} {y[i]})"))
        lyr.CreateFeature(f)
    ds = None
    return f"{path}|layername=samples"


def stream_au(n_below=699, n_measured=10, seed=0):
    rng = np.random.default_rng(seed)
    return ["<0.1"] * n_below + [f"{v:.3f}" for v in 10 ** rng.uniform(-1, 0.7, n_measured)]


class Log:
    """A feedback that keeps what the algorithm said."""

    def __new__(cls):
        from qgis.core import QgsProcessingFeedback

        class _Log(QgsProcessingFeedback):
            def __init__(self):
                super().__init__()
                self.lines = []

            def pushInfo(self, text):
                self.lines.append(text)

            def pushWarning(self, text):
                self.lines.append("WARNING " + text)

            def text(self):
                return "\n".join(self.lines)

        return _Log()


def classes_of(path, field="class"):
    from qgis.core import QgsVectorLayer

    out = QgsVectorLayer(path, "c", "ogr")
    got = [(f["raw"] if "raw" in f.fields().names() else None, f[field]) for f in out.getFeatures()]
    del out
    return [(raw, None if c is None or getattr(c, "isNull", lambda: False)() else c) for raw, c in got]


def run(alg, params, feedback=None):
    import processing

    return processing.run(alg, params, feedback=feedback)


# --- janja:thresholds ------------------------------------------------------------------------------

@pytest.mark.parametrize("method", [0, 1, 2])
def test_thresholds_never_call_non_detects_anomalous(qgis_app, tmp_path, method):
    src = write_points(tmp_path / "au.gpkg", {"raw": stream_au()})
    log = Log()
    result = run("janja:thresholds", {"POINTS": src, "FIELD": "raw", "METHOD": method,
                                      "OUTPUT_POINTS": str(tmp_path / "c.gpkg"),
                                      "REPORT": str(tmp_path / "r.html")}, log)
    got = classes_of(result["OUTPUT_POINTS"])
    assert len(got) == 709 and all(c == 0 for raw, c in got if raw == "<0.1")
    assert "699 of the 709 samples (98.6 %) are below detection" in log.text()
    assert "every below-detection sample is background (class 0)" in (tmp_path / "r.html").read_text()


def test_thresholds_percentiles_among_non_detects_are_refused(qgis_app, tmp_path):
    src = write_points(tmp_path / "au.gpkg", {"raw": stream_au()})
    message = processing_error("janja:thresholds", {"POINTS": src, "FIELD": "raw", "METHOD": 3,
                                                    "OUTPUT_POINTS": str(tmp_path / "c.gpkg"), "REPORT": None})
    assert "P75 falls among the below-detection samples (699 of 709" in message
    assert not (tmp_path / "c.gpkg").exists()


def test_thresholds_refuse_too_few_detections(qgis_app, tmp_path):
    src = write_points(tmp_path / "au.gpkg", {"raw": stream_au(n_measured=9)})
    message = processing_error("janja:thresholds", {"POINTS": src, "FIELD": "raw", "METHOD": 1,
                                                    "OUTPUT_POINTS": str(tmp_path / "c.gpkg"), "REPORT": None})
    assert "only 9 sample(s) are measured and 699 are below detection" in message
    assert not (tmp_path / "c.gpkg").exists()


def test_thresholds_honour_the_flag_field_of_a_real_till_survey(qgis_app, tmp_path):
    log = Log()
    result = run("janja:thresholds", {"POINTS": GTK_LAYER, "FIELD": "Zr_ppm_511", "FLAG_FIELD": "Zr_511P_T",
                                      "METHOD": 1, "OUTPUT_POINTS": str(tmp_path / "c.gpkg"), "REPORT": None}, log)
    from qgis.core import QgsVectorLayer

    out = QgsVectorLayer(result["OUTPUT_POINTS"], "c", "ogr")
    flagged = [f["class"] for f in out.getFeatures() if f["Zr_511P_T"] == "<"]
    del out
    assert len(flagged) == 166 and set(flagged) == {0}
    assert "182 of the 1112 samples" in log.text()


def test_thresholds_refuse_the_element_field_as_its_own_flag(qgis_app, tmp_path):
    message = processing_error("janja:thresholds", {"POINTS": GTK_LAYER, "FIELD": "Zr_ppm_511",
                                                    "FLAG_FIELD": "Zr_ppm_511", "METHOD": 1, "REPORT": None})
    assert "flag field and the element field are both 'Zr_ppm_511'" in message


def test_thresholds_stated_limit_is_used_for_zeros(qgis_app, tmp_path):
    log = Log()
    run("janja:thresholds", {"POINTS": GTK_LAYER, "FIELD": "Zr_ppm_511", "FLAG_FIELD": "Zr_511P_T",
                             "DETECTION_LIMIT": 1.0, "METHOD": 1, "REPORT": None}, log)
    assert "Zr_ppm_511: measured 930, below_dl 166, zero 16" in log.text()


def test_thresholds_above_detection_strings_are_the_top_class(qgis_app, tmp_path):
    raw = [f"{v:.2f}" for v in np.geomspace(1, 30, 60)] + [">1000", "<0.5", "<0.5"]
    src = write_points(tmp_path / "au.gpkg", {"raw": raw})
    result = run("janja:thresholds", {"POINTS": src, "FIELD": "raw", "METHOD": 1,
                                      "OUTPUT_POINTS": str(tmp_path / "c.gpkg"), "REPORT": None})
    got = dict(classes_of(result["OUTPUT_POINTS"]))
    assert got[">1000"] == 3 and got["<0.5"] == 0


# --- janja:fractal ---------------------------------------------------------------------------------

def pareto_au(n_below=600, n_measured=300, seed=0):
    rng = np.random.default_rng(seed)
    return ["<0.1"] * n_below + [f"{0.1 * (1 - u) ** (-1 / 1.2):.4f}" for u in rng.random(n_measured)]


def test_fractal_cn_never_calls_non_detects_anomalous(qgis_app, tmp_path):
    src = write_points(tmp_path / "au.gpkg", {"raw": pareto_au()})
    log = Log()
    result = run("janja:fractal", {"POINTS": src, "FIELD": "raw", "N_SEGMENTS": 2,
                                   "OUTPUT_POINTS": str(tmp_path / "c.gpkg"), "REPORT": str(tmp_path / "r.html")},
                 log)
    got = classes_of(result["OUTPUT_POINTS"])
    assert all(c == 0 for raw, c in got if raw == "<0.1") and any(c > 0 for _, c in got)
    assert "600 below-detection sample(s) are left out of the curve" in log.text()
    assert "classed as background" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("raw, message", [
    (["<0.1"] * 200 + ["0.5", "0.7", "1.1"], "only 3 sample(s) are measured and 200 are below detection"),
    (["<0.5", "<1"] * 50, "only 0 sample(s) are measured"),
    (["0", "-0.5"] * 50 + ["2.0"] * 20, "All 20 values are equal"),
])
def test_fractal_refusals_are_sentences_and_write_nothing(qgis_app, tmp_path, raw, message):
    src = write_points(tmp_path / "au.gpkg", {"raw": raw})
    got = processing_error("janja:fractal", {"POINTS": src, "FIELD": "raw", "N_SEGMENTS": 0,
                                             "OUTPUT_POINTS": str(tmp_path / "c.gpkg"),
                                             "REPORT": str(tmp_path / "r.html")})
    assert message in got
    assert not (tmp_path / "c.gpkg").exists() and not (tmp_path / "r.html").exists()


def test_fractal_honours_the_flag_field_of_a_real_till_survey(qgis_app, tmp_path):
    result = run("janja:fractal", {"POINTS": GTK_LAYER, "FIELD": "Zr_ppm_511", "FLAG_FIELD": "Zr_511P_T",
                                   "N_SEGMENTS": 2, "OUTPUT_POINTS": str(tmp_path / "c.gpkg"), "REPORT": None})
    from qgis.core import QgsVectorLayer

    out = QgsVectorLayer(result["OUTPUT_POINTS"], "c", "ogr")
    rows = [(f["Zr_511P_T"], f["Zr_ppm_511"], f["class"]) for f in out.getFeatures()]
    del out
    assert {c for flag, v, c in rows if flag == "<" or v == 0} == {0}


def test_fractal_duplicates_with_different_values_keep_their_own_class(qgis_app, tmp_path):
    raw = pareto_au(n_below=50, n_measured=200, seed=2)
    raw[-1], raw[-2] = "0.15", "40"
    src = write_points(tmp_path / "au.gpkg", {"raw": raw})
    result = run("janja:fractal", {"POINTS": src, "FIELD": "raw", "N_SEGMENTS": 2,
                                   "OUTPUT_POINTS": str(tmp_path / "c.gpkg"), "REPORT": None})
    got = dict(classes_of(result["OUTPUT_POINTS"]))
    assert got["40"] > got["0.15"]


# --- janja:krige -----------------------------------------------------------------------------------

def krige_gtk(tmp_path, log=None, **extra):
    params = {"INPUT": GTK_LAYER, "FIELDS": ["Zr_ppm_511"], "TRANSFORM": 0, "CELL_SIZE": 2000.0,
              "NEIGHBOURS": 16, "OUTPUT": str(tmp_path / "zr.tif"), "VARIANCE": str(tmp_path / "zr_var.tif"),
              "CV_TABLE": None, "REPORT": str(tmp_path / "r.html")}
    params.update(extra)
    return run("janja:krige", params, log)


def test_krige_warns_when_zeros_inflate_the_lognormal_map(qgis_app, tmp_path):
    log = Log()
    krige_gtk(tmp_path, log, FLAG_FIELDS="{element}_511P_T")
    text = log.text()
    found = re.search(r"WARNING Element 'Zr_ppm_511': \d+ of \d+ cells \(([\d.]+) %\) are above the largest "
                      r"sample value \(48.6\)", text)
    assert found and float(found.group(1)) > 50
    assert "after the lognormal back-transform" in (tmp_path / "r.html").read_text()


def test_krige_with_the_stated_limit_stays_in_range(qgis_app, tmp_path):
    import rasterio

    log = Log()
    krige_gtk(tmp_path, log, FLAG_FIELDS="Zr_ppm_511=Zr_511P_T", DETECTION_LIMITS="Zr_ppm_511=1")
    with rasterio.open(tmp_path / "zr.tif") as src:
        zr = src.read(1, masked=True).compressed()
    assert "back-transform" not in log.text() and "below_dl 166" in log.text()
    assert np.mean(zr > 48.6) < 0.01 and np.median(zr) < 30


@pytest.mark.parametrize("extra, message", [
    ({"FLAG_FIELDS": "{element}_flag"}, "no flag field for Zr_ppm_511 -> Zr_flag"),
    ({"DETECTION_LIMITS": "Zr_ppm_511=-1"}, "stated detection limit of 'Zr_ppm_511' must be a positive number"),
    ({"DETECTION_LIMITS": "Th_ppm_511=1"}, "'Th_ppm_511' in the detection limits is not one of the element"),
])
def test_krige_censoring_parameters_are_checked(qgis_app, tmp_path, extra, message):
    params = {"INPUT": GTK_LAYER, "FIELDS": ["Zr_ppm_511"], "CELL_SIZE": 2000.0, "NEIGHBOURS": 16,
              "OUTPUT": str(tmp_path / "zr.tif"), "VARIANCE": str(tmp_path / "v.tif"), "CV_TABLE": None,
              "REPORT": None}
    params.update(extra)
    assert message in processing_error("janja:krige", params)
    assert not (tmp_path / "zr.tif").exists()


def test_krige_refuses_a_field_with_nothing_measured(qgis_app, tmp_path):
    src = write_points(tmp_path / "s.gpkg", {"Au": ["<0.5", "<1"] * 30, "Cu": [str(v) for v in range(1, 61)]})
    message = processing_error("janja:krige", {
        "INPUT": src, "FIELDS": ["Cu", "Au"], "CELL_SIZE": 5000.0, "OUTPUT": str(tmp_path / "o.tif"),
        "VARIANCE": str(tmp_path / "v.tif"), "CV_TABLE": None, "REPORT": None})
    assert "Element 'Au' has no measured value: 60 sample(s) are below detection (limits 0.5, 1)" in message
    assert not (tmp_path / "o.tif").exists()


def signed_field(n=80, seed=5):
    rng = np.random.default_rng(seed)
    return [f"{v:.4f}" for v in rng.normal(0, 1, n)]


def test_krige_keeps_signed_values_without_the_log_transform(qgis_app, tmp_path):
    import rasterio

    src = write_points(tmp_path / "s.gpkg", {"clr_Cu": signed_field()}, seed=5)
    log = Log()
    run("janja:krige", {"INPUT": src, "FIELDS": ["clr_Cu"], "TRANSFORM": 1, "CELL_SIZE": 5000.0,
                        "MODEL": 1, "OUTPUT": str(tmp_path / "o.tif"), "VARIANCE": str(tmp_path / "v.tif"),
                        "CV_TABLE": None, "REPORT": None}, log)
    assert "clr_Cu: 80 locations (measured 80)" in log.text()
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert ds.read(1, masked=True).min() < 0


def test_krige_reads_negative_codes_when_told(qgis_app, tmp_path):
    src = write_points(tmp_path / "s.gpkg", {"clr_Cu": signed_field()}, seed=5)
    log = Log()
    run("janja:krige", {"INPUT": src, "FIELDS": ["clr_Cu"], "TRANSFORM": 1, "NEGATIVE_CODES": True,
                        "CELL_SIZE": 5000.0, "MODEL": 1, "OUTPUT": str(tmp_path / "o.tif"),
                        "VARIANCE": str(tmp_path / "v.tif"), "CV_TABLE": None, "REPORT": None}, log)
    n_negative = sum(float(v) < 0 for v in signed_field())
    assert f"below_dl {n_negative}" in log.text()


def test_krige_warns_on_a_mostly_censored_field(qgis_app, tmp_path):
    rng = np.random.default_rng(7)
    raw = ["<0.1"] * 85 + [f"{v:.3f}" for v in 10 ** rng.uniform(-0.5, 1, 15)]
    src = write_points(tmp_path / "s.gpkg", {"Au": raw}, seed=7)
    log = Log()
    run("janja:krige", {"INPUT": src, "FIELDS": ["Au"], "CELL_SIZE": 5000.0, "FIT": 1, "NUGGET": 0.1,
                        "PSILL": 1.0, "RANGE": 20000.0, "OUTPUT": str(tmp_path / "o.tif"),
                        "VARIANCE": str(tmp_path / "v.tif"), "CV_TABLE": None, "REPORT": str(tmp_path / "r.html")},
        log)
    assert "WARNING Element 'Au' is 85.0 % censored (85 of 100 samples below detection)" in log.text()
    assert "85.0 % censored" in (tmp_path / "r.html").read_text()


# --- the import, as the anomaly algorithms see it ---------------------------------------------------

def test_import_reads_decimal_commas_and_missing_codes(qgis_app, tmp_path):
    raw = [f"{v:.2f}".replace(".", ",") for v in np.geomspace(1, 30, 40)] + ["-9999", "", "NA", "<0,5"]
    src = write_points(tmp_path / "au.gpkg", {"raw": raw})
    log = Log()
    result = run("janja:thresholds", {"POINTS": src, "FIELD": "raw", "METHOD": 1,
                                      "OUTPUT_POINTS": str(tmp_path / "c.gpkg"), "REPORT": None}, log)
    got = dict(classes_of(result["OUTPUT_POINTS"]))
    assert got["-9999"] is None and got["NA"] is None and got["<0,5"] == 0
    assert "raw: measured 40, below_dl 1, missing 3" in log.text()


def test_import_refuses_a_text_column_with_a_sentence(qgis_app, tmp_path):
    raw = [f"S-{i:04d}" for i in range(50)] + ["12", "15"]
    src = write_points(tmp_path / "ids.gpkg", {"raw": raw})
    message = processing_error("janja:fractal", {"POINTS": src, "FIELD": "raw",
                                                 "OUTPUT_POINTS": str(tmp_path / "c.gpkg"), "REPORT": None})
    assert "Column 'raw' is mostly text: 50 of its 52 filled cells are not numbers" in message
    assert not (tmp_path / "c.gpkg").exists()


def test_import_refuses_a_flag_field_the_layer_lacks(qgis_app, tmp_path):
    src = write_points(tmp_path / "au.gpkg", {"raw": pareto_au()})
    message = processing_error("janja:fractal", {"POINTS": src, "FIELD": "raw", "FLAG_FIELD": "raw_flag",
                                                 "OUTPUT_POINTS": str(tmp_path / "c.gpkg"), "REPORT": None})
    assert "raw_flag" in message and "Traceback" not in message
    assert not (tmp_path / "c.gpkg").exists()


def test_import_reads_above_detection_flags(qgis_app, tmp_path):
    rng = np.random.default_rng(4)
    values = [f"{v:.3f}" for v in 10 ** rng.uniform(0, 1.5, 60)] + ["2000"]
    flags = [None] * 60 + [">"]
    src = write_points(tmp_path / "au.gpkg", {"raw": values, "flag": flags})
    log = Log()
    result = run("janja:thresholds", {"POINTS": src, "FIELD": "raw", "FLAG_FIELD": "flag", "METHOD": 1,
                                      "OUTPUT_POINTS": str(tmp_path / "c.gpkg"), "REPORT": None}, log)
    assert "above_dl 1" in log.text() and "1 above the upper limit" in log.text()
    assert dict(classes_of(result["OUTPUT_POINTS"]))["2000"] == 3


def test_thresholds_percentiles_of_signed_scores_keep_negative_values(qgis_app, tmp_path):
    scores = signed_field(100, seed=9)
    src = write_points(tmp_path / "f.gpkg", {"raw": scores})
    log = Log()
    result = run("janja:thresholds", {"POINTS": src, "FIELD": "raw", "METHOD": 3, "PERCENTILES": "50,90",
                                      "SIGNED": True, "OUTPUT_POINTS": str(tmp_path / "c.gpkg"), "REPORT": None},
                 log)
    got = [float(t) for t in result["THRESHOLDS"].split(",")]
    np.testing.assert_allclose(got, np.percentile([float(v) for v in scores], [50, 90]), rtol=1e-5)
    assert "None of the 100 samples is below detection" in log.text()


def test_thresholds_signed_scores_without_saying_so_are_refused_not_misread(qgis_app, tmp_path):
    # read as detection-limit codes, half the scores are non-detects: the median falls among them
    src = write_points(tmp_path / "f.gpkg", {"raw": signed_field(100, seed=9)})
    message = processing_error("janja:thresholds", {"POINTS": src, "FIELD": "raw", "METHOD": 3,
                                                    "PERCENTILES": "50,90", "REPORT": None})
    assert "P50 falls among the below-detection samples" in message
