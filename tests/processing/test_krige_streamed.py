"""janja:krige streams its grids tile by tile: what it writes equals the whole-grid core result cell for
cell, its memory guard no longer grows with the cells, and a cancel leaves no file."""

import csv
import importlib

import numpy as np
import pytest
from testdata import MEUSE, processing_error

MASK_WKT = "POLYGON((179000 330000, 180500 330000, 180500 332500, 179000 332500, 179000 330000))"


def plugin_module(name):
    """The plugin's module as QGIS loaded it (package `janja`)."""
    return importlib.import_module(f"janja.janja_plugin.{name}")


@pytest.fixture
def no_whole_grid(monkeypatch):
    """janja:krige must not hold whole grids: the whole-grid function fails if it is called."""
    def held(*args, **kwargs):
        raise AssertionError("janja:krige called krige_elements (whole grids in memory)")
    monkeypatch.setattr(plugin_module("core.geostatistics.krige_pipeline"), "krige_elements", held)


def meuse_layer():
    from qgis.core import QgsVectorLayer

    uri = f"file://{MEUSE / 'meuse.csv'}?delimiter=,&xField=x&yField=y&crs=EPSG:28992"
    return QgsVectorLayer(uri, "meuse", "delimitedtext")


def mask_layer():
    from qgis.core import QgsFeature, QgsGeometry, QgsVectorLayer

    layer = QgsVectorLayer("Polygon?crs=EPSG:28992", "mask", "memory")
    feature = QgsFeature()
    feature.setGeometry(QgsGeometry.fromWkt(MASK_WKT))
    layer.dataProvider().addFeatures([feature])
    return layer


def read(path):
    from osgeo import gdal

    ds = gdal.Open(str(path))
    bands = [ds.GetRasterBand(i + 1) for i in range(ds.RasterCount)]
    out = {"data": np.stack([b.ReadAsArray() for b in bands]), "names": [b.GetDescription() for b in bands],
           "nodata": [b.GetNoDataValue() for b in bands], "transform": ds.GetGeoTransform(),
           "tags": ds.GetMetadata(), "wkt": ds.GetProjection()}
    ds = None
    return out


def as_written(arrays):
    """What write_stack (janja:krige's writer before streaming) puts in a file: float32, NaN -> nodata."""
    data = np.stack([np.asarray(a, np.float32) for a in arrays])
    return np.where(np.isfinite(data), data, np.float32(-9999.0))


def test_krige_output_equals_the_whole_grid_core_result_with_a_mask(qgis_app, tmp_path, no_whole_grid):
    import processing
    from osgeo import ogr

    from janja_plugin.core.geostatistics import krige_pipeline as kp
    from janja_plugin.core.raster_grid import grid_for_extent, rasterize_polygons

    fields = ["zinc", "copper"]
    result = processing.run("janja:krige", {
        "INPUT": meuse_layer(), "FIELDS": fields, "TRANSFORM": 0, "CELL_SIZE": 50.0, "NEIGHBOURS": 16,
        "MASK": mask_layer(), "OUTPUT": str(tmp_path / "zn.tif"), "VARIANCE": str(tmp_path / "zn_var.tif"),
        "LOG_OUTPUT": str(tmp_path / "zn_log.tif"), "CV_TABLE": None, "REPORT": str(tmp_path / "report.html")})

    with open(MEUSE / "meuse.csv") as fh:
        rows = list(csv.DictReader(fh))
    x, y = (np.array([float(r[k]) for r in rows]) for k in ("x", "y"))
    columns = {f: [float(r[f]) for r in rows] for f in fields}
    grid = grid_for_extent(x.min(), y.min(), x.max(), y.max(), 50.0, margin=2 * 50.0)
    inside = rasterize_polygons([ogr.CreateGeometryFromWkt(MASK_WKT).ExportToWkb()], grid)
    settings = kp.KrigeSettings(neighbours=16)
    whole = kp.krige_elements(x, y, columns, settings, grid, inside=inside, log=lambda s: None)

    expected = {"OUTPUT": [r.prediction for r in whole], "VARIANCE": [r.variance for r in whole],
                "LOG_OUTPUT": [b for r in whole for b in (r.log_prediction, r.log_variance)]}
    names = {"OUTPUT": fields, "VARIANCE": fields,
             "LOG_OUTPUT": ["log_zinc", "log_zinc_variance", "log_copper", "log_copper_variance"]}
    for key, arrays in expected.items():
        got = read(result[key])
        assert got["data"].tobytes() == as_written(arrays).tobytes()  # every cell, nodata included
        assert got["names"] == names[key] and got["nodata"] == [-9999.0] * len(arrays)
        assert got["transform"] == grid.geotransform() and "Amersfoort" in got["wkt"]
        tags = {k: v for k, v in got["tags"].items() if k != "AREA_OR_POINT"}  # GDAL's, in every GeoTIFF
        assert tags == {k: str(v) for k, v in kp.stack_tags(whole, settings).items()}
    assert (got["data"][:, ~inside] == -9999.0).all() and (got["data"][:, inside] != -9999.0).all()
    # the sidecar style has the whole grid's class breaks
    breaks, labels = kp.style_classes(whole[0].prediction, kp.layer_names("zinc", "log")[1])
    qml = (tmp_path / "zn.qml").read_text()
    assert len(labels) > 3 and all(f'label="{label}"' in qml for label in labels), labels
    import html

    report = html.unescape((tmp_path / "report.html").read_text())
    assert whole[0].notes and all(n in report for r in whole for n in r.notes)  # the streamed run's verdicts
    assert f"{whole[1].cv_summary['rmse']:.4g}"[:4] in report


