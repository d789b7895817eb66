"""janja:download_model under qgis_process.bin (throwaway profile), from a local http.server on 127.0.0.1."""

import functools
import hashlib
import http.server
import json
import threading
from pathlib import Path

from testdata import PLUGIN_NAME, REPO, qgis_environment, run_qgis_process


def test_qgis_process_downloads_the_recommended_model_into_the_profile(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(REPO / "models"))
    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        env = qgis_environment(tmp_path)
        env["JANJA_MODEL_BASE_URL"] = f"http://127.0.0.1:{httpd.server_address[1]}"
        run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
        proc = run_qgis_process(["--json", "run", "janja:download_model"], env, timeout=300)
    finally:
        httpd.shutdown()
        httpd.server_close()
    results = json.loads(proc.stdout)["results"]
    installed = Path(results["MODEL_PATH"])
    assert results["MODEL_NAME"] == "wa_au_inception"
    assert installed == Path(env["QGIS_CUSTOM_CONFIG_PATH"]) / "profiles" / "default" / "janja" / "models" / \
        "wa_au_inception.onnx"
    assert hashlib.sha256(installed.read_bytes()).hexdigest() == hashlib.sha256(
        (REPO / "models" / "wa_au_inception.onnx").read_bytes()).hexdigest()
    assert installed.with_suffix(".json").exists()


def test_qgis_process_without_a_server_says_so(tmp_path):
    env = qgis_environment(tmp_path)
    env.pop("JANJA_MODEL_BASE_URL", None)
    run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
    proc = run_qgis_process(["run", "janja:download_model"], env, check=False, timeout=120)
    assert proc.returncode == 1
    text = proc.stdout + proc.stderr
    assert "no public download address yet" in text and "Traceback" not in text
