"""Pure-core parts of issue 13 (items 5, 6, 9, 10): staged outputs, file mode, and the checks that stop
a meaningless map (no QGIS)."""

import os
import stat

import numpy as np
import pytest
from hostile_data import survey

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.geostatistics import krige_pipeline, survey_checks
from janja_plugin.core.raster_grid import grid_for_extent, write_stack
from janja_plugin.core.reporting.report import write_text_atomic
from janja_plugin.core.staging import StagedOutputs, check_writable


def test_staged_files_and_sidecars_appear_only_on_commit(tmp_path):
    staging = StagedOutputs()
    tif = staging.stage(tmp_path / "e.tif")
    shp = staging.stage(tmp_path / "sub" / "pts.shp")
    for path in (tif, tif[:-4] + ".qml", tif + ".aux.xml"):
        open(path, "w").close()
    for ext in (".shp", ".shx", ".dbf", ".prj"):
        open(shp[:-4] + ext, "w").close()
    assert not (tmp_path / "e.tif").exists() and staging.final_path(tif[:-4] + ".qml") == str(tmp_path / "e.qml")
    staging.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.qml", "e.tif", "e.tif.aux.xml", "sub"]
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["pts.dbf", "pts.prj", "pts.shp", "pts.shx"]
    staging.discard()  # after commit: nothing to remove
    assert (tmp_path / "e.tif").exists()


def test_discard_removes_staged_files_and_keeps_existing_destinations(tmp_path):
    (tmp_path / "e.tif").write_text("yesterday's map")
    staging = StagedOutputs()
    open(staging.stage(tmp_path / "e.tif"), "w").close()
    open(staging.stage(tmp_path / "report"), "w").close()  # a name without extension
    open(staging.stage(tmp_path / "new" / "deeper" / "v.tif"), "w").close()
    staging.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.tif"]  # the folders it made are gone too
    assert (tmp_path / "e.tif").read_text() == "yesterday's map"


@pytest.mark.parametrize("make, phrase", [
    (lambda t: (t / "f").write_text("x") and t / "f" / "a" / "out.tif", "is a file, not a folder"),
    (lambda t: (t / "d").mkdir() or t / "d", "is a folder"),
])
def test_check_writable_refuses_with_a_sentence(tmp_path, make, phrase):
    with pytest.raises(JanjaInputError, match=phrase):
        check_writable(make(tmp_path), "REPORT")


def test_check_writable_accepts_a_folder_still_to_be_made(tmp_path):
    check_writable(tmp_path / "new" / "deeper" / "e.tif", "OUTPUT")
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_rasters_and_reports_get_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        grid = grid_for_extent(0, 0, 10, 10, 1.0)
        write_stack(tmp_path / "a.tif", [np.ones((10, 10))], ["a"], grid, "EPSG:32631")
        write_text_atomic(tmp_path / "r.html", "<p>hi</p>")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.tif").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "r.html").stat().st_mode) == 0o640


def test_central_longitude_of_a_survey_across_the_antimeridian():
    assert survey_checks.central_longitude([179.8, 179.9, -179.9, -179.8]) == pytest.approx(-180.0, abs=1e-9) or \
        survey_checks.central_longitude([179.8, 179.9, -179.9, -179.8]) == pytest.approx(180.0, abs=1e-9)
    assert survey_checks.central_longitude([10.0, 12.0]) == pytest.approx(11.0)


def smooth_survey():
    x, y, z = survey(n=150)
    return x - 180_000.0, y - 331_000.0, z


def krige(settings, grid=None, raw=None):
    x, y, z = smooth_survey()
    grid = grid or grid_for_extent(x.min(), y.min(), x.max(), y.max(), 100.0, margin=200.0)
    return krige_pipeline.krige_elements(x, y, {"zn": list(z) if raw is None else raw}, settings, grid,
                                         log=lambda m: None)


@pytest.mark.parametrize("neighbours", [0, 16])
def test_gaussian_zero_nugget_never_returns_values_far_outside_the_data(neighbours):
    settings = krige_pipeline.KrigeSettings(model="gaussian", fit="manual", nugget=0.0, psill=0.4, range=800.0,
                                            neighbours=neighbours)
    with pytest.raises(JanjaInputError, match="far outside the data"):
        krige(settings)


def test_extent_far_away_is_refused():
    x, y, _ = smooth_survey()
    far = grid_for_extent(1_000_000, 1_000_000, 1_003_000, 1_003_000, 100.0)
    with pytest.raises(JanjaInputError, match="km from the nearest sample"):
        krige(krige_pipeline.KrigeSettings(), grid=far)


def test_search_radius_below_the_spacing_is_refused():
    with pytest.raises(JanjaInputError, match="smaller than the typical distance"):
        krige(krige_pipeline.KrigeSettings(neighbours=8, search_radius=20.0))


def test_range_at_the_search_bound_is_a_warning_in_the_notes():
    x, y, _ = smooth_survey()
    trend = list(np.exp(1.0 + x / 1000.0))
    (r,) = krige(krige_pipeline.KrigeSettings(), raw=trend)
    assert any("is the largest the automatic fit searches" in n for n in r.notes)


def test_proportional_elements_are_refused_by_the_multivariate_distance():
    from janja_plugin.core.anomaly.multivariate import robust_mahalanobis

    rng = np.random.default_rng(0)
    a = np.exp(rng.normal(3, 1, 200))
    b = np.exp(rng.normal(2, 1, 200))
    with pytest.raises(JanjaInputError, match="linearly dependent"):
        robust_mahalanobis(np.column_stack([a, 10 * a, b]), ["Cu", "Cu_x10", "Zn"])
