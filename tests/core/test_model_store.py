"""Model download against a local http.server on 127.0.0.1: good file, checksum mismatch, broken-off
transfer, cancel, no network, placeholder address; and the installed-model list."""

import hashlib
import http.server
import json
import socket
import threading
from pathlib import Path

import pytest

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.inference import model_store as ms

REPO = Path(__file__).resolve().parents[2]


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves `directory`; paths under /broken/ send the full Content-Length but half the body."""

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path.startswith("/broken/"):
            body = (Path(self.directory) / self.path.split("/")[-1]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()

    def handler(*args, **kwargs):
        return Handler(*args, directory=str(served), **kwargs)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def make_entry(served, payload=b"\x08\x01" * 300_000, card=None):
    card = card or {"name": "tiny", "model_kind": "supervised_classifier"}
    files = []
    for name, data in (("tiny.json", json.dumps(card).encode()), ("tiny.onnx", payload)):
        (served / name).write_bytes(data)
        files.append(ms.ModelFile(name, hashlib.sha256(data).hexdigest(), len(data)))
    return ms.CatalogueEntry("tiny", "1", "supervised_classifier", "", ["Au_ppb"], 250.0, "MIT", files)


def test_good_download_is_verified_and_stored_with_progress(server, tmp_path):
    served, url = server
    entry = make_entry(served)
    seen = []
    path = ms.download_model(entry, url, tmp_path / "profile", progress=lambda f: seen.append(f) and False)
    assert path == tmp_path / "profile" / "tiny.onnx"
    assert path.read_bytes() == (served / "tiny.onnx").read_bytes()
    assert (tmp_path / "profile" / "tiny.json").exists()
    assert sorted(p.name for p in (tmp_path / "profile").iterdir()) == ["tiny.json", "tiny.onnx"]
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    assert [m.name for m in ms.installed_models([(tmp_path / "profile", "profile")])] == ["tiny"]


def test_partials_left_by_a_killed_download_are_cleared(server, tmp_path):
    served, url = server
    entry = make_entry(served)
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / ".tiny.onnx.dead0000.part").write_bytes(b"half")
    ms.download_model(entry, url, profile)
    assert sorted(p.name for p in profile.iterdir()) == ["tiny.json", "tiny.onnx"]


def test_checksum_mismatch_is_refused_and_nothing_kept(server, tmp_path):
    served, url = server
    entry = make_entry(served)
    (served / "tiny.onnx").write_bytes(b"\x09\x01" * 300_000)  # same size, other bytes
    with pytest.raises(JanjaInputError, match="does not match the catalogue's checksum.*nothing was kept"):
        ms.download_model(entry, url, tmp_path / "profile")
    assert list((tmp_path / "profile").iterdir()) == []


def test_a_previous_good_model_survives_a_failed_update(server, tmp_path):
    served, url = server
    entry = make_entry(served)
    ms.download_model(entry, url, tmp_path / "profile")
    good = (tmp_path / "profile" / "tiny.onnx").read_bytes()
    (served / "tiny.onnx").write_bytes(b"\x00" * len(good))
    with pytest.raises(JanjaInputError):
        ms.download_model(entry, url, tmp_path / "profile")
    assert (tmp_path / "profile" / "tiny.onnx").read_bytes() == good


def test_interrupted_download_keeps_nothing(server, tmp_path):
    served, url = server
    entry = make_entry(served)
    with pytest.raises(JanjaInputError, match="broke off|gave .* bytes"):
        ms.download_model(entry, url + "/broken", tmp_path / "profile")
    assert list((tmp_path / "profile").iterdir()) == []


def test_cancel_keeps_nothing(server, tmp_path):
    served, url = server
    entry = make_entry(served, payload=b"\x01" * (3 * ms.CHUNK))
    with pytest.raises(ms.DownloadCancelled):
        ms.download_model(entry, url, tmp_path / "profile", progress=lambda f: f > 0.2)
    assert list((tmp_path / "profile").iterdir()) == []


def test_no_network_is_a_clear_sentence(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    entry = ms.CatalogueEntry("tiny", "1", "supervised_classifier", "", [], 250.0, "MIT",
                              [ms.ModelFile("tiny.onnx", "0" * 64, 10)])
    with pytest.raises(JanjaInputError, match=r"Could not reach the model server 127\.0\.0\.1.*internet connection"):
        ms.download_model(entry, f"http://127.0.0.1:{port}", tmp_path / "profile", timeout=5)
    assert list((tmp_path / "profile").iterdir()) == []


def test_missing_file_on_server_names_the_status(server, tmp_path):
    served, url = server
    entry = make_entry(served)
    (served / "tiny.onnx").unlink()
    with pytest.raises(JanjaInputError, match="answered '404"):
        ms.download_model(entry, url, tmp_path / "profile")


def test_placeholder_address_refuses_before_any_request(tmp_path):
    catalogue = ms.load_catalogue()
    assert ms.is_placeholder(catalogue.base_url)
    with pytest.raises(JanjaInputError, match="no public download address yet.*JANJA_MODEL_BASE_URL"):
        ms.download_model(catalogue.recommended(), catalogue.base_url, tmp_path / "profile")
    assert not (tmp_path / "profile").exists() or list((tmp_path / "profile").iterdir()) == []


def test_base_url_order_parameter_env_setting_catalogue(monkeypatch):
    catalogue = ms.Catalogue("PLACEHOLDER-x", [])
    monkeypatch.delenv(ms.BASE_URL_ENV, raising=False)
    assert ms.resolve_base_url(catalogue) == "PLACEHOLDER-x"
    assert ms.resolve_base_url(catalogue, setting="http://org/s") == "http://org/s"
    monkeypatch.setenv(ms.BASE_URL_ENV, "http://org/env")
    assert ms.resolve_base_url(catalogue, setting="http://org/s") == "http://org/env"
    assert ms.resolve_base_url(catalogue, override="http://org/p", setting="http://org/s") == "http://org/p"


def test_shipped_catalogue_matches_the_repository_models():
    """The sizes and checksums in the catalogue are those of models/ (regenerate with tools/make_model_catalogue.py)."""
    catalogue = ms.load_catalogue()
    rec = catalogue.recommended()
    assert rec.name == "wa_au_inception" and rec.kind == "supervised_classifier"
    assert rec.elements == ["Au_ppm", "Ag_ppm", "Cu_ppm"] and rec.cell_size == 250.0
    assert rec.scores["protocol_auc_held_out_blocks"] == pytest.approx(0.8533)
    for entry in catalogue.entries:
        for f in entry.files:
            local = next(ms.REPO_MODELS_DIR.rglob(f.name))
            assert local.stat().st_size == f.size
            assert ms.sha256_of(local) == f.sha256


def test_installed_models_profile_first_and_recommended(tmp_path):
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / "wa_au_inception.onnx").write_bytes(b"x")
    (profile / "wa_au_inception.json").write_text(json.dumps({"name": "wa_au_inception"}))
    (profile / ".wa_au_inception.onnx.1234.part").write_bytes(b"x")
    models = ms.installed_models([(profile, "profile"), (ms.REPO_MODELS_DIR, "plugin")])
    names = [m.name for m in models]
    assert names.count("wa_au_inception") == 1 and "f-AnoGAN anomaly score" in names
    rec = ms.recommended_model(models, ms.load_catalogue())
    assert rec.where == "profile" and rec.path == profile / "wa_au_inception.onnx"
    anomaly = ms.recommended_model(models, ms.load_catalogue(), kind="unsupervised_anomaly")
    assert anomaly.path.name == "wa_anomaly_fanogan.onnx"
