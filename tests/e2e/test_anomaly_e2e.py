"""janja:anomaly_score through qgis_process.bin, with the bundled f-AnoGAN model as its default."""

import json

import numpy as np
import pytest
from testdata import PLUGIN_NAME, REPO, qgis_environment, run_qgis_process

from janja_plugin.core.raster_grid import Grid, write_stack

BUNDLED = REPO / "models" / "wa_anomaly" / "wa_anomaly_fanogan.onnx"
pytestmark = pytest.mark.skipif(not BUNDLED.is_file(), reason="the bundled anomaly model is not in models/")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = qgis_environment(tmp_path_factory.mktemp("qp_anomaly"))
    run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
    return env


def wa_like_stack(path, names=None):
    card = json.loads(BUNDLED.with_suffix(".json").read_text())
    grid = Grid(300000.0, 6900000.0, card["cell_size"], 40, 30)
    rng = np.random.default_rng(0)
    bands = [10 ** (e["mean"] + 0.3 * e["std"] * rng.normal(size=(30, 40))) for e in card["elements"]]
    write_stack(path, bands, names or [e["name"] for e in card["elements"]], grid, card["crs"] or "EPSG:32750")
    return grid


def test_run_with_the_bundled_model_scores_raster_and_samples(env, tmp_path):
    import rasterio

    grid = wa_like_stack(tmp_path / "stack.tif")
    points = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:32750"}}, "features": [
        {"type": "Feature", "properties": {"id": i},
         "geometry": {"type": "Point", "coordinates": [grid.xmin + 250 * (5 + 7 * i), grid.ymax - 250 * (4 + 5 * i)]}}
        for i in range(4)]}
    (tmp_path / "samples.geojson").write_text(json.dumps(points))
    proc = run_qgis_process([
        "run", "janja:anomaly_score", "--json", "--", f"STACK={tmp_path / 'stack.tif'}",
        f"POINTS={tmp_path / 'samples.geojson'}", "THREADS=1", f"OUTPUT={tmp_path / 'score.tif'}",
        f"CLASSES={tmp_path / 'classes.tif'}", f"OUTPUT_POINTS={tmp_path / 'scored.gpkg'}",
        f"REPORT={tmp_path / 'report.html'}"], env)
    results = json.loads(proc.stdout)["results"]
    for key in ("OUTPUT", "CLASSES", "OUTPUT_POINTS", "REPORT"):
        assert key in results
    with rasterio.open(tmp_path / "score.tif") as src:
        s = src.read(1)
        assert src.descriptions == ("anomaly_score",)
    assert np.all((s >= 0) & (s <= 1)) and s.std() > 0
    assert (tmp_path / "score.qml").exists() and (tmp_path / "classes.qml").exists()
    from osgeo import ogr

    ds = ogr.Open(str(tmp_path / "scored.gpkg"))
    layer = ds.GetLayer(0)
    assert layer.GetFeatureCount() == 4
    assert all(0 <= f.GetField("anomaly_score") <= 1 for f in layer)


def test_stack_without_the_models_elements_fails_cleanly(env, tmp_path):
    wa_like_stack(tmp_path / "stack.tif", names=["Au_ppm", "Ag_ppm", "Cu_ppm", "Pb_ppm", "As_ppm"])
    proc = run_qgis_process(["run", "janja:anomaly_score", "--", f"STACK={tmp_path / 'stack.tif'}",
                             f"OUTPUT={tmp_path / 'score.tif'}"], env, check=False)
    assert proc.returncode == 1
    text = proc.stdout + proc.stderr
    assert "lacks Zn_ppm" in text and "Traceback" not in text
    assert not (tmp_path / "score.tif").exists()
