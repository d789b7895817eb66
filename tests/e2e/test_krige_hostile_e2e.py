"""qgis_process as a user runs it, on hostile kriging input (issue 13 item 8): one sentence, rc 1,
no Python traceback, and no output left behind."""

import numpy as np
import pytest
from hostile_data import meuse_like, survey, write_points
from testdata import PLUGIN_NAME, qgis_environment, run_qgis_process


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = qgis_environment(tmp_path_factory.mktemp("qp"))
    run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
    return env


def krige(env, samples, out, *extra):
    """Run janja:krige; `extra` KEY=VALUE items replace the defaults (FIELDS may repeat)."""
    given = {"INPUT": samples, "FIELDS": "zn", "CELL_SIZE": "100", "OUTPUT": out / "e.tif",
             "VARIANCE": out / "v.tif", "CV_TABLE": out / "cv.gpkg", "REPORT": out / "report.html"}
    keys = {item.split("=", 1)[0] for item in extra}
    args = [f"{k}={v}" for k, v in given.items() if k not in keys] + list(extra)
    return run_qgis_process(["run", "janja:krige", "--", *args], env, check=False)


def assert_refused(proc, *phrases):
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    for phrase in phrases:
        assert phrase in text, text[-3000:]


def case(tmp_path, name):
    out = tmp_path / name
    out.mkdir()
    return out


def test_hostile_kriging_runs_end_with_a_sentence(env, tmp_path):
    samples = meuse_like(tmp_path)

    out = case(tmp_path, "report_under_file")
    (out / "block").write_text("x")
    assert_refused(krige(env, samples, out, f"REPORT={out / 'block' / 'r.html'}"), "is a file, not a folder")
    assert sorted(p.name for p in out.iterdir()) == ["block"]  # no e.tif, v.tif, cv.gpkg left

    out = case(tmp_path, "output_under_file")
    (out / "block").write_text("x")
    assert_refused(krige(env, samples, out, f"OUTPUT={out / 'block' / 'e.tif'}"), "is a file, not a folder")
    assert sorted(p.name for p in out.iterdir()) == ["block"]

    out = case(tmp_path, "twice")
    assert_refused(krige(env, samples, out, "FIELDS=zn", "FIELDS=cu", "FIELDS=zn"), "more than once")
    assert not list(out.iterdir())

    out = case(tmp_path, "polygons")
    x, y, zn = survey()
    polygons = write_points(tmp_path / "poly.gpkg", 28992, x, y, {"zn": zn}, geometry="polygon")
    assert_refused(krige(env, polygons, out), "holds polygons, not points")
    assert not list(out.iterdir())

    out = case(tmp_path, "transform")
    x, y, zn = survey(x0=100.0, y0=0.0, span=0.05)
    lonlat = write_points(tmp_path / "ll.gpkg", 4326, x, y, {"zn": zn})
    assert_refused(krige(env, lonlat, out, "CRS=EPSG:32631"), "cannot be projected to EPSG:32631")
    assert not list(out.iterdir())

    out = case(tmp_path, "gaussian")
    dense = meuse_like(tmp_path, name="dense.gpkg", n=150)
    proc = krige(env, dense, out, "MODEL=2", "FIT=1", "NUGGET=0", "PSILL=0.4", "RANGE=800")
    assert_refused(proc, "far outside the data")
    assert not list(out.iterdir())


def test_us_feet_survey_through_qgis_process_is_in_metres(env, tmp_path):
    import rasterio

    x, y, zn = survey(x0=6_000_000.0, y0=2_100_000.0, span=10_000.0)
    feet = write_points(tmp_path / "ft.gpkg", 2227, x, y, {"zn": zn})
    out = case(tmp_path, "feet")
    proc = krige(env, feet, out, "CELL_SIZE=328.0833333")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "US survey feet" in proc.stdout or "feet" in proc.stdout
    with rasterio.open(out / "e.tif") as src:
        assert src.crs.to_epsg() == 32610 and src.res == pytest.approx((100.0, 100.0), rel=1e-6)
        assert np.isfinite(src.read(1, masked=True).compressed()).all()
