"""janja:krige against hostile input (issue 13, items 5, 6, 8, 9, 10): a sentence or a correct result,
never a traceback, a partial file or a silent nonsense map. Every survey file is built here."""

import os
import stat
import subprocess

import numpy as np
import pytest
from hostile_data import meuse_like, survey, write_points
from testdata import processing_error


def outputs(out, **overrides):
    params = {"FIELDS": ["zn"], "CELL_SIZE": 100.0, "OUTPUT": str(out / "e.tif"), "VARIANCE": str(out / "v.tif"),
              "CV_TABLE": str(out / "cv.gpkg"), "REPORT": str(out / "report.html")}
    params.update(overrides)
    return params


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


@pytest.fixture
def samples(tmp_path):
    return meuse_like(tmp_path)


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*"))


def run(params, feedback=None):
    import processing

    return processing.run("janja:krige", params, feedback=feedback)


class Log:
    """A feedback that keeps every line the algorithm logs."""

    def __new__(cls):
        from qgis.core import QgsProcessingFeedback

        class _Log(QgsProcessingFeedback):
            def __init__(self):
                super().__init__()
                self.lines = []

            def pushInfo(self, info):
                self.lines.append(info)
                super().pushInfo(info)

            def pushWarning(self, warning):
                self.lines.append(warning)
                super().pushWarning(warning)

            def reportError(self, error, fatalError=False):  # noqa: N803 - QGIS's signature
                self.lines.append(error)
                super().reportError(error, fatalError)

            def text(self):
                return "\n".join(self.lines)

        return _Log()


# ---- item 9: nothing half-written ------------------------------------------------------------------


def test_unwritable_report_leaves_no_stack_behind(qgis_app, samples, out):
    blocker = out / "not_a_folder"
    blocker.write_text("x")
    message = processing_error("janja:krige", {"INPUT": samples, **outputs(out, REPORT=str(blocker / "r.html"))})
    assert "REPORT" in message and "is a file, not a folder" in message
    assert leftovers(out) == ["not_a_folder"]


def test_report_failing_during_the_write_leaves_nothing(qgis_app, samples, out, monkeypatch):
    """A failure after the rasters and the table were written (here: the report) removes them all."""
    import importlib

    # the plugin runs as the package QGIS loaded (janja.janja_plugin), not as janja_plugin
    krige_pipeline = importlib.import_module("janja.janja_plugin.core.geostatistics.krige_pipeline")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device", str(out / "report.html"))

    monkeypatch.setattr(krige_pipeline, "write_report", broken)
    message = processing_error("janja:krige", {"INPUT": samples, **outputs(out)})
    assert "No space left on device" in message and "Nothing was written" in message
    assert leftovers(out) == []


def test_cv_table_under_a_file_refused_before_work(qgis_app, samples, out):
    blocker = out / "cv"
    blocker.write_text("x")
    message = processing_error("janja:krige", {"INPUT": samples, **outputs(out, CV_TABLE=str(blocker / "cv.gpkg"))})
    assert "CV_TABLE" in message and "choose a path inside a folder" in message
    assert leftovers(out) == ["cv"]


def test_success_moves_every_output_into_place_and_loads_nothing_staged(qgis_app, samples, out):
    result = run({"INPUT": samples, **outputs(out)})
    names = leftovers(out)
    assert {"cv.gpkg", "e.qml", "e.tif", "report.html", "v.qml", "v.tif"} <= set(names)
    assert not [n for n in names if "janja-part" in n or n.startswith(".")], names
    assert result["OUTPUT"] == str(out / "e.tif") and result["CV_TABLE"] == str(out / "cv.gpkg")
    assert result["REPORT"] == str(out / "report.html")


# ---- item 8: one sentence, no traceback ------------------------------------------------------------


def test_output_path_under_a_regular_file(qgis_app, samples, out):
    (out / "file.txt").write_text("x")
    params = {"INPUT": samples, **outputs(out, OUTPUT=str(out / "file.txt" / "e.tif"))}
    message = processing_error("janja:krige", params)
    assert "Element stack" in message and "is a file, not a folder" in message
    assert leftovers(out) == ["file.txt"]


def test_output_that_is_a_folder(qgis_app, samples, out):
    (out / "e.tif").mkdir()
    message = processing_error("janja:krige", {"INPUT": samples, **outputs(out)})
    assert "is a folder" in message
    assert leftovers(out) == ["e.tif"]


def test_unwritable_output_folder(qgis_app, samples, out):
    locked = out / "locked"
    locked.mkdir()
    # chmod does not stop root; an immutable folder does (chattr), and a 0555 folder stops everyone else
    immutable = os.geteuid() == 0 and subprocess.run(["chattr", "+i", str(locked)]).returncode == 0
    if not immutable:
        locked.chmod(0o555)
    try:
        message = processing_error("janja:krige", {"INPUT": samples, **outputs(out, VARIANCE=str(locked / "v.tif"))})
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(locked)], check=True)
        locked.chmod(0o755)
    assert "cannot be written" in message and "Choose a folder you can write to" in message
    assert leftovers(out) == ["locked"]


