"""janja:workflow, the shipped graphical-modeler model, headless end to end through qgis_process.

With a trained model in models/ the workflow runs with it at its card's cell size (a coarse stride keeps
the test short: stride 12); with models/ empty, with an untrained stand-in built here (tools/standin_model.py)
at a coarse cell size. Either way every output is checked: it exists, is georeferenced, holds valid
values and carries its style; then the project, the picture (kept under out/) and the report.
"""

import json
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from testdata import PLUGIN_NAME, REPO, qgis_environment, run_qgis_process

sys.path.insert(0, str(REPO / "tools"))
from demo_project import (  # noqa: E402
    PICTURE,
    PROJECT,
    REPORT,
    WORKFLOW_OUTPUTS,
    bundled_classifier,
    model_card_of,
    workflow_args,
)
from standin_model import build_standin_model  # noqa: E402

MODEL3 = REPO / "resources" / "models" / "janja_workflow.model3"
UTM_50S = 32750  # the bundled survey is geographic: janja:krige projects it to its UTM zone


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = qgis_environment(tmp_path_factory.mktemp("qp"))
    run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
    return env


@pytest.fixture(scope="module")
def model_and_cell(tmp_path_factory):
    """(model, cell size, stride): the bundled classifier at its card's cell size, or a stand-in at 2 km."""
    model = bundled_classifier()
    if model is not None:
        return model, float(model_card_of(model)["cell_size"]), 12
    cell = 2000.0
    return build_standin_model(tmp_path_factory.mktemp("standin") / "standin.onnx", cell), cell, 1


def test_workflow_is_listed_with_help(env):
    listed = run_qgis_process(["list"], env).stdout
    assert "janja:workflow" in listed
    text = run_qgis_process(["help", "janja:workflow"], env).stdout
    for word in ("janja:krige", "janja:prospectivity", "janja:evaluate", "References", "cell_size",
                 "krige:elements", "prospectivity:targets"):
        assert word in text, word


def test_shipped_model_runs_end_to_end(env, model_and_cell, tmp_path):
    import rasterio
    from osgeo import ogr

    model, cell, stride = model_and_cell
    elements = [e["name"] for e in model_card_of(model)["elements"]]
    out = tmp_path / "out"
    proc = run_qgis_process(["run", "janja:workflow", "--json", "--",
                             *workflow_args(out, model, cell, stride, fields=elements)], env, timeout=1200)
    results = json.loads(proc.stdout)["results"]
    for key, name in WORKFLOW_OUTPUTS.items():
        assert results[key] == str(out / name), key
        assert (out / name).stat().st_size > 0, name

    for key, name in WORKFLOW_OUTPUTS.items():
        path = out / name
        if path.suffix != ".tif":
            continue
        with rasterio.open(path) as src:
            assert src.crs.to_epsg() == UTM_50S, name
            assert src.res == pytest.approx((cell, cell)), name
            assert src.transform.e < 0 and src.nodata is not None, name
            band = src.read(1, masked=True)
            assert band.count() > 0.5 * band.size, f"{name}: mostly nodata"
            assert np.isfinite(band.compressed()).all(), name
            if key == "krige:elements":
                assert list(src.descriptions) == elements
                assert float(band.min()) > 0
            if key == "krige:variance":
                assert float(band.min()) >= 0
            if key == "prospectivity:probability":
                assert 0 <= float(band.min()) and float(band.max()) <= 1 and float(band.max()) > float(band.min())
            if key.endswith("classes"):
                assert set(np.unique(band.compressed())) <= {0, 1, 2, 3, 4, 5, 6}, name
        qml = path.with_suffix(".qml")
        assert qml.exists() and "rasterrenderer" in qml.read_text(), f"{name} has no style"

    targets = ogr.Open(str(out / WORKFLOW_OUTPUTS["prospectivity:targets"]))
    layer = targets.GetLayer(0)
    assert layer.GetSpatialRef().GetAuthorityCode(None) == str(UTM_50S)
    names = sorted((f.GetField("rank"), f.GetField("name")) for f in layer)
    assert names and names[0] == (1, "Area I")
    targets = None
    assert "Area I" in (out / WORKFLOW_OUTPUTS["prospectivity:prospectivity_report"]).read_text()
    evaluation = (out / WORKFLOW_OUTPUTS["evaluate:evaluation_report"]).read_text()
    assert "AUC" in evaluation and f"Baseline: {elements[0]}, same method" in evaluation
    card = model_card_of(model)
    if card.get("training_data", {}).get("sites", {}).get("xy"):  # the bundled classifier records its sites
        assert "IN-SAMPLE, NOT A VALIDATION" in evaluation and "Held-out validation (from the model card)" in evaluation

    # the project, the picture and the one report, as `make demo` writes them
    subprocess.run([sys.executable, str(REPO / "tools" / "demo_project.py"), "--out", str(out), "--model", str(model),
                    "--cell-size", f"{cell:g}", "--stride", str(stride)], check=True, capture_output=True, timeout=300)
    assert (out / PROJECT).stat().st_size > 1000
    for vector in ("targets.qml", "known_deposits.qml"):
        assert (out / vector).exists(), vector
    picture = out / PICTURE
    assert picture.stat().st_size > 20_000
    report = (out / REPORT).read_text()
    assert "Area I" in report and "data:image/png;base64," in report and "success-rate AUC" in report
    assert report.index("Held-out validation") < report.index("Evaluation against the known deposits")
    if card.get("training_data", {}).get("sites", {}).get("xy"):
        assert "IN-SAMPLE, NOT A VALIDATION" in report and "in-sample (training labels): not a validation" in report
    kept = REPO / "out"
    kept.mkdir(exist_ok=True)
    shutil.copy(picture, kept / "workflow_test_map.png")  # a look at the maps this test made


