"""janja:workflow — the graphical-modeler model shipped in resources/models/janja_workflow.model3.

The provider offers the .model3 as an algorithm of its own (id janja:workflow), so it runs from the
toolbox, the batch interface, the modeler and `qgis_process.bin run janja:workflow`. The file stays
the single source: open it in the modeler (Model → Open Model), edit, save as your own model.

Two things are added to the plain file here:
- defaults from the bundled classifier: its card's cell size (the kriging cell size must be the one
  the model was trained at), its elements (the fields to krige, in the card's order) and its path;
- defaults applied headless: QGIS 3.22 hands a child algorithm nothing for a model input left out
  of a `processing.run`/`qgis_process` call (the dialog fills them in), so the kriging would fall
  back to its automatic cell size. Missing inputs get their defaults before the model runs.
"""

import json
from pathlib import Path

from qgis.core import QgsProcessingException, QgsProcessingModelAlgorithm

from ..core import dependencies
from . import profile

WORKFLOW_PATH = Path(__file__).resolve().parents[2] / "resources" / "models" / "janja_workflow.model3"
MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


def bundled_classifier(models_dir=None):
    """The first models/*.onnx whose card says it is a supervised classifier (not an anomaly scorer), or None."""
    for path in sorted(Path(models_dir or MODELS_DIR).glob("*.onnx")):
        card = bundled_card(path)
        if card is None or card.get("model_kind", "supervised_classifier") == "supervised_classifier":
            return path
    return None


def bundled_card(model_path):
    """The card JSON beside `model_path`, or None (the card inside the .onnx is read when the model runs)."""
    if model_path is None:
        return None
    card = Path(model_path).with_suffix(".json")
    try:
        return json.loads(card.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class WorkflowAlgorithm(QgsProcessingModelAlgorithm):
    """The shipped .model3 with defaults from the bundled model; missing inputs get their defaults."""

    def __init__(self):
        super().__init__()
        self.loaded = self.fromFile(str(WORKFLOW_PATH))
        self.apply_bundled_defaults()

    def apply_bundled_defaults(self):
        """Defaults from the recommended installed classifier (QGIS profile first, then models/)."""
        installed = profile.installed_models("supervised_classifier", plugin_models=MODELS_DIR)
        definition = self.parameterDefinition("onnx_model")
        names = ", ".join(m.label() for m in installed) or f"none yet: {dependencies.MODELS_BUTTON}"
        definition.setDescription(f"{definition.description()} (installed: {names})")
        recommended = profile.recommended_model(plugin_models=MODELS_DIR)
        if recommended is None:
            return
        model = recommended.path
        definition.setDefaultValue(str(model))
        card = bundled_card(model)
        if card:
            if card.get("cell_size"):
                self.parameterDefinition("cell_size").setDefaultValue(float(card["cell_size"]))
            names = [e.get("name") for e in card.get("elements", []) if e.get("name")]
            if names:
                self.parameterDefinition("element_fields").setDefaultValue(names)

    def createInstance(self):
        return WorkflowAlgorithm()

    def tags(self):
        from .base import SEARCH_TAGS

        return ["janja", "workflow", "model", *SEARCH_TAGS["interpolation"], *SEARCH_TAGS["prospectivity"],
                *SEARCH_TAGS["evaluation"]]

    def shortHelpString(self):
        from .base import help_text

        return help_text(super().shortHelpString() or "")

    def displayName(self):  # the id stays janja:workflow (the model's name)
        return "Whole workflow: krige → prospectivity → evaluate"

    def readiness_problem(self, parameters):
        """Refuse before the 46 s of kriging when the classifier cannot run (package or model missing)."""
        problem = dependencies.missing_sentence(["onnxruntime"], "the workflow's prospectivity step")
        if problem:
            return problem
        if parameters.get("onnx_model") in (None, "") and self.parameterDefinition("onnx_model").defaultValue() is None:
            return (f"No prospectivity model is installed: click {dependencies.MODELS_BUTTON} (or run "
                    "janja:download_model) to download one, or give an .onnx file with its model card.")
        return None

    def checkParameterValues(self, parameters, context):  # noqa: N802 - name fixed by QGIS
        problem = self.readiness_problem(parameters)
        if problem:
            return False, problem
        return super().checkParameterValues(parameters, context)

    def processAlgorithm(self, parameters, context, feedback):
        problem = self.readiness_problem(parameters)
        if problem:
            raise QgsProcessingException(problem)
        filled = dict(parameters)
        for definition in self.parameterDefinitions():
            if definition.isDestination():
                continue
            if filled.get(definition.name()) in (None, "") and definition.defaultValue() is not None:
                filled[definition.name()] = definition.defaultValue()
        return super().processAlgorithm(filled, context, feedback)
