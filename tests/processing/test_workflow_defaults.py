"""janja:workflow in-process: defaults from the bundled model's card, filled in when a headless call leaves them out.

The bundled model is simulated by a stand-in (tools/standin_model.py) in a temporary models folder.
"""

import sys

from testdata import REPO, SAMPLE_DATA

sys.path.insert(0, str(REPO / "tools"))
from standin_model import build_standin_model  # noqa: E402

GPKG = SAMPLE_DATA / "wa_sample_data.gpkg"


def workflow_module():
    return sys.modules["janja.janja_plugin.processing.workflow"]


def test_defaults_come_from_the_bundled_models_card(qgis_app, tmp_path, monkeypatch):
    import processing
    import rasterio

    model = build_standin_model(tmp_path / "models" / "standin.onnx", 4000.0, elements=("Au_ppm", "Ag_ppm"))
    monkeypatch.setattr(workflow_module(), "MODELS_DIR", tmp_path / "models")
    alg = workflow_module().WorkflowAlgorithm()
    assert alg.loaded and alg.name() == "workflow"
    assert alg.parameterDefinition("cell_size").defaultValue() == 4000.0
    assert alg.parameterDefinition("element_fields").defaultValue() == ["Au_ppm", "Ag_ppm"]
    assert alg.parameterDefinition("onnx_model").defaultValue() == str(model)
    # left out of the call: cell size and model come from the defaults (QGIS 3.22 alone would give the steps nothing)
    out = tmp_path / "out"
    out.mkdir()
    result = processing.run(alg, {
        "samples": f"{GPKG}|layername=samples", "deposits": f"{GPKG}|layername=au_sites",
        "element_fields": ["Au_ppm", "Ag_ppm"], "krige:elements": str(out / "e.tif"),
        "krige:variance": str(out / "v.tif"), "prospectivity:probability": str(out / "p.tif")})
    with rasterio.open(result["prospectivity:probability"]) as src:
        assert src.res == (4000.0, 4000.0)
    with rasterio.open(result["krige:elements"]) as src:
        assert src.descriptions == ("Au_ppm", "Ag_ppm")


def test_registered_workflow_is_the_shipped_model(qgis_app):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("janja:workflow")
    assert alg is not None and alg.group() == "Workflow"
    outputs = {p.name() for p in alg.destinationParameterDefinitions()}
    assert {"krige:elements", "prospectivity:probability", "prospectivity:targets", "evaluate:evaluation_report",
            "thresholds:mad_classes", "fractal:ca_classes"} <= outputs
    assert "Journel" in alg.shortHelpString() and "Yousefi" in alg.shortHelpString()
