"""Run inside the real QGIS desktop (`qgis --project demo.qgz --code ...`): is every layer styled as its .qml says?

Compares each layer's renderer with its sidecar .qml (renderer type; for rasters the colour classes),
reads the legend order, waits for the canvas to draw, saves a screenshot and quits. Writes
RESULT_JSON and SCREENSHOT_PNG (paths from the environment); always quits QGIS.
"""

import json
import os
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

from qgis.core import QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.PyQt.QtCore import QTimer
from qgis.utils import iface


def qml_facts(path):
    """(renderer type, number of colour classes or None) as written in a .qml file."""
    root = ET.parse(path).getroot()
    raster = root.find(".//rasterrenderer")
    if raster is not None:
        items = raster.findall(".//colorrampshader/item")
        return raster.get("type"), len(items) if items else None
    vector = root.find(".//renderer-v2")
    return (vector.get("type") if vector is not None else None), None


def layer_facts(layer):
    renderer = layer.renderer()
    if renderer is None:
        return None, None
    if isinstance(layer, QgsRasterLayer):
        classes = None
        shader = getattr(renderer, "shader", lambda: None)()
        if shader is not None and shader.rasterShaderFunction() is not None:
            classes = len(shader.rasterShaderFunction().colorRampItemList())
        return renderer.type(), classes
    return renderer.type(), None


def check():
    result = {"ok": False, "layers": []}
    try:
        project = QgsProject.instance()
        if not project.mapLayers():
            project.read(os.environ["PROJECT_QGZ"])
        result["project"] = project.fileName()
        result["order"] = [layer.name() for layer in project.layerTreeRoot().layerOrder()]
        for node in project.layerTreeRoot().findLayers():
            layer = node.layer()
            source = Path(layer.source().split("|")[0])
            qml = source.with_suffix(".qml")
            entry = {"name": layer.name(), "valid": layer.isValid(), "visible": node.isVisible(),
                     "kind": "raster" if isinstance(layer, QgsRasterLayer) else
                     "vector" if isinstance(layer, QgsVectorLayer) else "other",
                     "qml": str(qml) if qml.exists() else None,
                     "group": node.parent().name() if node.parent() is not None else ""}
            entry["renderer"], entry["classes"] = layer_facts(layer)
            entry["band"] = getattr(layer.renderer(), "band", lambda: None)() if layer.renderer() else None
            if qml.exists():
                entry["qml_renderer"], entry["qml_classes"] = qml_facts(qml)
            result["layers"].append(entry)
        canvas = iface.mapCanvas()
        # what the user sees on opening demo.qgz: the canvas is not moved here
        extent = canvas.extent()
        result["opening_scale"] = canvas.scale()
        result["opening_extent"] = [extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()]
        probability = next((n.layer() for n in project.layerTreeRoot().findLayers()
                            if n.layer().name().startswith("Prospectivity probability")), None)
        if probability is not None:
            e = probability.extent()
            result["probability_extent"] = [e.xMinimum(), e.yMinimum(), e.xMaximum(), e.yMaximum()]
        canvas.mapCanvasRefreshed.connect(lambda: result.setdefault("canvas_drawn", True))
        canvas.refresh()
        QTimer.singleShot(4000, lambda: finish(result))
    except Exception:  # noqa: BLE001 - report anything to the test, then quit
        result["error"] = traceback.format_exc()
        finish(result)


def finish(result):
    try:
        window = iface.mainWindow()
        result["screenshot"] = window.grab().save(os.environ["SCREENSHOT_PNG"])
        result["ok"] = True
    except Exception:  # noqa: BLE001
        result["error"] = traceback.format_exc()
    try:
        open_in_modeler(result)
    except Exception:  # noqa: BLE001
        result["modeler_error"] = traceback.format_exc()
    try:
        open_batch_dialogs(result)
    except Exception:  # noqa: BLE001
        result["batch_error"] = traceback.format_exc()
    try:
        run_krige_dialog(result)
    except Exception:  # noqa: BLE001
        result["dialog_error"] = traceback.format_exc()
    with open(os.environ["RESULT_JSON"], "w") as fh:
        json.dump(result, fh)
    # Layers in the system temp folder count as temporary in 3.22, and quitting would ask whether to drop them.
    QgsProject.instance().clear()
    QgsProject.instance().setDirty(False)
    QTimer.singleShot(0, iface.actionExit().trigger)