def test_same_field_twice(qgis_app, samples, out):
    message = processing_error("janja:krige", {"INPUT": samples, **outputs(out, FIELDS=["zn", "cu", "zn"])})
    assert "zn" in message and "more than once" in message
    assert leftovers(out) == []


def test_polygon_layer_as_input(qgis_app, tmp_path, out):
    x, y, zn = survey()
    polygons = write_points(tmp_path / "poly.gpkg", 28992, x, y, {"zn": zn}, geometry="polygon")
    message = processing_error("janja:krige", {"INPUT": polygons, **outputs(out)})
    assert "holds polygons, not points" in message
    assert leftovers(out) == []


def test_transform_failure_after_choosing_a_projected_crs(qgis_app, tmp_path, out):
    """Points 90° of longitude from the chosen UTM zone: PROJ fails ('Fallback transform failed')."""
    x, y, zn = survey(x0=100.0, y0=0.0, span=0.05)
    lonlat = write_points(tmp_path / "ll.gpkg", 4326, x, y, {"zn": zn})
    message = processing_error("janja:krige", {"INPUT": lonlat, **outputs(out, CRS="EPSG:32631")})
    assert "cannot be projected to EPSG:32631" in message and "UTM zone" in message
    assert leftovers(out) == []


# ---- item 5: unstable systems ----------------------------------------------------------------------


@pytest.mark.parametrize("vrange, neighbours", [(800.0, 0), (800.0, 16), (2500.0, 16)])
def test_gaussian_without_nugget_is_never_a_silent_nonsense_map(qgis_app, samples, out, neighbours, vrange):
    """Either a sentence and no file, or a map within the data's range with the added nugget said."""
    import processing
    import rasterio
    from qgis.core import QgsProcessingException

    params = {"INPUT": samples, **outputs(out, MODEL=2, FIT=1, NUGGET=0.0, PSILL=0.4, RANGE=vrange,
                                          NEIGHBOURS=neighbours, TRANSFORM=1)}
    log = Log()
    try:
        result = processing.run("janja:krige", params, feedback=log)
    except QgsProcessingException as exc:
        message = str(exc)
        exc.__traceback__ = None
        assert ("far outside the data" in message or "singular" in message) and "nugget" in message
        assert leftovers(out) == []
        return
    assert "was added" in log.text()
    _, _, zn = survey()
    with rasterio.open(result["OUTPUT"]) as src:
        band = src.read(1, masked=True)
    spread = zn.max() - zn.min()
    assert band.min() > zn.min() - spread and band.max() < zn.max() + spread


@pytest.mark.parametrize("neighbours", [0, 16])
def test_gaussian_still_unstable_with_the_tiny_nugget_is_refused(qgis_app, tmp_path, out, neighbours):
    dense = meuse_like(tmp_path, name="dense.gpkg", n=150)
    message = processing_error("janja:krige", {"INPUT": dense, **outputs(
        out, MODEL=2, FIT=1, NUGGET=0.0, PSILL=0.4, RANGE=800.0, NEIGHBOURS=neighbours)})
    assert "far outside the data" in message and "Nothing was written" in message and "nugget" in message
    assert leftovers(out) == []


def test_gaussian_without_nugget_gets_a_tiny_one_and_says_so(qgis_app, samples, out):
    log = Log()
    result = run({"INPUT": samples, **outputs(out, MODEL=2, FIT=1, NUGGET=0.0, PSILL=0.4, RANGE=300.0,
                                               NEIGHBOURS=16)}, feedback=log)
    assert "a nugget of" in log.text() and "was added" in log.text()
    assert "was added" in (out / "report.html").read_text()
    import rasterio

    with rasterio.open(result["OUTPUT"]) as src:
        band = src.read(1, masked=True)
    _, _, zn = survey()
    assert band.count() > 0 and band.max() < 3 * zn.max() and band.min() > zn.min() / 3


# ---- item 6: refuse or warn -------------------------------------------------------------------------


def test_extent_far_from_the_samples(qgis_app, samples, out):
    message = processing_error("janja:krige", {"INPUT": samples, **outputs(
        out, EXTENT="1180000,1185000,331000,335000 [EPSG:28992]")})
    assert "km from the nearest sample" in message and "extent" in message
    assert leftovers(out) == []


def test_search_radius_smaller_than_the_sample_spacing(qgis_app, samples, out):
    message = processing_error("janja:krige", {"INPUT": samples, **outputs(out, SEARCH_RADIUS=50.0, NEIGHBOURS=16)})
    assert "search radius (50 m)" in message and "nearest-sample distance" in message
    assert leftovers(out) == []


def test_point_layer_as_mask(qgis_app, samples, out):
    message = processing_error("janja:krige", {"INPUT": samples, "MASK": samples, **outputs(out)})
    assert "mask layer" in message and "holds points, not polygons" in message
    assert leftovers(out) == []


