"""Background work for the desktop: model download and dependency install as QgsTasks (progress, cancel).

Each task keeps its outcome (path or error sentence) and calls `on_done(task)` in the main thread.
"""

from qgis.core import QgsTask

from ..core import dependencies
from ..core.errors import JanjaInputError
from ..core.inference import model_store


class ModelDownloadTask(QgsTask):
    def __init__(self, entry, base_url, dest_dir, on_done=None):
        super().__init__(f"Downloading model {entry.name}", QgsTask.CanCancel)
        self.entry, self.base_url, self.dest_dir, self.on_done = entry, base_url, dest_dir, on_done
        self.path = None
        self.error = None

    def run(self):
        def progress(fraction):
            self.setProgress(100.0 * fraction)
            return self.isCanceled()

        try:
            self.path = model_store.download_model(self.entry, self.base_url, self.dest_dir, progress=progress)
            return True
        except model_store.DownloadCancelled:
            self.error = "Download cancelled: nothing was kept."
        except JanjaInputError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a task must never raise into the task manager
            self.error = f"The download failed unexpectedly ({type(exc).__name__}: {exc}); nothing was kept."
        return False

    def finished(self, result):
        if self.error is None and not result:
            self.error = "Download cancelled: nothing was kept."
        if self.on_done is not None:
            self.on_done(self)


class InstallDependenciesTask(QgsTask):
    """pip install --target <profile>/janja/python (numpy pinned to QGIS's); pip's own PIP_* variables apply."""

    def __init__(self, target, requirements=None, on_done=None, extra_args=()):
        super().__init__("Installing Python packages for Janja", QgsTask.CanCancel)
        self.target, self.requirements, self.on_done, self.extra_args = target, requirements, on_done, extra_args
        self.log = ""
        self.error = None
        self.last_line = ""

    def run(self):
        def progress(fraction, line):
            self.setProgress(100.0 * fraction)
            self.last_line = line
            return self.isCanceled()

        try:
            self.log = dependencies.install(self.target, self.requirements, progress=progress,
                                            extra_args=self.extra_args)
            return True
        except dependencies.InstallCancelled as exc:
            self.error = str(exc)
        except JanjaInputError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a task must never raise into the task manager
            self.error = f"The install failed unexpectedly ({type(exc).__name__}: {exc})."
        return False

    def finished(self, result):
        if result:
            dependencies.add_to_path(self.target)  # the task ran in a thread; make sure the main one sees it
        elif self.error is None:
            self.error = "Install cancelled; run Install dependencies again to finish it."
        if self.on_done is not None:
            self.on_done(self)