def run_krige_dialog(result):
    """janja:krige from its own dialog, as a user runs it (background task, 'Open output file' ticked): the
    help panel, a screenshot, and every layer the run loads with its renderer, band and classes."""
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from qgis.core import QgsApplication
    from qgis.PyQt.QtCore import QEventLoop

    out = os.environ["KRIGE_OUT"]
    alg = QgsApplication.processingRegistry().createAlgorithmById("janja:krige")
    dialog = AlgorithmDialog(alg, parent=iface.mainWindow())
    dialog.setParameters({
        "INPUT": os.environ["KRIGE_SAMPLES"], "FIELDS": ["Au_ppm", "Cu_ppm"], "CELL_SIZE": 2000.0,
        "NEIGHBOURS": 16, "OUTPUT": f"{out}/stack.tif", "VARIANCE": f"{out}/variance.tif",
        "CV_TABLE": f"{out}/cv.gpkg", "REPORT": f"{out}/report.html"})
    dialog.resize(1100, 760)
    dialog.show()
    QgsApplication.processEvents()
    from qgis.PyQt.QtWidgets import QTextBrowser

    help_panel = dialog.findChild(QTextBrowser, "textShortHelp")
    result["krige_help"] = help_panel.toPlainText() if help_panel is not None else None
    wrapper = dialog.mainWidget().wrappers["CELL_SIZE"]
    result["cell_size_widget"] = type(wrapper.wrappedWidget()).__name__
    result["cell_size_label"] = wrapper.wrappedLabel().text() if wrapper.wrappedLabel() else ""
    result["krige_dialog_screenshot"] = dialog.grab().save(os.environ["KRIGE_DIALOG_PNG"])
    before = {layer.id() for layer in QgsProject.instance().mapLayers().values()}
    loop = QEventLoop()
    dialog.algorithmFinished.connect(lambda ok, _: (result.__setitem__("krige_ok", ok), loop.quit()))
    QTimer.singleShot(150_000, loop.quit)
    dialog.runAlgorithm()
    if "krige_ok" not in result:
        loop.exec_()
    loaded = []
    for node in QgsProject.instance().layerTreeRoot().findLayers():
        layer = node.layer()
        if layer.id() in before:
            continue
        renderer = layer.renderer()
        entry = {"name": layer.name(), "group": node.parent().name() if node.parent() else "",
                 "visible": node.isVisible(), "renderer": renderer.type() if renderer else None}
        if isinstance(layer, QgsRasterLayer) and renderer is not None and renderer.type() == "singlebandpseudocolor":
            items = renderer.shader().rasterShaderFunction().colorRampItemList()
            entry.update(band=renderer.band(), classes=len(items), labels=[i.label for i in items])
        loaded.append(entry)
    result["krige_loaded"] = loaded
    dialog.close()
    # the map as the user now sees it: the new group on top, the first element drawn
    for layer in QgsProject.instance().mapLayers().values():
        node = QgsProject.instance().layerTreeRoot().findLayer(layer.id())
        if layer.id() in before and node is not None:
            node.setItemVisibilityChecked(False)
    au = next((n.layer() for n in QgsProject.instance().layerTreeRoot().findLayers() if n.layer().name() == "Au (ppm)"),
              None)
    if au is not None:
        canvas = iface.mapCanvas()
        canvas.setExtent(au.extent())
        wait = QEventLoop()
        canvas.mapCanvasRefreshed.connect(wait.quit)
        QTimer.singleShot(10_000, wait.quit)
        canvas.refresh()
        wait.exec_()
        result["krige_map_screenshot"] = iface.mainWindow().grab().save(os.environ["KRIGE_MAP_PNG"])


def open_batch_dialogs(result):
    """Every janja algorithm in the Processing batch interface: a widget for each input in the first row."""
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from qgis.core import QgsApplication

    result["batch"] = {}
    for alg in QgsApplication.processingRegistry().providerById("janja").algorithms():
        entry = {}
        try:
            dialog = BatchAlgorithmDialog(alg.create(), parent=iface.mainWindow())
            panel = dialog.mainWidget()
            inputs = [p.name() for p in alg.parameterDefinitions() if not p.isDestination()]
            entry["inputs"] = len(inputs)
            entry["missing"] = [name for name in inputs if panel.wrappers[0][panel.parameter_to_column[name]] is None]
            entry["rows"] = panel.batchRowCount()
            dialog.close()
            dialog.deleteLater()
        except Exception:  # noqa: BLE001 - e.g. a parameter type with no batch widget
            entry["error"] = traceback.format_exc()[-800:]
        result["batch"][alg.id()] = entry


def open_in_modeler(result):
    """The shipped .model3 in the graphical modeler: its steps resolve, it validates, it is shown."""
    from processing.modeler.ModelerDialog import ModelerDialog
    from qgis.core import QgsApplication, QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    result["model_loaded"] = model.fromFile(os.environ["WORKFLOW_MODEL3"])
    result["model_steps"] = sorted(c.algorithmId() for c in model.childAlgorithms().values())
    result["model_steps_resolved"] = all(c.algorithm() is not None for c in model.childAlgorithms().values())
    valid, issues = model.validate()
    result["model_valid"], result["model_issues"] = valid, list(issues)
    registered = QgsApplication.processingRegistry().algorithmById("janja:workflow")
    result["workflow_registered"] = registered is not None
    dialog = ModelerDialog.create(model)
    dialog.resize(1280, 800)
    dialog.show()
    QgsApplication.processEvents()
    result["modeler_screenshot"] = dialog.grab().save(os.environ["MODELER_PNG"])
    dialog.setDirty(False) if hasattr(dialog, "setDirty") else None
    dialog.close()


iface.mainWindow().resize(1280, 800)
QTimer.singleShot(3000, check)
