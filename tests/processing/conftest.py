"""In-process PyQGIS: one QgsApplication per test session, cleared before exit (else rc 139).

The provider is registered through the plugin's real entry point (classFactory(None) then
initProcessing(), as qgis_process does), from a folder that holds the checkout as `janja`.
"""

import os
import sys

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, "/usr/share/qgis/python/plugins")


def pytest_configure(config):
    # A QGIS or numpy API the plugin calls that this version deprecates fails the test here (it is
    # gone in the next major); the QGIS matrix runs this tier on 3.22, 3.40 and 3.44.
    # The plugin is imported as `janja` (from its plugin folder) and `janja_plugin` (the checkout).
    config.addinivalue_line("filterwarnings", "error::DeprecationWarning:janja")


@pytest.fixture(scope="session")
def qgis_app(tmp_path_factory):
    from qgis.core import QgsApplication, QgsProject
    from testdata import make_plugin_folder

    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    sys.path.insert(0, str(make_plugin_folder(tmp_path_factory.mktemp("plugins"))))
    import janja

    plugin = janja.classFactory(None)
    plugin.initProcessing()
    app.janja_plugin = plugin
    yield app
    import gc

    # sip prints an exception raised in processAlgorithm with PyErr_Print, which keeps it in
    # sys.last_traceback: its frames hold the processing context and its layers. Those, and any other
    # layer a finished test left behind, must go before exitQgis, or the process crashes at exit (rc 139).
    sys.last_type = sys.last_value = sys.last_traceback = None
    gc.collect()
    QgsProject.instance().clear()
    plugin.unload()
    app.exitQgis()
