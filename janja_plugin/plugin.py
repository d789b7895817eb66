"""The QGIS plugin object: registers the Processing provider; on the desktop also the Janja menu and toolbar
(Models…, Install dependencies).

qgis_process calls classFactory(None) then initProcessing(); the desktop calls initGui() too.
"""

import sys
from pathlib import Path

from qgis.core import QgsApplication

# A development checkout (`make setup`) keeps pykrige/onnxruntime in .venv; QGIS's own Python does
# not see it. Appending (never prepending) keeps Debian's numpy/scipy first.
DEV_SITE_PACKAGES = sorted((Path(__file__).resolve().parents[1] / ".venv" / "lib").glob("python3*/site-packages"))
for _site in DEV_SITE_PACKAGES:
    if str(_site) not in sys.path:
        sys.path.append(str(_site))

# Packages that Install dependencies put in the profile (pip --target), after QGIS's own numpy/scipy.
PACKAGES_DIR = Path(QgsApplication.qgisSettingsDirPath()) / "janja" / "python"
if PACKAGES_DIR.is_dir() and str(PACKAGES_DIR) not in sys.path:
    sys.path.append(str(PACKAGES_DIR))

MENU = "&Janja"


class JanjaPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.actions = []
        self.toolbar = None
        self.models_dialog = None
        self.install_task = None
        self.last_install_error = None

    def initProcessing(self):  # noqa: N802 - name fixed by QGIS
        if self.provider is not None:
            return
        from .processing.provider import JanjaProvider

        self.provider = JanjaProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 - name fixed by QGIS
        from qgis.PyQt.QtGui import QIcon
        from qgis.PyQt.QtWidgets import QAction

        self.initProcessing()
        icon = QIcon(str(Path(__file__).resolve().parents[1] / "resources" / "icons" / "janja.svg"))
        self.toolbar = self.iface.addToolBar("Janja")
        self.toolbar.setObjectName("JanjaToolbar")
        for text, slot, name in (("Models…", self.show_models, "JanjaModelsAction"),
                                 ("Install dependencies", self.install_dependencies, "JanjaInstallDependencies")):
            action = QAction(icon, text, self.iface.mainWindow())
            action.setObjectName(name)
            action.triggered.connect(slot)
            self.iface.addPluginToMenu(MENU, action)
            self.toolbar.addAction(action)
            self.actions.append(action)

    def show_models(self):
        from .gui.models_dialog import ModelsDialog

        if self.models_dialog is None:
            self.models_dialog = ModelsDialog(self.iface.mainWindow(), on_installed=self.refresh_algorithms)
        self.models_dialog.fill()
        self.models_dialog.show()
        self.models_dialog.raise_()
        return self.models_dialog

    def refresh_algorithms(self, _path=None):
        """Rebuild the algorithms so janja:prospectivity and janja:workflow list a newly installed model."""
        if self.provider is not None:
            self.provider.refreshAlgorithms()

    def install_dependencies(self, _checked=False, requirements=None):
        """pip install --target <profile>/janja/python in a QgsTask; the message bar shows the outcome."""
        from qgis.core import Qgis

        from .gui.tasks import InstallDependenciesTask

        if self.install_task is not None:
            return self.install_task
        self.install_task = InstallDependenciesTask(PACKAGES_DIR, requirements, on_done=self.install_done)
        self.iface.messageBar().pushMessage(
            "Janja", f"Installing Python packages into {PACKAGES_DIR} (Task Manager shows progress)…", Qgis.Info, 10)
        QgsApplication.taskManager().addTask(self.install_task)
        return self.install_task

    def install_done(self, task):
        from qgis.core import Qgis

        self.last_install_error = task.error
        if task.error:
            self.iface.messageBar().pushMessage("Janja", task.error, Qgis.Critical, 0)
        else:
            self.iface.messageBar().pushMessage(
                "Janja", "Python packages installed; the algorithms can use them now.", Qgis.Success, 10)
        self.install_task = None

    def unload(self):
        for action in self.actions:
            self.iface.removePluginMenu(MENU, action)
            if self.toolbar is not None:
                self.toolbar.removeAction(action)
        self.actions = []
        if self.toolbar is not None:
            self.toolbar.deleteLater()
            self.toolbar = None
        if self.models_dialog is not None:
            self.models_dialog.close()
            self.models_dialog = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
