"""Run inside the real QGIS desktop (`qgis --code`), fresh profile: the user's path from the zip to a map.

1. install the `make package` zip with the Plugin Manager's own installFromZipFile;
2. check that janja:prospectivity refuses, naming the button, while onnxruntime is missing;
3. click Plugins ▸ Janja ▸ Install dependencies (pip sees PIP_* from the environment: a local wheelhouse);
4. open Plugins ▸ Janja ▸ Models…, give the local server's address, Download;
5. run janja:krige, janja:prospectivity and janja:workflow from their algorithm dialogs;
6. record every loaded layer's renderer (type, band, class count); screenshot dialogs and the map.

Writes RESULT_JSON as it goes (a failure still leaves what was done) and always quits QGIS.
Environment: ZIP_PATH, MODEL_SERVER_URL, SAMPLES, DEPOSITS, OUT_DIR, SHOTS_DIR, RESULT_JSON.
"""

import importlib.util
import json
import os
import time
import traceback
from pathlib import Path

from qgis.core import QgsApplication, QgsMapLayerType, QgsProject
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QAction, QTextEdit
from qgis.utils import active_plugins, iface, plugins

ENV = os.environ
OUT = Path(ENV["OUT_DIR"])
SHOTS = Path(ENV["SHOTS_DIR"])
RESULT = {"steps": [], "layers": {}, "runs": {}, "seconds": {}}


def save():
    Path(ENV["RESULT_JSON"]).write_text(json.dumps(RESULT, indent=1, default=str))


def wait_for(predicate, timeout):
    end = time.time() + timeout
    while not predicate() and time.time() < end:
        QgsApplication.processEvents()
        time.sleep(0.05)
    return predicate()


def shot(widget, name):
    path = SHOTS / name
    widget.grab().save(str(path))
    RESULT.setdefault("screenshots", []).append(str(path))


def action(object_name):
    found = [a for a in iface.mainWindow().findChildren(QAction) if a.objectName() == object_name]
    return found[0] if found else None


def describe_layer(layer):
    """Renderer type, band(s) and number of classes, as the user sees them in the Layers panel."""
    info = {"name": layer.name(), "source": layer.source()}
    node = QgsProject.instance().layerTreeRoot().findLayer(layer.id())
    info["drawn"] = bool(node is not None and node.isVisible())  # ticked, and every group above it ticked
    if layer.type() == QgsMapLayerType.RasterLayer:
        r = layer.renderer()
        info.update(kind="raster", band_count=layer.bandCount(), renderer=r.type() if r else None)
        if r is None:
            return info
        if r.type() == "singlebandpseudocolor":
            info["band"] = r.band()
            info["classes"] = len(r.shader().rasterShaderFunction().colorRampItemList())
        elif r.type() == "paletted":
            info["band"] = r.band()
            info["classes"] = len(r.classes())
        elif r.type() == "singlebandgray":
            info["band"] = r.grayBand()
            info["classes"] = 0
        elif r.type() == "multibandcolor":
            info["band"] = [r.redBand(), r.greenBand(), r.blueBand()]
            info["classes"] = 0
    else:
        r = layer.renderer()
        info.update(kind="vector", renderer=r.type() if r else None, features=layer.featureCount())
        info["classes"] = len(r.categories()) if hasattr(r, "categories") else (
            len(r.ranges()) if hasattr(r, "ranges") else 1)
    return info


def run_dialog(alg_id, params, shot_name, timeout=600):
    """Open the algorithm's own dialog, fill it in, press Run; return the results (or raise with the log)."""
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from processing.tools import dataobjects

    alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
    dialog = AlgorithmDialog(alg, parent=iface.mainWindow())
    dialog.setParameters(params)
    dialog.show()
    dialog.resize(1000, 760)
    QgsApplication.processEvents()
    shot(dialog, f"{shot_name}_dialog.png")
    filled = dialog.createProcessingParameters()
    ok, message = dialog.algorithm().checkParameterValues(filled, dataobjects.createContext())
    if not ok:  # the dialog would show a modal message box; report it instead
        dialog.close()
        raise RuntimeError(f"{alg_id} refused its parameters: {message}")
    done = {}
    dialog.algorithmFinished.connect(lambda success, results: done.update(ok=success, results=results))
    before = set(QgsProject.instance().mapLayers())
    start = time.time()
    dialog.runAlgorithm()
    finished = wait_for(lambda: "results" in done or (dialog.results() is not None and dialog.wasExecuted()),
                        timeout)
    RESULT["seconds"][alg_id] = round(time.time() - start, 1)
    wait_for(lambda: False, 1.0)  # let the post-processors style the loaded layers
    dialog.showLog()
    QgsApplication.processEvents()
    shot(dialog, f"{shot_name}_dialog_log.png")
    logs = [w for w in dialog.findChildren(QTextEdit) if w.objectName() == "txtLog"]
    log = logs[0].toPlainText() if logs else ""
    dialog.close()
    if not finished or not done.get("ok"):
        raise RuntimeError(f"{alg_id} did not finish from its dialog:\n{log[-3000:]}")
    loaded = [QgsProject.instance().mapLayer(i) for i in set(QgsProject.instance().mapLayers()) - before]
    RESULT["layers"][alg_id] = [describe_layer(lyr) for lyr in loaded if lyr is not None]
    RESULT["runs"][alg_id] = {k: v for k, v in done["results"].items() if isinstance(v, (str, int, float))}
    save()
    return done["results"]


