"""The real QGIS desktop under Xvfb loads the plugin, and the Processing toolbox shows it."""

import json
import shutil
import subprocess
from pathlib import Path

from testdata import PLUGIN_NAME, REPO, qgis_environment


def test_desktop_qgis_loads_plugin(tmp_path):
    assert shutil.which("xvfb-run"), "xvfb-run missing: run make setup"
    env = qgis_environment(tmp_path, headless=False)
    ini_dir = Path(env["QGIS_CUSTOM_CONFIG_PATH"]) / "profiles" / "default" / "QGIS"
    ini_dir.mkdir(parents=True)
    (ini_dir / "QGIS3.ini").write_text(
        f"[PythonPlugins]\n{PLUGIN_NAME}=true\nprocessing=true\n"
        "[qgis]\nshowTips=false\ncheckVersion=false\n"
    )
    out_dir = REPO / "out"
    out_dir.mkdir(exist_ok=True)
    screenshot = out_dir / "qgis_desktop_toolbox.png"
    env["RESULT_JSON"] = str(tmp_path / "result.json")
    env["SCREENSHOT_PNG"] = str(screenshot)
    # A modal dialog (e.g. a plugin import error) blocks QGIS: the timeout turns that into a failure.
    proc = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", "qgis", "--nologo", "--noversioncheck",
         "--code", str(Path(__file__).with_name("desktop_check.py"))],
        env=env, capture_output=True, text=True, timeout=180,
    )
    result_file = Path(env["RESULT_JSON"])
    assert result_file.exists(), f"QGIS never ran the check (rc {proc.returncode})\n{proc.stderr[-3000:]}"
    result = json.loads(result_file.read_text())
    assert "error" not in result, result["error"]
    assert result["provider"] == "Geochemical prospectivity"
    assert PLUGIN_NAME in result["active_plugins"]
    from janja_plugin.processing.provider import algorithm_classes

    assert {"janja:" + cls().name() for cls in algorithm_classes()} <= set(result["algorithms"])
    assert result["screenshot"] and screenshot.stat().st_size > 10_000
