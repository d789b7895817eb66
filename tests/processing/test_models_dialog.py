"""The desktop pieces in-process (offscreen Qt): the Models dialog downloads in a QgsTask, and the
Install dependencies task runs pip --target with local wheels (pip's own PIP_NO_INDEX/PIP_FIND_LINKS)."""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from test_dependencies import make_wheel  # noqa: E402
from test_download_model import NAME, plugin_module, served_model  # noqa: E402,F401 - fixture


def wait_for(predicate, timeout=60):
    from qgis.core import QgsApplication

    end = time.time() + timeout
    while not predicate() and time.time() < end:
        QgsApplication.processEvents()
        time.sleep(0.02)
    assert predicate(), "the task did not finish in time"


def test_models_dialog_downloads_verifies_and_lists(served_model):  # noqa: F811 - the imported fixture
    dialog_module = plugin_module("gui.models_dialog")
    installed = []
    dialog = dialog_module.ModelsDialog(on_installed=installed.append)
    assert dialog.table.rowCount() == 1 and dialog.table.item(0, 0).text() == f"{NAME} (recommended)"
    assert dialog.table.item(0, 7).text() == "no"
    dialog.server.setText(served_model["url"])
    task = dialog.start_download()
    wait_for(lambda: dialog.task is None)
    assert task.error is None and installed == [served_model["profile"] / "tinyclf.onnx"]
    assert dialog.table.item(0, 7).text() == "yes (profile)" and dialog.progress.value() == 100
    assert plugin_module("processing.profile").base_url_setting() == served_model["url"]
    dialog.close()


def test_models_dialog_shows_the_checksum_refusal(served_model):  # noqa: F811 - the imported fixture
    onnx = served_model["served"] / "tinyclf.onnx"
    onnx.write_bytes(bytes(b ^ 0xFF for b in onnx.read_bytes()))
    dialog = plugin_module("gui.models_dialog").ModelsDialog()
    dialog.server.setText(served_model["url"])
    dialog.start_download()
    wait_for(lambda: dialog.task is None)
    assert "does not match the catalogue's checksum" in dialog.status.text()
    assert dialog.table.item(0, 7).text() == "no" and dialog.download_button.isEnabled()
    assert not served_model["profile"].exists() or list(served_model["profile"].iterdir()) == []
    dialog.close()


def test_install_dependencies_task_with_a_local_index(qgis_app, tmp_path, monkeypatch):
    import numpy
    from qgis.core import QgsApplication

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "janjatestpkg", "1.0", requires=["numpy"])
    make_wheel(wheels, "numpy", numpy.__version__)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setattr(sys, "path", list(sys.path))
    done = []
    task = plugin_module("gui.tasks").InstallDependenciesTask(tmp_path / "python", ["janjatestpkg"],
                                                              on_done=done.append)
    QgsApplication.taskManager().addTask(task)
    wait_for(lambda: done)
    assert task.error is None, task.error
    assert (tmp_path / "python" / "janjatestpkg" / "__init__.py").exists()
    assert str(tmp_path / "python") in sys.path


def test_models_dialog_cancel_keeps_nothing(served_model):  # noqa: F811 - the imported fixture
    """A server that stalls before the body: Cancel during the transfer leaves the profile folder empty."""
    import http.server
    import threading

    release = threading.Event()

    class Stalling(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802 - http.server's name
            body = (served_model["served"] / self.path.split("/")[-1]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            release.wait(30)
            self.wfile.write(body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        dialog = plugin_module("gui.models_dialog").ModelsDialog()
        dialog.server.setText(f"http://127.0.0.1:{httpd.server_address[1]}")
        dialog.start_download()
        assert dialog.cancel_button.isEnabled()
        dialog.cancel_button.click()
        release.set()
        wait_for(lambda: dialog.task is None)
        assert dialog.status.text() == "Download cancelled: nothing was kept."
        assert not served_model["profile"].exists() or list(served_model["profile"].iterdir()) == []
        dialog.close()
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()
