"""The workflow's QGIS project opens in the real desktop under Xvfb with every layer styled from its .qml.

A quick janja:workflow run (qgis_process, stand-in model at 3 km cells: the styling, not the model,
is under test here) and tools/demo_project.py make the project as `make demo` does; QGIS opens it,
the check script compares each layer's renderer with its sidecar .qml and saves a screenshot
(out/qgis_desktop_project.png); then it opens the shipped .model3 in the graphical modeler
(out/qgis_desktop_modeler.png) and every algorithm in the batch interface.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from testdata import PLUGIN_NAME, REPO, qgis_environment, run_qgis_process

sys.path.insert(0, str(REPO / "tools"))
from demo_project import PROJECT, workflow_args  # noqa: E402
from standin_model import build_standin_model  # noqa: E402


def make_project(tmp_path):
    env = qgis_environment(tmp_path / "qp")
    run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
    model = build_standin_model(tmp_path / "standin.onnx", 3000.0)
    out = tmp_path / "out"
    run_qgis_process(["run", "janja:workflow", "--", *workflow_args(out, model, 3000.0)], env, timeout=600)
    subprocess.run([sys.executable, str(REPO / "tools" / "demo_project.py"), "--out", str(out), "--model", str(model),
                    "--cell-size", "3000"], check=True, capture_output=True, timeout=300)
    return out / PROJECT


def test_desktop_opens_the_workflow_project_styled(tmp_path):
    assert shutil.which("xvfb-run"), "xvfb-run missing: run make setup"
    project = make_project(tmp_path)
    env = qgis_environment(tmp_path / "desktop", headless=False)
    ini_dir = Path(env["QGIS_CUSTOM_CONFIG_PATH"]) / "profiles" / "default" / "QGIS"
    ini_dir.mkdir(parents=True)
    (ini_dir / "QGIS3.ini").write_text(
        f"[PythonPlugins]\n{PLUGIN_NAME}=true\nprocessing=true\n[qgis]\nshowTips=false\ncheckVersion=false\n")
    out_dir = REPO / "out"
    out_dir.mkdir(exist_ok=True)
    screenshot = out_dir / "qgis_desktop_project.png"
    modeler_png = out_dir / "qgis_desktop_modeler.png"
    krige_out = tmp_path / "krige_dialog"
    krige_out.mkdir()
    env.update(KRIGE_OUT=str(krige_out), KRIGE_DIALOG_PNG=str(out_dir / "qgis_desktop_krige_dialog.png"),
               KRIGE_MAP_PNG=str(out_dir / "qgis_desktop_krige_layers.png"),
               KRIGE_SAMPLES=f"{REPO / 'resources' / 'sample_data' / 'wa_sample_data.gpkg'}|layername=samples")
    env.update(RESULT_JSON=str(tmp_path / "result.json"), SCREENSHOT_PNG=str(screenshot), PROJECT_QGZ=str(project),
               WORKFLOW_MODEL3=str(REPO / "resources" / "models" / "janja_workflow.model3"),
               MODELER_PNG=str(modeler_png))
    # A modal dialog (e.g. QGIS asking which datum transformation to use) blocks QGIS: the timeout turns that
    # into a failure, and the whole process group goes, so no QGIS is left running on a virtual display.
    proc = subprocess.Popen(
        ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", "qgis", "--nologo", "--noversioncheck",
         "--project", str(project), "--code", str(Path(__file__).with_name("desktop_project_check.py"))],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        _, stderr = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate()
    result_file = Path(env["RESULT_JSON"])
    assert result_file.exists(), f"QGIS never ran the check (rc {proc.returncode})\n{stderr[-3000:]}"
    result = json.loads(result_file.read_text())
    assert "error" not in result, result["error"]
    layers = {entry["name"]: entry for entry in result["layers"]}
    assert result["order"][0] == "Known deposits", result["order"]  # drawn on top
    assert {"Known deposits", "Target areas (ranked)", "Prospectivity probability", "Prospectivity classes",
            "Kriged elements: all bands", "Kriging variance: all bands"} <= set(layers)
    # the stacks as the toolbox loads them: one styled layer per element, in a group (sidecar = band 1)
    elements = [e for e in result["layers"] if e["group"] == "Kriged elements" and "all bands" not in e["name"]]
    variances = [e for e in result["layers"] if e["group"] == "Kriging variance" and "all bands" not in e["name"]]
    assert [e["name"] for e in elements][:2] == ["Au (ppm)", "Ag (ppm)"] and len(variances) == len(elements) >= 2
    assert [e["band"] for e in elements] == list(range(1, len(elements) + 1))
    for name, entry in layers.items():
        assert entry["valid"], name
        assert entry["qml"], f"{name}: no sidecar .qml"
        assert entry["renderer"] == entry["qml_renderer"], (name, entry)
        if entry["kind"] == "raster":
            assert entry["renderer"] == "singlebandpseudocolor", name
            assert entry["classes"] and (entry["band"] != 1 or entry["classes"] == entry["qml_classes"]), (name, entry)
    assert layers["Prospectivity classes"]["classes"] == 3  # low, moderate, high
    assert layers["Known deposits"]["renderer"] == "singleSymbol"
    assert result.get("canvas_drawn"), "the map canvas never finished drawing"
    assert result["screenshot"] and screenshot.stat().st_size > 20_000
    # the shipped model opens in the graphical modeler, every step found, valid as it is
    assert "modeler_error" not in result, result["modeler_error"]
    assert result["model_loaded"] and result["model_steps_resolved"] and result["workflow_registered"]
    assert result["model_valid"], result["model_issues"]
    assert result["model_steps"] == sorted(["janja:krige", "janja:prospectivity", "janja:evaluate", "janja:thresholds",
                                            "janja:fractal", "janja:evaluate"])
    assert result["modeler_screenshot"] and modeler_png.stat().st_size > 20_000
    # every algorithm, the workflow included, works in the batch interface: a widget for every input
    assert "batch_error" not in result, result["batch_error"]
    from janja_plugin.processing.provider import algorithm_classes

    expected = {"janja:" + cls().name() for cls in algorithm_classes()} | {"janja:workflow"}
    assert expected <= set(result["batch"])
    for alg_id, entry in result["batch"].items():
        assert "error" not in entry, (alg_id, entry["error"])
        assert entry["inputs"] and not entry["missing"], (alg_id, entry)
    # demo.qgz opens on the survey (it opened at 1:1 on a blank canvas)
    x0, y0, x1, y1 = result["opening_extent"]
    px0, py0, px1, py1 = result["probability_extent"]
    assert result["opening_scale"] > 10_000 and x0 <= px0 + 1 and x1 >= px1 - 1 and y0 <= py0 + 1 and y1 >= py1 - 1
    assert (x1 - x0) < 3 * (px1 - px0) or (y1 - y0) < 3 * (py1 - py0), result["opening_extent"]
    # janja:krige run from its dialog: help intact, cell size in metres, one styled layer per element
    assert "dialog_error" not in result, result["dialog_error"]
    assert "'<0.5' and '>1000'" in result["krige_help"]
    assert "degrees" not in result["cell_size_label"] and "metres" in result["cell_size_label"]
    assert result["krige_ok"], result
    loaded = {entry["name"]: entry for entry in result["krige_loaded"]}
    au, cu = loaded["Au (ppm)"], loaded["Cu (ppm)"]
    assert (au["group"], au["renderer"], au["band"], au["visible"]) == ("Kriged elements", "singlebandpseudocolor", 1,
                                                                       True)
    assert (cu["band"], cu["visible"]) == (2, False) and au["classes"] >= 5 and au["labels"][0].endswith(" ppm")
    rasters = [e for e in loaded.values() if e["renderer"] in ("singlebandpseudocolor", "multibandcolor",
                                                               "singlebandgray", "paletted")]
    assert len(rasters) == 6 and all(e["renderer"] == "singlebandpseudocolor" for e in rasters), loaded
    assert result["krige_dialog_screenshot"] and result["krige_map_screenshot"]