def test_model3_file_runs_as_is(env, tmp_path):
    """The .model3 itself (as a user would download or edit it), at a coarse cell with a stand-in model."""
    import rasterio

    model = build_standin_model(tmp_path / "standin.onnx", 3000.0)
    out = tmp_path / "out"
    proc = run_qgis_process(["run", str(MODEL3), "--json", "--", *workflow_args(out, model, 3000.0)], env, timeout=600)
    results = json.loads(proc.stdout)["results"]
    with rasterio.open(results["prospectivity:probability"]) as src:
        assert src.res == (3000.0, 3000.0) and src.crs.to_epsg() == UTM_50S
    assert (out / WORKFLOW_OUTPUTS["evaluate:evaluation_report"]).exists()


def test_workflow_refuses_a_cell_size_the_model_was_not_trained_at(env, tmp_path):
    model = build_standin_model(tmp_path / "standin.onnx", 3000.0)
    proc = run_qgis_process(["run", "janja:workflow", "--", *workflow_args(tmp_path / "out", model, 4000.0)],
                            env, check=False, timeout=600)
    assert proc.returncode == 1
    text = proc.stdout + proc.stderr
    assert "3000" in text and "Traceback" not in text


def test_package_ships_the_workflow(tmp_path):
    """`make package`: the zip carries the .model3 and the unzipped plugin offers janja:workflow."""
    subprocess.run([sys.executable, str(REPO / "tools" / "package.py"), "--out", str(tmp_path / "dist")],
                   check=True, capture_output=True)
    (archive,) = (tmp_path / "dist").glob("janja-*.zip")
    assert "janja/resources/models/janja_workflow.model3" in zipfile.ZipFile(archive).namelist()
    env = qgis_environment(tmp_path / "q")
    plugins = tmp_path / "q" / "profile" / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    zipfile.ZipFile(archive).extractall(plugins)
    env["QGIS_PLUGINPATH"] = ""
    run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
    assert "janja:workflow" in run_qgis_process(["list"], env).stdout
    help_text = run_qgis_process(["help", "janja:workflow"], env).stdout
    assert "krige:elements" in help_text  # its steps were found: the outputs come from them


def test_readme_batch_loop_runs(tmp_path):
    """The README's qgis_process loop over survey files, as printed (a stand-in model and coarse cells added)."""
    import re

    text = (REPO / "README.md").read_text()
    loop = re.search(r"^for survey in surveys/\*\.gpkg; do\n.*?^done$", text, re.S | re.M)
    assert loop, "the README lost its batch loop"
    model = build_standin_model(tmp_path / "standin.onnx", 3000.0)
    script = loop.group(0).replace("stride=4", f"stride=1 cell_size=3000 onnx_model={model}")
    surveys = tmp_path / "surveys"
    surveys.mkdir()
    gpkg = REPO / "resources" / "sample_data" / "wa_sample_data.gpkg"
    for name in ("north", "south"):
        target = surveys / f"{name}.gpkg"
        subprocess.run(["ogr2ogr", "-f", "GPKG", str(target), str(gpkg), "samples"], check=True)
        subprocess.run(["ogr2ogr", "-update", "-nln", "deposits", str(target), str(gpkg), "au_sites"], check=True)
    env = qgis_environment(tmp_path / "q")
    run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
    env["PATH"] = "/usr/bin:" + env.get("PATH", "")
    proc = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0 and "failed" not in proc.stderr, proc.stderr[-3000:]
    for name in ("north", "south"):
        for file in ("elements.tif", "prospectivity.tif", "targets.gpkg", "evaluation.html"):
            assert (tmp_path / "out" / name / file).exists(), (name, file)