def map_shot(name):
    canvas = iface.mapCanvas()
    layers = [lyr for lyr in QgsProject.instance().mapLayers().values()]
    if layers:
        extent = layers[0].extent()
        for lyr in layers[1:]:
            if lyr.crs() == layers[0].crs():
                extent.combineExtentWith(lyr.extent())
        canvas.setDestinationCrs(layers[0].crs())
        canvas.setExtent(extent)
    canvas.refresh()
    wait_for(lambda: False, 3.0)
    iface.mainWindow().resize(1280, 800)
    shot(iface.mainWindow(), name)


def main():
    try:
        from processing.core.ProcessingConfig import ProcessingConfig

        ProcessingConfig.setSettingValue(ProcessingConfig.KEEP_DIALOG_OPEN, True)
        ProcessingConfig.setSettingValue(ProcessingConfig.WARN_UNMATCHING_CRS, False)
        import pyplugin_installer

        start = time.time()
        pyplugin_installer.instance().installFromZipFile(ENV["ZIP_PATH"])
        RESULT["seconds"]["install_zip"] = round(time.time() - start, 1)
        RESULT["active_plugins"] = list(active_plugins)
        import janja

        RESULT["plugin_dir"] = str(Path(janja.__file__).parent)
        RESULT["steps"].append("installed zip")
        save()

        alg = QgsApplication.processingRegistry().createAlgorithmById("janja:prospectivity")
        from processing.tools import dataobjects

        RESULT["refusal_before_install"] = alg.checkParameterValues({}, dataobjects.createContext())[1]
        RESULT["onnxruntime_before"] = importlib.util.find_spec("onnxruntime") is not None
        save()

        plugin = plugins["janja"]
        start = time.time()
        action("JanjaInstallDependencies").trigger()
        wait_for(lambda: plugin.install_task is None, 420)
        RESULT["seconds"]["install_dependencies"] = round(time.time() - start, 1)
        RESULT["onnxruntime_after"] = importlib.util.find_spec("onnxruntime") is not None
        RESULT["install_error"] = getattr(plugin, "last_install_error", None)
        RESULT["steps"].append("installed dependencies")
        save()

        action("JanjaModelsAction").trigger()
        dialog = plugin.models_dialog
        dialog.server.setText(ENV["MODEL_SERVER_URL"])
        QgsApplication.processEvents()
        start = time.time()
        dialog.start_download()
        wait_for(lambda: dialog.task is None, 180)
        RESULT["seconds"]["download_model"] = round(time.time() - start, 1)
        RESULT["models_dialog_status"] = dialog.status.text()
        shot(dialog, "zip_models_dialog.png")
        dialog.close()
        RESULT["steps"].append("downloaded model")
        save()

        prospectivity = QgsApplication.processingRegistry().createAlgorithmById("janja:prospectivity")
        listed = prospectivity.parameterDefinition("INSTALLED_MODEL")
        RESULT["installed_model_options"] = listed.options()
        RESULT["installed_model_default"] = listed.defaultValue()

        fields = ["Au_ppm", "Ag_ppm", "Cu_ppm"]
        krige = run_dialog("janja:krige", {
            "INPUT": ENV["SAMPLES"], "FIELDS": fields, "CELL_SIZE": 250.0,
            "OUTPUT": str(OUT / "krige_elements.tif"), "VARIANCE": str(OUT / "krige_variance.tif"),
            "REPORT": str(OUT / "krige_report.html")}, "zip_krige")
        RESULT["steps"].append("krige")
        run_dialog("janja:spatial_anomaly", {  # the label-free map, no model or deposits needed
            "STACK": krige["OUTPUT"], "TARGET": 1, "SPACING": 0, "POINTS": ENV["SAMPLES"],
            "OUTPUT": str(OUT / "spatial_anomaly.tif"), "CLASSES": str(OUT / "spatial_anomaly_classes.tif"),
            "REPORT": str(OUT / "spatial_anomaly_report.html")}, "zip_spatial_anomaly")
        RESULT["steps"].append("spatial_anomaly")
        run_dialog("janja:prospectivity", {
            "STACK": krige["OUTPUT"], "STRIDE": 12, "PROBABILITY": str(OUT / "probability.tif"),
            "CLASSES": str(OUT / "classes.tif"), "TARGETS": str(OUT / "targets.gpkg"),
            "REPORT": str(OUT / "prospectivity_report.html")}, "zip_prospectivity")
        RESULT["steps"].append("prospectivity")
        map_shot("zip_map_prospectivity.png")
        for layer_id in list(QgsProject.instance().mapLayers()):
            QgsProject.instance().removeMapLayer(layer_id)
        wf = OUT / "workflow"
        wf.mkdir(exist_ok=True)
        run_dialog("janja:workflow", {
            "samples": ENV["SAMPLES"], "deposits": ENV["DEPOSITS"], "element_fields": fields, "stride": 12,
            "krige:elements": str(wf / "elements.tif"), "krige:variance": str(wf / "variance.tif"),
            "prospectivity:probability": str(wf / "probability.tif"),
            "prospectivity:classes": str(wf / "classes.tif"),
            "prospectivity:prospectivity_report": str(wf / "prospectivity_report.html"),
            "evaluate:evaluation_report": str(wf / "evaluation_report.html")}, "zip_workflow")
        RESULT["steps"].append("workflow")
        map_shot("zip_map_workflow.png")
    except Exception:  # noqa: BLE001 - report anything to the test, then quit
        RESULT["error"] = traceback.format_exc()
    save()
    for layer_id in list(QgsProject.instance().mapLayers()):
        QgsProject.instance().removeMapLayer(layer_id)
    QgsProject.instance().setDirty(False)
    QTimer.singleShot(0, iface.actionExit().trigger)


QTimer.singleShot(2000, main)