def test_range_stuck_at_its_search_bound_is_reported(qgis_app, tmp_path, out):
    """A pure trend: the variogram rises like h² and never levels off, so the range runs to the bound."""
    x, y, _ = survey()
    trend = np.exp(1.0 + (x - x.min()) / 1000.0)
    path = write_points(tmp_path / "trend.gpkg", 28992, x, y, {"zn": trend})
    log = Log()
    run({"INPUT": path, **outputs(out)}, feedback=log)
    assert "WARNING: zn: the fitted range" in log.text() and "is the largest" in log.text()
    assert "the fitted range" in (out / "report.html").read_text()


def test_us_survey_feet_crs_is_kriged_in_metres(qgis_app, tmp_path, out):
    """EPSG:2227 (California zone 3, US survey feet): kriged in metres (UTM 10N), the cell size read in
    feet, and the result equals the run on the same samples given in UTM."""
    import rasterio
    from osgeo import osr

    x, y, zn = survey(x0=6_000_000.0, y0=2_100_000.0, span=10_000.0)  # feet
    feet = write_points(tmp_path / "ft.gpkg", 2227, x, y, {"zn": zn})
    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromEPSG(2227)
    b.ImportFromEPSG(32610)
    for s in (a, b):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    pts = np.array(osr.CoordinateTransformation(a, b).TransformPoints(np.column_stack([x, y]).tolist()))
    metres = write_points(tmp_path / "m.gpkg", 32610, pts[:, 0], pts[:, 1], {"zn": zn})
    ft_out, m_out = out / "ft", out / "m"
    r_ft = run({"INPUT": feet, **outputs(ft_out, CELL_SIZE=100.0 * 3937.0 / 1200.0, CV_TABLE=None)})
    r_m = run({"INPUT": metres, **outputs(m_out, CELL_SIZE=100.0, CV_TABLE=None)})
    with rasterio.open(r_ft["OUTPUT"]) as s1, rasterio.open(r_m["OUTPUT"]) as s2:
        assert s1.crs.to_epsg() == 32610 and s1.res == pytest.approx((100.0, 100.0))
        assert s1.transform == s2.transform
        np.testing.assert_allclose(s1.read(1), s2.read(1), rtol=1e-5)


def test_us_survey_feet_as_the_kriging_crs_is_refused(qgis_app, samples, out):
    message = processing_error("janja:krige", {"INPUT": samples, **outputs(out, CRS="EPSG:2227")})
    assert "EPSG:2227" in message and "feet" in message and "metres" in message
    assert leftovers(out) == []


def test_lonlat_survey_straddling_the_antimeridian_uses_its_own_utm_zone(qgis_app, tmp_path, out):
    import rasterio

    x, y, zn = survey(x0=179.9, y0=-17.1, span=0.2)  # Fiji: 179.9°E .. 179.9°W
    x = np.where(x > 180.0, x - 360.0, x)
    assert x.min() < -179.9 and x.max() > 179.9
    lonlat = write_points(tmp_path / "fiji.gpkg", 4326, x, y, {"zn": zn})
    result = run({"INPUT": lonlat, **outputs(out, CELL_SIZE=200.0, CV_TABLE=None)})
    with rasterio.open(result["OUTPUT"]) as src:
        assert src.crs.to_epsg() in (32701, 32760)
        assert src.width * src.res[0] < 40_000  # the survey is about 22 km wide, not half the globe


# ---- item 10: file mode ------------------------------------------------------------------------------


def test_outputs_are_readable_by_colleagues(qgis_app, samples, out):
    old = os.umask(0o022)
    try:
        run({"INPUT": samples, **outputs(out)})
    finally:
        os.umask(old)
    for name in ("e.tif", "v.tif", "report.html", "cv.gpkg"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name


def test_search_radius_leaving_cells_empty_says_how_many(qgis_app, samples, out):
    log = Log()
    run({"INPUT": samples, **outputs(out, SEARCH_RADIUS=600.0, NEIGHBOURS=16, CV_TABLE=None,
                                     EXTENT="178000,186000,329000,337000 [EPSG:28992]")}, feedback=log)
    assert "WARNING: zn:" in log.text() and "%) had too few" in log.text()
    assert "had too few samples within the search radius" in (out / "report.html").read_text()


def test_toolbox_loads_the_final_files_not_the_staged_ones(qgis_app, samples, out):
    """The toolbox passes output definitions that load on completion: they must name the final paths."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProcessingOutputLayerDefinition, QgsProject

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    params = {"INPUT": samples, **outputs(out)}
    for key in ("OUTPUT", "VARIANCE", "CV_TABLE"):
        params[key] = QgsProcessingOutputLayerDefinition(params[key], QgsProject.instance())
    processing.run("janja:krige", params, context=context, feedback=QgsProcessingFeedback())
    loads = sorted(context.layersToLoadOnCompletion())
    assert loads == sorted(str(out / n) for n in ("cv.gpkg", "e.tif", "v.tif")), loads
    context.setLayersToLoadOnCompletion({})


def test_each_elements_summary_line_is_logged_once(qgis_app, samples, out):
    """The core logs an element's summary as it finishes; the algorithm used to print it a second time at the end."""
    log = Log()
    run({"INPUT": samples, **outputs(out, CV_TABLE=None)}, feedback=log)
    summaries = [line for line in log.lines if line.startswith("zn:") and "LOO RMSE" in line]
    assert len(summaries) == 1, summaries
