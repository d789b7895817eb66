"""janja:krige in-process, checked against gstat (Meuse) and for its refusals."""

import csv
import re

import numpy as np
import pytest
from testdata import MEUSE, processing_error


def meuse_layer():
    from qgis.core import QgsVectorLayer

    uri = f"file://{MEUSE / 'meuse.csv'}?delimiter=,&xField=x&yField=y&crs=EPSG:28992"
    layer = QgsVectorLayer(uri, "meuse", "delimitedtext")
    assert layer.isValid() and layer.featureCount() == 155
    return layer


def gstat_model():
    with open(MEUSE / "gstat_reference" / "variogram_fitted_sph_logzinc.csv") as fh:
        rows = {r["model"]: r for r in csv.DictReader(fh)}
    return float(rows["Nug"]["psill"]), float(rows["Sph"]["psill"]), float(rows["Sph"]["range"])


def read_reference(name):
    with open(MEUSE / "gstat_reference" / name) as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def sample_raster(path, band, x, y):
    import rasterio
    from rasterio.transform import rowcol

    with rasterio.open(path) as src:
        rows, cols = rowcol(src.transform, x, y)  # src.index takes one point only since rasterio 1.4
        data = src.read(band)
        return data[np.asarray(rows), np.asarray(cols)].astype(float), src


def krige_params(tmp_path, **overrides):
    params = {
        "INPUT": meuse_layer(), "FIELDS": ["zinc"], "TRANSFORM": 0, "CELL_SIZE": 40.0,
        "NEIGHBOURS": 0, "OUTPUT": str(tmp_path / "zn.tif"), "VARIANCE": str(tmp_path / "zn_var.tif"),
        "LOG_OUTPUT": str(tmp_path / "zn_log.tif"), "CV_TABLE": str(tmp_path / "cv.gpkg"),
        "REPORT": str(tmp_path / "report.html"),
    }
    params.update(overrides)
    return params


def run_krige(tmp_path, **overrides):
    import processing

    return processing.run("janja:krige", krige_params(tmp_path, **overrides))


def test_krige_meuse_equals_gstat_through_qgis(qgis_app, tmp_path):
    nugget, psill, vrange = gstat_model()
    # the meuse.grid nodes are the centres of this grid's cells
    result = run_krige(tmp_path, FIT=1, NUGGET=nugget, PSILL=psill, RANGE=vrange,
                       EXTENT="178440,181560,329600,333760 [EPSG:28992]")
    ref = read_reference("ok_global_logzinc_meuse_grid.csv")
    log_pred, src = sample_raster(result["LOG_OUTPUT"], 1, ref["x"], ref["y"])
    log_var, _ = sample_raster(result["LOG_OUTPUT"], 2, ref["x"], ref["y"])
    # float32 rasters: 1e-6 relative is the storage precision, the core tests check 1e-9
    np.testing.assert_allclose(log_pred, ref["pred"], rtol=1e-6)
    np.testing.assert_allclose(log_var, ref["var"], rtol=1e-5)
    assert src.crs.to_epsg() == 28992
    zn, _ = sample_raster(result["OUTPUT"], 1, ref["x"], ref["y"])
    assert np.all(zn > 0) and np.corrcoef(np.log(zn), ref["pred"])[0, 1] > 0.99
    assert (tmp_path / "zn.qml").exists() and (tmp_path / "zn_var.qml").exists()
    html = (tmp_path / "report.html").read_text()
    assert "zinc" in html and "<svg" in html


