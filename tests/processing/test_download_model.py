"""janja:download_model and the installed-model list of janja:prospectivity / janja:workflow, in-process.

A local http.server on 127.0.0.1 serves a small real classifier; the catalogue, the profile's models
folder and the plugin's models/ folder are pointed at temporary folders.
"""

import hashlib
import http.server
import json
import socket
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_prospectivity import make_inputs  # noqa: E402 - the shared stack + model builder
from testdata import processing_error  # noqa: E402

NAME = "test window classifier"  # the card's name (tests/core/test_model_card.card_dict)


def plugin_module(name):
    """The plugin's module as QGIS loaded it (package `janja`), imported on first use."""
    import importlib

    return importlib.import_module(f"janja.janja_plugin.{name}")


@pytest.fixture
def served_model(qgis_app, tmp_path, monkeypatch):
    """A catalogue with one classifier served on 127.0.0.1; empty profile and plugin model folders."""
    stack, model, _, _ = make_inputs(tmp_path / "build")
    served = tmp_path / "served"
    served.mkdir()
    files = []
    for src, name in ((Path(model).with_suffix(".json"), "tinyclf.json"), (Path(model), "tinyclf.onnx")):
        data = src.read_bytes()
        (served / name).write_bytes(data)
        files.append({"name": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    catalogue = tmp_path / "catalogue.json"
    catalogue.write_text(json.dumps({"base_url": "PLACEHOLDER-test", "models": [{
        "name": NAME, "version": "1", "kind": "supervised_classifier", "elements": ["Au_ppb", "As_ppm"],
        "cell_size": 250.0, "licence": "test", "files": files, "recommended": True}]}))
    store = plugin_module("core.inference.model_store")
    monkeypatch.setattr(store, "CATALOGUE_PATH", catalogue)
    monkeypatch.setattr(store, "REPO_MODELS_DIR", tmp_path / "plugin_models")
    monkeypatch.setattr(plugin_module("processing.workflow"), "MODELS_DIR", tmp_path / "plugin_models")
    monkeypatch.setattr(plugin_module("processing.profile"), "profile_models_dir", lambda: tmp_path / "profile")
    monkeypatch.delenv(store.BASE_URL_ENV, raising=False)
    prof = plugin_module("processing.profile")
    saved_setting = prof.base_url_setting()
    prof.set_base_url_setting("")

    def handler(*args, **kwargs):
        return http.server.SimpleHTTPRequestHandler(*args, directory=str(served), **kwargs)

    http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{httpd.server_address[1]}", "served": served, "stack": stack,
           "profile": tmp_path / "profile"}
    httpd.shutdown()
    httpd.server_close()
    prof.set_base_url_setting(saved_setting)


def test_download_then_prospectivity_lists_it_by_name_and_uses_it(served_model, tmp_path):
    import processing

    algs = plugin_module("processing.download_model")
    result = processing.run(algs.DownloadModelAlgorithm(), {"MODEL": 0, "BASE_URL": served_model["url"]})
    installed = served_model["profile"] / "tinyclf.onnx"
    assert result["MODEL_PATH"] == str(installed) and result["MODEL_NAME"] == NAME
    assert installed.read_bytes() == (served_model["served"] / "tinyclf.onnx").read_bytes()

    alg = plugin_module("processing.prospectivity").ProspectivityAlgorithm()
    alg.initAlgorithm()
    listed = alg.parameterDefinition("INSTALLED_MODEL")
    assert listed.options() == [f"{NAME} (profile)"] and listed.defaultValue() == 0
    out = processing.run(alg, {"STACK": served_model["stack"], "PROBABILITY": str(tmp_path / "p.tif"),
                               "CLASSES": None, "TARGETS": None, "REPORT": None})
    assert Path(out["PROBABILITY"]).exists()

    workflow = plugin_module("processing.workflow").WorkflowAlgorithm()
    assert workflow.parameterDefinition("onnx_model").defaultValue() == str(installed)
    assert f"{NAME} (profile)" in workflow.parameterDefinition("onnx_model").description()


def test_base_url_from_the_environment(served_model, monkeypatch):
    import processing

    monkeypatch.setenv("JANJA_MODEL_BASE_URL", served_model["url"])
    processing.run(plugin_module("processing.download_model").DownloadModelAlgorithm(), {"MODEL": 0})
    assert (served_model["profile"] / "tinyclf.onnx").exists()


def test_checksum_mismatch_refused_nothing_kept(served_model):
    onnx = served_model["served"] / "tinyclf.onnx"
    onnx.write_bytes(bytes(b ^ 0xFF for b in onnx.read_bytes()))
    message = processing_error(plugin_module("processing.download_model").DownloadModelAlgorithm(),
                               {"MODEL": 0, "BASE_URL": served_model["url"]})
    assert "does not match the catalogue's checksum" in message and "nothing was kept" in message
    assert not served_model["profile"].exists() or list(served_model["profile"].iterdir()) == []


def test_no_network_and_placeholder_are_sentences(served_model):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    alg = plugin_module("processing.download_model").DownloadModelAlgorithm
    message = processing_error(alg(), {"MODEL": 0, "BASE_URL": f"http://127.0.0.1:{port}"})
    assert message.startswith("Could not reach the model server 127.0.0.1")
    message = processing_error(alg(), {"MODEL": 0})
    assert "no public download address yet" in message and "BASE_URL" in message


def test_no_model_installed_names_the_models_button(served_model, tmp_path):
    message = processing_error("janja:prospectivity", {"STACK": served_model["stack"], "PROBABILITY": str(
        tmp_path / "p.tif"), "CLASSES": None, "TARGETS": None, "REPORT": None})
    assert "No prospectivity model is installed: click Plugins ▸ Janja ▸ Models…" in message
    assert not (tmp_path / "p.tif").exists()


def test_missing_onnxruntime_refused_before_any_work_naming_the_button(served_model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed: find_spec gives None
    stack, model, _, _ = make_inputs(tmp_path)
    message = processing_error("janja:prospectivity", {"STACK": stack, "MODEL": model, "PROBABILITY": str(
        tmp_path / "p.tif"), "CLASSES": None, "TARGETS": None, "REPORT": None})
    assert "onnxruntime is needed for running the prospectivity classifier" in message
    assert "click Plugins ▸ Janja ▸ Install dependencies" in message
    assert not (tmp_path / "p.tif").exists()
    gpkg = Path(__file__).resolve().parents[2] / "resources" / "sample_data" / "wa_sample_data.gpkg"
    message = processing_error("janja:workflow", {
        "samples": f"{gpkg}|layername=samples", "deposits": f"{gpkg}|layername=au_sites",
        "element_fields": ["Au_ppm"], "onnx_model": model, "krige:elements": str(tmp_path / "e.tif")})
    assert "Install dependencies" in message and not (tmp_path / "e.tif").exists()
