"""janja:evaluate tells the truth: in-sample labels for a learned map's own training sites, the kriged
baseline scored beside it by the same method, the per-area protocol distance, merged duplicates, and refusal
of deposits nowhere near the samples (a CRS mix-up)."""

import json

import numpy as np
from testdata import SAMPLE_DATA, processing_error

GPKG = SAMPLE_DATA / "wa_sample_data.gpkg"
CRS = "EPSG:32750"
X0, Y0, CELL = 500_000.0, 6_300_000.0, 1000.0


def raster(path, values, tags=None, name="score"):
    from janja_plugin.core.raster_grid import Grid, write_stack

    grid = Grid(X0, Y0, CELL, values.shape[1], values.shape[0])
    write_stack(path, [values], [name], grid, CRS, tags=tags)
    return str(path)


def points_layer(path, xy, crs=CRS, fields=None):
    """A GeoPackage of points (x, y in `crs`) with optional numeric fields {name: values}."""
    from qgis.core import (
        QgsCoordinateReferenceSystem,
        QgsCoordinateTransformContext,
        QgsFeature,
        QgsField,
        QgsFields,
        QgsGeometry,
        QgsPointXY,
        QgsVectorFileWriter,
        QgsWkbTypes,
    )
    from qgis.PyQt.QtCore import QVariant

    qfields = QgsFields()
    for name in fields or {}:
        qfields.append(QgsField(name, QVariant.Double))
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    writer = QgsVectorFileWriter.create(str(path), qfields, QgsWkbTypes.Point, QgsCoordinateReferenceSystem(crs),
                                        QgsCoordinateTransformContext(), options)
    for i, (x, y) in enumerate(xy):
        f = QgsFeature(qfields)
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(float(x), float(y))))
        f.setAttributes([float(v[i]) for v in (fields or {}).values()])
        writer.addFeature(f)
    del writer
    return str(path)


def maps():
    """A learned-looking map that is good, and a baseline that is better, over 30 x 30 cells of 1 km."""
    yy, xx = np.mgrid[0:30, 0:30]
    sites = [(5, 5), (20, 8), (12, 24)]
    d = np.min([np.hypot(yy - r, xx - c) for r, c in sites], axis=0)
    baseline = np.exp(-d / 3.0)
    rng = np.random.default_rng(0)
    learned = np.clip(baseline + rng.normal(0, 0.25, baseline.shape), 0, None)
    xy = [(X0 + (c + 0.5) * CELL, Y0 - (r + 0.5) * CELL) for r, c in sites]
    return learned, baseline, xy


def card(site_xy):
    return {
        "schema_version": 1, "name": "learned", "model_kind": "supervised_classifier",
        "elements": [{"name": "Au_ppb", "unit": "ppb", "transform": "log10", "mean": 0.0, "std": 1.0}],
        "input": {"channels": 1, "height": 5, "width": 5}, "window_pixels": 5, "cell_size": CELL, "crs": None,
        "class_names": ["background", "deposit"], "prospective_class": "deposit", "output_kind": "probabilities",
        "training": {"summary": "test"},
        "validation": {"method": "spatial_blocks", "metrics": {"protocol_auc_held_out_blocks": 0.71,
                                                               "protocol_auc_sd": 0.05,
                                                               "kriged_target_protocol_auc": 0.84}},
        "pretrained": {"source": "none"}, "libraries": {}, "date": "2026-12-01",
        "training_data": {"input_quantiles": {"percent": [0, 1, 50, 99, 100], "values": {"Au_ppb": [0, 1, 2, 3, 4]}},
                          "cell_size": CELL, "sample_spacing": None,
                          "sites": {"crs": CRS, "xy": [list(p) for p in site_xy]}},
    }


def tags_for(site_xy):
    from janja_plugin.core.inference.model_card import card_from_dict
    from janja_plugin.core.inference.prospectivity import output_tags

    return output_tags(card_from_dict(card(site_xy)), False, False)


