"""The QGIS plugin object: registers the Processing provider, nothing else.

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


class JanjaPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802 - name fixed by QGIS
        if self.provider is not None:
            return
        from .processing.provider import JanjaProvider

        self.provider = JanjaProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 - name fixed by QGIS
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
