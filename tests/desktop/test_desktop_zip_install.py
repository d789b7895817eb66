"""From the `make package` zip to styled maps in the real QGIS desktop (Xvfb), with no terminal.

Fresh profile, no venv on QGIS's path (onnxruntime really is missing at first). The zip is installed by
the Plugin Manager's own installFromZipFile; Install dependencies runs pip from the plugin's action
against a local wheelhouse (PIP_NO_INDEX/PIP_FIND_LINKS, filled once from PyPI); the classifier comes from
a local http.server through the Models dialog; janja:krige, janja:prospectivity and janja:workflow run
from their dialogs on a ~55 x 90 km part of the WA survey (326 samples, 250 m cells, stride 12).
Screenshots: out/zip_*.png, out/zip_report_*.png (headless Chromium).
"""

import functools
import hashlib
import http.server
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from testdata import REPO, SAMPLE_DATA, qgis_environment

sys.path.insert(0, str(REPO / "tools"))
import package  # noqa: E402

GPKG = SAMPLE_DATA / "wa_sample_data.gpkg"
BOX = ["117.6", "-34.0", "118.2", "-33.2"]  # lon/lat: 326 samples (fewer: Ag fits a pure nugget)
WHEELHOUSE = REPO / "out" / "wheelhouse" / f"py{sys.version_info[0]}{sys.version_info[1]}"  # one per QGIS Python
SHOTS = REPO / "out"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def wheelhouse():
    """onnxruntime and its dependencies as wheels for this Python, numpy pinned to Debian's (PyPI once)."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    if not list(WHEELHOUSE.glob("onnxruntime-*.whl")):
        import numpy

        constraints = WHEELHOUSE / "constraints.txt"
        constraints.write_text(f"numpy=={numpy.__version__}\n")
        subprocess.run(["/usr/bin/python3", "-m", "pip", "download", "--disable-pip-version-check", "-q",
                        "--only-binary=:all:", "-c", str(constraints), "-d", str(WHEELHOUSE), "onnxruntime"],
                       check=True, timeout=600)
    return WHEELHOUSE


@pytest.fixture
def model_server():
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(REPO / "models"))
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def subset(tmp_path, layer):
    out = tmp_path / f"{layer}.gpkg"
    subprocess.run(["ogr2ogr", "-f", "GPKG", "-spat", *BOX, str(out), str(GPKG), layer], check=True)
    return str(out)


def report_screenshot(html, png):
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={png}", "--window-size=1100,1600", Path(html).as_uri()],
                   check=True, capture_output=True, timeout=120)
    return png


def test_zip_to_maps_from_the_dialogs(tmp_path, model_server):
    assert shutil.which("xvfb-run"), "xvfb-run missing: run make setup"
    assert CHROMIUM, "chromium missing: run make setup"
    started = time.time()
    zip_path, zip_size, _ = package.build(tmp_path / "dist")
    assert zip_size < package.MAX_PLUGIN_REPO_BYTES
    env = qgis_environment(tmp_path, headless=False)
    env.pop("PYTHONPATH", None)  # QGIS's own Python only: onnxruntime is missing until the plugin installs it
    env.pop("QGIS_PLUGINPATH", None)  # only what the Plugin Manager installs (an empty value breaks it)
    profile = Path(env["QGIS_CUSTOM_CONFIG_PATH"]) / "profiles" / "default"
    (profile / "QGIS").mkdir(parents=True)
    (profile / "QGIS" / "QGIS3.ini").write_text("[PythonPlugins]\nprocessing=true\n"
                                                "[qgis]\nshowTips=false\ncheckVersion=false\n")
    out = tmp_path / "out"
    out.mkdir()
    env.update(ZIP_PATH=str(zip_path), MODEL_SERVER_URL=model_server, SAMPLES=subset(tmp_path, "samples"),
               DEPOSITS=subset(tmp_path, "au_sites"), OUT_DIR=str(out), SHOTS_DIR=str(SHOTS),
               RESULT_JSON=str(tmp_path / "result.json"), PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse()))
    SHOTS.mkdir(exist_ok=True)
    proc = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", "qgis", "--nologo", "--noversioncheck",
         "--code", str(Path(__file__).with_name("zip_install_check.py"))],
        env=env, capture_output=True, text=True, timeout=1500)
    result_file = tmp_path / "result.json"
    assert result_file.exists(), f"QGIS never ran the check (rc {proc.returncode})\n{proc.stderr[-3000:]}"
    result = json.loads(result_file.read_text())
    (SHOTS / "zip_desktop_result.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result["seconds"]), f"total {time.time() - started:.0f} s", f"zip {zip_size / 1e6:.1f} MB")

    # 1. the Plugin Manager installed the zip into the fresh profile and started the plugin
    assert "janja" in result.get("active_plugins", []), result.get("error")
    assert Path(result["plugin_dir"]).parent == profile / "python" / "plugins"
    # 2. before the dependencies: a sentence naming the button, not a traceback after minutes of work
    assert not result["onnxruntime_before"]
    assert "click Plugins ▸ Janja ▸ Install dependencies" in result["refusal_before_install"]
    # 3. Install dependencies put onnxruntime into the profile, numpy pinned to QGIS's
    assert result["onnxruntime_after"], result.get("install_error") or result.get("error")
    packages = profile / "janja" / "python"
    assert list(packages.glob("onnxruntime-*.dist-info"))
    import numpy

    assert [p.name for p in packages.glob("numpy-*.dist-info")] in ([], [f"numpy-{numpy.__version__}.dist-info"])
    # 4. the Models dialog fetched the classifier, verified, into the profile; prospectivity lists it by name
    model = profile / "janja" / "models" / "wa_au_inception.onnx"
    assert model.exists(), result.get("models_dialog_status")
    assert hashlib.sha256(model.read_bytes()).digest() == hashlib.sha256(
        (REPO / "models" / "wa_au_inception.onnx").read_bytes()).digest()
    assert result["installed_model_options"][result["installed_model_default"]] == "wa_au_inception (profile)"
    # 5. the three algorithms ran from their dialogs
    assert result["steps"][-1] == "workflow", result.get("error")
    # 6. every loaded layer is styled: renderer type, band and class count
    layers = [lyr for alg in result["layers"].values() for lyr in alg]
    assert layers
    problems = []
    for lyr in layers:
        if lyr["kind"] == "raster":
            one_band = isinstance(lyr.get("band"), int) and 1 <= lyr["band"] <= lyr["band_count"]
            if lyr["renderer"] not in ("singlebandpseudocolor", "paletted") or not one_band \
                    or lyr.get("classes", 0) < 3:
                problems.append(f"{lyr['name']}: {lyr['renderer']} band {lyr.get('band')} "
                                f"{lyr.get('classes')} classes ({Path(lyr['source']).name})")
        elif lyr["renderer"] is None:
            problems.append(f"{lyr['name']}: no renderer")
    assert "spatial_anomaly" in result["steps"], result.get("error")
    spatial = result["layers"]["janja:spatial_anomaly"]
    assert any("spatial_anomaly.tif" in lyr["source"] for lyr in spatial), spatial  # loaded (and styled, above)
    probability = [lyr for lyr in result["layers"]["janja:prospectivity"] if "probability" in lyr["source"]]
    classes = [lyr for lyr in result["layers"]["janja:prospectivity"] if "classes" in lyr["source"]]
    assert probability and classes
    # a later run's map is drawn, not filed into an unticked group of an earlier run (the variances)
    assert all(lyr["drawn"] for lyr in probability), [(lyr["name"], lyr["drawn"]) for lyr in probability]
    for lyr in probability + classes:
        if lyr.get("classes") != 3:
            problems.append(f"{lyr['name']}: {lyr.get('classes')} classes, expected low/moderate/high")
    # report pages, as a browser shows them
    for name, html in (("krige", out / "krige_report.html"), ("prospectivity", out / "prospectivity_report.html"),
                       ("spatial_anomaly", out / "spatial_anomaly_report.html")):
        assert html.exists()
        assert report_screenshot(html, SHOTS / f"zip_report_{name}.png").stat().st_size > 10_000
    assert not problems, "layers loaded unstyled or with the wrong classes:\n" + "\n".join(problems)