def test_training_sites_are_labelled_in_sample_with_the_baseline_beside(qgis_app, tmp_path):
    import processing

    learned, baseline, xy = maps()
    score = raster(tmp_path / "p.tif", learned, tags_for(xy), "probability")
    base = raster(tmp_path / "au.tif", baseline, name="Au_ppb")
    deposits = points_layer(tmp_path / "d.gpkg", xy)
    result = processing.run("janja:evaluate", {
        "SCORE_RASTER": score, "BAND": 1, "DEPOSITS": deposits, "BASELINE": base, "BASELINE_BAND": 1,
        "TABLE": str(tmp_path / "e.csv"), "REPORT": str(tmp_path / "e.html")})
    assert result["IN_SAMPLE"] == 1
    assert result["BASELINE_AUC"] > result["AUC"]
    html = (tmp_path / "e.html").read_text()
    assert "IN-SAMPLE, NOT A VALIDATION" in html and "in-sample (training labels): not a validation" in html
    assert "does NOT beat the baseline Au_ppb" in html
    assert html.index("Held-out validation (from the model card)") < html.index("ROC curve")
    assert "0.710 ± 0.050" in html and "0.840" in html
    rows = (tmp_path / "e.csv").read_text().splitlines()
    assert rows[0] == "curve,threshold,x,y,deposits"
    assert all(r.endswith("in-sample (training labels): not a validation") for r in rows[1:])


def test_other_deposits_are_not_labelled_in_sample(qgis_app, tmp_path):
    import processing

    learned, baseline, xy = maps()
    score = raster(tmp_path / "p.tif", learned, tags_for([(X0 + 29_500, Y0 - 29_500)]), "probability")
    deposits = points_layer(tmp_path / "d.gpkg", xy)
    result = processing.run("janja:evaluate", {"SCORE_RASTER": score, "BAND": 1, "DEPOSITS": deposits,
                                               "TABLE": None, "REPORT": str(tmp_path / "e.html")})
    assert result["IN_SAMPLE"] == 0 and np.isnan(result["BASELINE_AUC"])
    html = (tmp_path / "e.html").read_text()
    assert "IN-SAMPLE" not in html and "this is a learned map and no baseline was given" in html


def test_partly_in_sample_is_said_and_the_other_deposits_scored_alone(qgis_app, tmp_path):
    import processing

    learned, baseline, xy = maps()
    score = raster(tmp_path / "p.tif", learned, tags_for(xy[:1]), "probability")
    deposits = points_layer(tmp_path / "d.gpkg", xy)
    processing.run("janja:evaluate", {"SCORE_RASTER": score, "BAND": 1, "DEPOSITS": deposits, "TABLE": None,
                                      "REPORT": str(tmp_path / "e.html")})
    html = (tmp_path / "e.html").read_text()
    assert "partly in-sample: 1 of 3 deposits" in html and "On the 2 deposits that were not training labels" in html


def test_allow_outside_is_a_real_option(qgis_app, tmp_path):
    import processing

    learned, _, xy = maps()
    score = raster(tmp_path / "p.tif", learned)
    deposits = points_layer(tmp_path / "d.gpkg", xy + [(X0 - 50_000, Y0 + 50_000)])
    message = processing_error("janja:evaluate", {"SCORE_RASTER": score, "BAND": 1, "DEPOSITS": deposits,
                                                  "TABLE": None, "REPORT": None})
    assert "ALLOW_OUTSIDE" in message
    result = processing.run("janja:evaluate", {"SCORE_RASTER": score, "BAND": 1, "DEPOSITS": deposits,
                                               "ALLOW_OUTSIDE": True, "TABLE": None, "REPORT": None})
    assert 0.5 < result["AUC"] <= 1.0


def test_deposits_thousands_of_km_away_are_refused(qgis_app, tmp_path):
    """A CRS mix-up: deposits 7,800 km from every sample used to give AUC 0.535 ± 0.18 with rc 0."""
    rng = np.random.default_rng(1)
    xy = np.column_stack([rng.uniform(X0, X0 + 30_000, 200), rng.uniform(Y0 - 30_000, Y0, 200)])
    samples = points_layer(tmp_path / "s.gpkg", xy, fields={"score": rng.random(200)})
    far = points_layer(tmp_path / "far.gpkg", [(10.0, 52.0), (11.0, 53.0)], crs="EPSG:4326")
    message = processing_error("janja:evaluate", {"SCORE_POINTS": samples, "SCORE_FIELD": "score",
                                                  "DEPOSITS": far, "TABLE": None, "REPORT": None})
    assert "same area" in message and "CRS" in message


