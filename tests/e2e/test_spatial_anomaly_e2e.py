"""janja:spatial_anomaly through qgis_process.bin: the sample spacing measured from a point layer, styled
outputs and the benchmark report; a stack in degrees refused with a sentence and nothing written."""

import json
import sys
from pathlib import Path

import pytest
from testdata import PLUGIN_NAME, qgis_environment, run_qgis_process

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from test_spatial_context import NAMES, planted  # noqa: E402 - the shared planted-halo stack

from janja_plugin.core.raster_grid import Grid, write_stack  # noqa: E402

GRID = Grid(300000.0, 6900000.0, 250.0, 48, 48)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = qgis_environment(tmp_path_factory.mktemp("qp_spatial"))
    run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
    return env


def test_run_with_spacing_from_the_samples(env, tmp_path):
    import rasterio

    write_stack(tmp_path / "stack.tif", planted(0, size=48, n_halo=3, radius=3.0)[0], NAMES, GRID, "EPSG:32750")
    features = [{"type": "Feature", "properties": {"id": i * 100 + j}, "geometry": {"type": "Point", "coordinates": [
        GRID.xmin + 250 * (1.5 + 3 * j), GRID.ymax - 250 * (1.5 + 3 * i)]}} for i in range(16) for j in range(16)]
    points = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:32750"}},
              "features": features}
    (tmp_path / "samples.geojson").write_text(json.dumps(points))
    proc = run_qgis_process([
        "run", "janja:spatial_anomaly", "--json", "--", f"STACK={tmp_path / 'stack.tif'}", "SPACING=0",
        f"POINTS={tmp_path / 'samples.geojson'}", f"OUTPUT={tmp_path / 'score.tif'}",
        f"CLASSES={tmp_path / 'classes.tif'}", f"REPORT={tmp_path / 'report.html'}"], env)
    results = json.loads(proc.stdout)["results"]
    assert {"OUTPUT", "CLASSES", "REPORT"} <= set(results)
    with rasterio.open(tmp_path / "score.tif") as src:
        s = src.read(1, masked=True)
        assert src.descriptions == ("spatial_anomaly",) and src.tags()["janja_sample_spacing_m"] == "750"
        assert src.tags()["janja_target"] == "Au_ppb"  # band 1 when TARGET is not given
    assert s.count() == 48 * 48 and s.std() > 0 and s.min() < 0 < s.max()
    assert (tmp_path / "score.qml").exists() and (tmp_path / "classes.qml").exists()
    html = (tmp_path / "report.html").read_text()
    assert "0.880" in html and "0.927" in html and "Au_ppb" in html


def test_a_stack_in_degrees_is_refused_with_a_sentence(env, tmp_path):
    bands = planted(0, size=48, n_halo=3, radius=3.0)[0]
    write_stack(tmp_path / "geo.tif", bands, NAMES, Grid(120.0, -30.0, 0.0025, 48, 48), "EPSG:4326")
    proc = run_qgis_process(["run", "janja:spatial_anomaly", "--", f"STACK={tmp_path / 'geo.tif'}", "SPACING=750",
                             f"OUTPUT={tmp_path / 'score.tif'}", f"REPORT={tmp_path / 'r.html'}"], env, check=False)
    assert proc.returncode == 1
    text = proc.stdout + proc.stderr
    assert "is in degrees" in text and "metres" in text and "Traceback" not in text
    assert not (tmp_path / "score.tif").exists() and not (tmp_path / "r.html").exists()