def test_cross_validation_layer_matches_gstat(qgis_app, tmp_path):
    from qgis.core import QgsVectorLayer

    nugget, psill, vrange = gstat_model()
    result = run_krige(tmp_path, FIT=1, NUGGET=nugget, PSILL=psill, RANGE=vrange, CELL_SIZE=200.0)
    layer = QgsVectorLayer(result["CV_TABLE"], "cv", "ogr")
    assert layer.featureCount() == 155
    ref = read_reference("loocv_ok_global_logzinc.csv")
    got = {(round(f.geometry().asPoint().x()), round(f.geometry().asPoint().y())): f for f in layer.getFeatures()}
    with open(MEUSE / "meuse.csv") as fh:
        meuse = list(csv.DictReader(fh))
    pred = np.array([got[(int(r["x"]), int(r["y"]))]["predicted"] for r in meuse])
    np.testing.assert_allclose(pred, ref["pred"], rtol=1e-9)
    del layer


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"FIELDS": ["landuse"]}, "numeric"),
        ({"FIT": 1}, "nugget"),
        ({"CELL_SIZE": 0.01}, "GB free"),  # 10^11 cells: refused for disk, not memory (streamed)
    ],
)
def test_bad_input_gives_clear_error_and_writes_nothing(qgis_app, tmp_path, overrides, message):
    assert re.search(message, processing_error("janja:krige", krige_params(tmp_path, **overrides)))
    assert not list(tmp_path.glob("*.tif")) and not (tmp_path / "report.html").exists()


def test_progress_is_reported_and_cancel_writes_nothing(qgis_app, tmp_path):
    from qgis.core import QgsProcessingFeedback

    class CancelHalfway(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.seen = []
            self.progressChanged.connect(self.on_progress)

        def on_progress(self, value):
            self.seen.append(value)
            if value > 20:
                self.cancel()

    feedback = CancelHalfway()
    params = {"INPUT": meuse_layer(), "FIELDS": ["zinc", "copper", "lead"], "CELL_SIZE": 10.0,
              "OUTPUT": str(tmp_path / "zn.tif"), "VARIANCE": str(tmp_path / "zn_var.tif"),
              "REPORT": str(tmp_path / "report.html")}
    assert "Cancelled" in processing_error("janja:krige", params, feedback=feedback)
    assert len(feedback.seen) > 2
    assert not list(tmp_path.iterdir())


def polygon_layer(wkt):
    from qgis.core import QgsFeature, QgsGeometry, QgsVectorLayer

    layer = QgsVectorLayer("Polygon?crs=EPSG:28992", "mask", "memory")
    feature = QgsFeature()
    feature.setGeometry(QgsGeometry.fromWkt(wkt))
    layer.dataProvider().addFeatures([feature])
    return layer


def test_mask_sets_cells_outside_to_nodata(qgis_app, tmp_path):
    import rasterio

    mask = polygon_layer("POLYGON((179000 330000, 180000 330000, 180000 332000, 179000 332000, 179000 330000))")
    result = run_krige(tmp_path, MASK=mask, CELL_SIZE=100.0, CV_TABLE=None, REPORT=None, LOG_OUTPUT=None)
    with rasterio.open(result["OUTPUT"]) as src:
        band = src.read(1, masked=True)
        xs = src.transform.c + (np.arange(src.width) + 0.5) * 100.0
        ys = src.transform.f - (np.arange(src.height) + 0.5) * 100.0
    inside = (ys[:, None] > 330000) & (ys[:, None] < 332000) & (xs[None, :] > 179000) & (xs[None, :] < 180000)
    assert band.mask[~inside].all() and not band.mask[inside].any()


def test_mask_outside_the_samples_is_refused(qgis_app, tmp_path):
    mask = polygon_layer("POLYGON((0 0, 1000 0, 1000 1000, 0 1000, 0 0))")
    assert "outside the samples" in processing_error("janja:krige", krige_params(tmp_path, MASK=mask))
    assert not list(tmp_path.glob("*.tif"))


def test_default_neighbourhood_is_automatic_and_reported(qgis_app, tmp_path):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("janja:krige")
    assert alg.parameterDefinition("NEIGHBOURS").defaultValue() == -1
    params = krige_params(tmp_path)
    del params["NEIGHBOURS"]
    import processing

    processing.run("janja:krige", params)
    text = (tmp_path / "report.html").read_text()
    assert "neighbourhood: all samples (global kriging), chosen automatically for 155 samples" in text
    assert "all 11,935 pairs of the 155 locations (exact)" in text