def test_protocol_distance_follows_the_sample_spacing_and_duplicates_merge(qgis_app, tmp_path):
    """A 100 m sample grid: the per-area rule gives 0.8 km (a fixed 5 km would leave no negatives)."""
    import processing

    gx, gy = np.meshgrid(np.arange(0, 6000, 100.0), np.arange(0, 6000, 100.0))
    xy = np.column_stack([X0 + gx.ravel(), Y0 - gy.ravel()])
    sites = np.array([[X0 + 1500, Y0 - 1500], [X0 + 4500, Y0 - 3000]])
    score = -np.hypot(xy[:, None, 0] - sites[:, 0], xy[:, None, 1] - sites[:, 1]).min(axis=1)
    dup = np.vstack([xy, xy[:1]])  # the sample nearest nothing in particular, twice, different values
    samples = points_layer(tmp_path / "s.gpkg", dup, fields={"score": np.r_[score, score[0] - 1000]})
    deposits = points_layer(tmp_path / "d.gpkg", sites)
    result = processing.run("janja:evaluate", {"SCORE_POINTS": samples, "SCORE_FIELD": "score",
                                               "DEPOSITS": deposits, "TABLE": None,
                                               "REPORT": str(tmp_path / "e.html")})
    html = (tmp_path / "e.html").read_text()
    assert result["AUC"] == 1.0 and "8 x sample spacing 0.0998 km)) = 0.799 km" in html  # lon/lat great circle
    assert "1 location(s) with several rows scored by their mean" in html
    message = processing_error("janja:evaluate", {"SCORE_POINTS": samples, "SCORE_FIELD": "score",
                                                  "DEPOSITS": deposits, "MIN_DISTANCE": 5000.0, "TABLE": None,
                                                  "REPORT": None})
    assert "MIN_DISTANCE" in message
    assert json.dumps(sites.tolist())


def test_a_map_made_at_a_stride_carries_its_measured_error_into_the_evaluation(qgis_app, tmp_path):
    """A stride-k map's own check (janja_stride_* tags) is part of its score: the report and log repeat it, as a
    WARNING when the check found the interpolation misplaces the map."""
    import processing

    from janja_plugin.core.inference.stride_check import StrideError

    learned, _, xy = maps()
    deposits = points_layer(tmp_path / "d.gpkg", xy)
    far = [(X0 + 29_500, Y0 - 29_500)]
    calm = StrideError(stride=4, n_sample=300, n_interpolated=800, mae=0.004, p95=0.01, max=0.2, class_changed=0.0)
    rough = StrideError(stride=8, n_sample=300, n_interpolated=800, mae=0.1, p95=0.4, max=1.0, class_changed=0.12)
    for name, record, want, warn in (("calm", calm, "made at stride 4", False), ("rough", rough,
                                                                                 "Stride 8 misplaces this map", True)):
        tags = {**tags_for(far), **record.tags()}
        score = raster(tmp_path / f"{name}.tif", learned, tags, "probability")
        processing.run("janja:evaluate", {"SCORE_RASTER": score, "BAND": 1, "DEPOSITS": deposits, "TABLE": None,
                                          "REPORT": str(tmp_path / f"{name}.html")})
        html = (tmp_path / f"{name}.html").read_text()
        assert want in html and ("WARNING: this map was made at stride 8" in html) == warn
    plain = raster(tmp_path / "plain.tif", learned, tags_for(far), "probability")
    processing.run("janja:evaluate", {"SCORE_RASTER": plain, "BAND": 1, "DEPOSITS": deposits, "TABLE": None,
                                      "REPORT": str(tmp_path / "plain.html")})
    assert "stride" not in (tmp_path / "plain.html").read_text().lower()
