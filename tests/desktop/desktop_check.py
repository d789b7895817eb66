"""Run inside the real QGIS desktop (`qgis --code`): check the plugin's provider, screenshot, quit.

Writes RESULT_JSON (path from the environment) and SCREENSHOT_PNG; always quits QGIS.
"""

import json
import os
import traceback

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QTimer
from qgis.utils import active_plugins, iface, plugins


def check_and_quit():
    result = {"ok": False}
    try:
        provider = QgsApplication.processingRegistry().providerById("janja")
        result["active_plugins"] = list(active_plugins)
        result["provider"] = provider.name() if provider else None
        result["algorithms"] = sorted(a.id() for a in provider.algorithms()) if provider else []
        toolbox = getattr(plugins.get("processing"), "toolbox", None)
        if toolbox is not None:
            toolbox.setVisible(True)
            toolbox.raise_()
            toolbox.searchBox.setText("janja")  # filter the tree to our provider
        result["toolbox_open"] = bool(toolbox and toolbox.isVisible())
        QTimer.singleShot(1500, lambda: finish(result))
    except Exception:  # noqa: BLE001 - report anything to the test, then quit
        result["error"] = traceback.format_exc()
        finish(result)


def finish(result):
    try:
        window = iface.mainWindow()
        window.resize(1280, 800)
        result["screenshot"] = window.grab().save(os.environ["SCREENSHOT_PNG"])
        result["ok"] = result.get("provider") is not None
    except Exception:  # noqa: BLE001
        result["error"] = traceback.format_exc()
    with open(os.environ["RESULT_JSON"], "w") as fh:
        json.dump(result, fh)
    QTimer.singleShot(0, iface.actionExit().trigger)


QTimer.singleShot(2000, check_and_quit)
