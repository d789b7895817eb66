"""Write resources/models/janja_workflow.model3, the graphical-modeler model of the whole study.

samples + deposits -> janja:krige -> janja:prospectivity -> janja:evaluate, with the conventional
anomaly separation of the first element (median + k·MAD, C–A fractal) and the evaluation of the
kriged first element beside it. The file is committed; rerun this script after changing the model
here (or edit it in the graphical modeler and save it over the file):

    .venv/bin/python tools/make_workflow_model.py

It needs QGIS and the plugin's provider (the child algorithms' outputs become the model's outputs).
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "resources" / "models" / "janja_workflow.model3"
ELEMENTS = ["Au_ppm", "Ag_ppm", "Cu_ppm", "Pb_ppm", "Zn_ppm"]

HELP = (
    "The whole study in one run: stream-sediment samples and known deposits in, a prospectivity map, "
    "ranked target areas and their evaluation out, with the conventional anomaly maps alongside.\n\n"
    "1. janja:krige — ordinary (lognormal) kriging of each element field into an aligned element stack, "
    "with the kriging variance, the leave-one-out table and a report. The cell size must be the one the "
    "classifier was trained at (its model card's cell_size; the default is the bundled model's).\n"
    "2. janja:prospectivity — the ONNX classifier over the stack: probability, classes by the prediction–area "
    "intersection with the known deposits, ranked target polygons (Area I, II, ...), report. Stride k predicts "
    "every k-th cell and interpolates the rest (k² fewer windows).\n"
    "Before any window is classified the stack is compared with the model's training data (its card): a "
    "survey unlike it (another sample medium, another unit) is refused with both distributions named, unless "
    "'Extrapolate beyond the training data' is set, which marks every output as extrapolation; a constant map "
    "gives no target areas.\n"
    "3. janja:evaluate — the probability map against the known deposits: ROC/AUC, success-rate and "
    "prediction–area curves, with the kriged first element scored beside it by the same method (the baseline a "
    "learned map must beat). The known deposits given here are usually the model's own training sites: then "
    "every figure is labelled in-sample, not a validation, and the report leads with the model card's held-out "
    "numbers.\n"
    "Alongside, on the first element field (Au in the bundled survey): median + k·MAD classes "
    "(janja:thresholds), concentration–area classes (janja:fractal) and the same evaluation of the kriged "
    "map, so the classifier is scored beside the conventional methods.\n\n"
    "Inputs: sample points with element fields, known deposit points, the element fields (the model card's "
    "elements, in its order), cell size in metres, ONNX model (empty = the bundled one), stride, nearest "
    "samples per cell (0 = global kriging, as the bundled model was trained).\n"
    "Outputs: element stack, kriging variance, cross-validation table, prospectivity probability, classes, "
    "target areas, evaluation table, and the HTML reports; every raster loads styled.\n\n"
    "References: Journel & Huijbregts (1978) Mining Geostatistics; Szegedy et al. (2016) Rethinking the "
    "Inception architecture for computer vision, CVPR; Yousefi & Carranza (2015) Prediction–area (P–A) plot "
    "and C–A fractal analysis to classify and evaluate evidential maps for mineral prospectivity modeling, "
    "Computers & Geosciences 79; the Janja (SE Iran) study (2025) of GAN-augmented transfer learning on "
    "stream sediments."
)


def start_qgis():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, "/usr/share/qgis/python/plugins")
    sys.path.insert(0, str(REPO / "tools"))
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing
    from qgis_headless import make_plugin_folder

    Processing.initialize()
    sys.path.insert(0, str(make_plugin_folder(Path(tempfile.mkdtemp()) / "plugins")))
    import janja

    plugin = janja.classFactory(None)
    plugin.initProcessing()
    return app, plugin


def build_model():
    from qgis.core import (
        QgsApplication,
        QgsProcessing,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterBoolean,
        QgsProcessingParameterFeatureSource,
        QgsProcessingParameterField,
        QgsProcessingParameterFile,
        QgsProcessingParameterNumber,
    )
    from qgis.PyQt.QtCore import QPointF

    model = QgsProcessingModelAlgorithm("workflow", "Workflow", "workflow")
    model.setName("workflow")
    model.setGroup("Workflow")
    model.setHelpContent({"ALG_DESC": HELP, "ALG_CREATOR": "Janja plugin", "ALG_VERSION": "1"})

    def add_param(definition, x, y):
        component = QgsProcessingModelParameter(definition.name())
        component.setPosition(QPointF(x, y))
        model.addModelParameter(definition, component)

    add_param(QgsProcessingParameterFeatureSource(
        "samples", "Stream-sediment samples (points with element fields)", [QgsProcessing.TypeVectorPoint]), 120, 60)
    add_param(QgsProcessingParameterField(
        "element_fields", "Element fields (the model card's elements, in its order)", ELEMENTS, "samples",
        QgsProcessingParameterField.Any, allowMultiple=True), 120, 130)
    add_param(QgsProcessingParameterFeatureSource(
        "deposits", "Known deposits / occurrences (points)", [QgsProcessing.TypeVectorPoint]), 820, 60)
    add_param(QgsProcessingParameterNumber(
        "cell_size", "Cell size in metres (the model card's cell_size)", QgsProcessingParameterNumber.Double, 250.0,
        minValue=1.0), 340, 60)
    add_param(QgsProcessingParameterNumber(
        "neighbours", "Nearest samples per cell (0 = all samples, global kriging)",
        QgsProcessingParameterNumber.Integer, 0, minValue=0), 340, 130)
    add_param(QgsProcessingParameterFile(
        "onnx_model", "ONNX model with its card (empty = the bundled model)", extension="onnx", optional=True),
        560, 60)
    add_param(QgsProcessingParameterNumber(
        "stride", "Stride (predict every k-th cell, interpolate the rest)", QgsProcessingParameterNumber.Integer, 1,
        minValue=1, maxValue=16), 560, 130)
    add_param(QgsProcessingParameterBoolean(
        "extrapolate", "Extrapolate beyond the model's training data (every output marked as extrapolation)",
        False), 560, 200)

    def param(name):
        return QgsProcessingModelChildParameterSource.fromModelParameter(name)

    def child_output(child_id, output):
        return QgsProcessingModelChildParameterSource.fromChildOutput(child_id, output)

    def static(value):
        return QgsProcessingModelChildParameterSource.fromStaticValue(value)

    def add_child(child_id, alg_id, description, sources, outputs, x, y, depends=()):
        child = QgsProcessingModelChildAlgorithm(alg_id)
        child.setChildId(child_id)
        child.setDescription(description)
        child.setPosition(QPointF(x, y))
        for key, source in sources.items():
            child.addParameterSources(key, [source])
        # every other mandatory input as a static value, its default, as the modeler itself saves a step
        # (model.validate() and the modeler's Run refuse a step with a mandatory input left empty)
        algorithm = QgsApplication.processingRegistry().algorithmById(alg_id)
        for definition in algorithm.parameterDefinitions():
            if definition.name() in sources or definition.isDestination() or definition.defaultValue() is None:
                continue
            child.addParameterSources(definition.name(), [static(definition.defaultValue())])
        model_outputs = {}
        for i, (output, (name, description_)) in enumerate(outputs.items()):
            out = QgsProcessingModelOutput(name, description_)
            out.setChildId(child_id)
            out.setChildOutputName(output)
            out.setPosition(QPointF(x + 280, y - 45 + 30 * i))
            out.setMandatory(False)
            model_outputs[name] = out
        child.setModelOutputs(model_outputs)
        child.setDependencies(list(depends))
        model.addChildAlgorithm(child)

    add_child("krige", "janja:krige", "Krige the elements to a stack", {
        "INPUT": param("samples"), "FIELDS": param("element_fields"), "CELL_SIZE": param("cell_size"),
        "NEIGHBOURS": param("neighbours"), "TRANSFORM": static(0),
    }, {
        "OUTPUT": ("elements", "Element stack"), "VARIANCE": ("variance", "Kriging variance"),
        "CV_TABLE": ("cross_validation", "Kriging cross-validation"), "REPORT": ("kriging_report", "Kriging report"),
    }, 220, 260)
    add_child("prospectivity", "janja:prospectivity", "Prospectivity from the classifier", {
        "STACK": child_output("krige", "OUTPUT"), "MODEL": param("onnx_model"), "DEPOSITS": param("deposits"),
        "STRIDE": param("stride"), "EXTRAPOLATE": param("extrapolate"),
    }, {
        "PROBABILITY": ("probability", "Prospectivity probability"),
        "CLASSES": ("classes", "Prospectivity classes"), "TARGETS": ("targets", "Target areas"),
        "REPORT": ("prospectivity_report", "Prospectivity report"),
    }, 220, 460)
    add_child("evaluate", "janja:evaluate", "Evaluate the prospectivity map", {
        "SCORE_RASTER": child_output("prospectivity", "PROBABILITY"), "BAND": static(1),
        "DEPOSITS": param("deposits"), "BASELINE": child_output("krige", "OUTPUT"), "BASELINE_BAND": static(1),
    }, {
        "TABLE": ("evaluation_table", "Prospectivity evaluation curves"),
        "REPORT": ("evaluation_report", "Prospectivity evaluation report"),
    }, 220, 680)
    add_child("thresholds", "janja:thresholds", "First element: median + k·MAD", {
        "RASTER": child_output("krige", "OUTPUT"), "BAND": static(1), "METHOD": static(1), "K": static("1,2,3"),
    }, {
        "OUTPUT_RASTER": ("mad_classes", "First element: median + k·MAD classes"),
        "REPORT": ("thresholds_report", "Thresholds report"),
    }, 820, 360)
    add_child("fractal", "janja:fractal", "First element: concentration–area", {
        "RASTER": child_output("krige", "OUTPUT"), "BAND": static(1), "N_SEGMENTS": static(3),
    }, {
        "OUTPUT_RASTER": ("ca_classes", "First element: concentration–area classes"),
        "REPORT": ("fractal_report", "Concentration–area report"),
    }, 820, 520)
    add_child("evaluate_element", "janja:evaluate", "Evaluate the kriged first element", {
        "SCORE_RASTER": child_output("krige", "OUTPUT"), "BAND": static(1), "DEPOSITS": param("deposits"),
    }, {
        "TABLE": ("element_evaluation_table", "First element evaluation curves"),
        "REPORT": ("element_evaluation_report", "First element evaluation report"),
    }, 820, 680)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(TARGET))
    args = parser.parse_args()
    app, plugin = start_qgis()
    model = build_model()
    valid, issues = model.validate()
    if not valid:
        print("the model does not validate:\n  " + "\n  ".join(issues), file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not model.toFile(str(out)):
        print(f"could not write {out}", file=sys.stderr)
        return 1
    print(f"wrote {out}: {len(model.childAlgorithms())} steps, "
          f"{len(model.parameterDefinitions())} parameters incl. outputs")
    del model
    plugin.unload()
    app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
