"""QGIS plugin entry point: QGIS and qgis_process call classFactory(iface); iface is None in qgis_process."""


def classFactory(iface):  # noqa: N802 - name fixed by QGIS
    from .janja_plugin.plugin import JanjaPlugin

    return JanjaPlugin(iface)