def test_a_grid_the_old_memory_guard_refused_is_no_longer_refused_for_memory(qgis_app, tmp_path, monkeypatch):
    """Meuse at 0.5 m cells is 43 million cells: 1.0 GB by the old 24 B/cell guard, about 0.55 GB streamed.
    With the budget at 0.75 GB it now reaches the kriging (stubbed: no big grid is made)."""
    from qgis.core import QgsProcessingException

    rg = plugin_module("core.raster_grid")
    tk = plugin_module("core.geostatistics.tiled_kriging")
    monkeypatch.setattr(rg, "DEFAULT_MEMORY_LIMIT", 768 * 1024**2)

    def reached(*args, **kwargs):
        raise QgsProcessingException("reached the kriging")
    monkeypatch.setattr(tk, "krige_elements_to_files", reached)
    params = {"INPUT": meuse_layer(), "FIELDS": ["zinc"], "CELL_SIZE": 0.5, "OUTPUT": str(tmp_path / "zn.tif"),
              "VARIANCE": str(tmp_path / "zn_var.tif"), "CV_TABLE": None, "REPORT": None}
    assert processing_error("janja:krige", params) == "reached the kriging"
    monkeypatch.setattr(rg, "DEFAULT_MEMORY_LIMIT", 64 * 1024**2)  # below the streamed bound: a sentence
    message = processing_error("janja:krige", params)
    assert "GB of memory even streamed tile by tile" in message and "nearest samples per cell" in message
    assert not list(tmp_path.iterdir())


def test_a_grid_larger_than_the_free_disk_is_refused_before_any_work(qgis_app, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**12, 10**12 - 10**6, 10**6))
    params = {"INPUT": meuse_layer(), "FIELDS": ["zinc"], "CELL_SIZE": 10.0, "OUTPUT": str(tmp_path / "zn.tif"),
              "VARIANCE": str(tmp_path / "zn_var.tif"), "CV_TABLE": None, "REPORT": None}
    message = processing_error("janja:krige", params)
    assert "may need up to" in message and "GB free" in message and "cell size at least" in message
    assert not list(tmp_path.iterdir())


def test_cancel_while_streaming_the_second_element_leaves_no_file(qgis_app, tmp_path, no_whole_grid):
    from qgis.core import QgsProcessingFeedback

    class CancelLate(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.progressChanged.connect(lambda value: value > 60 and self.cancel())

    params = {"INPUT": meuse_layer(), "FIELDS": ["zinc", "copper"], "CELL_SIZE": 10.0, "NEIGHBOURS": 16,
              "OUTPUT": str(tmp_path / "zn.tif"), "VARIANCE": str(tmp_path / "zn_var.tif"),
              "LOG_OUTPUT": str(tmp_path / "zn_log.tif"), "REPORT": str(tmp_path / "report.html")}
    assert "Cancelled" in processing_error("janja:krige", params, feedback=CancelLate())
    assert not list(tmp_path.iterdir())  # not even a hidden temporary file
