"""What the toolbox loads, styled: runs go through processing.runAndLoadResults, which is the toolbox's own
path (destinations bound to the project, layers keyed by file path, handleAlgorithmResults loading them and
calling the post-processors). Every layer it leaves in the project is checked: renderer, band, classes.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from test_model_card import build_model, card_dict  # noqa: E402 - the shared test-model builder
from testdata import SAMPLE_DATA  # noqa: E402

GPKG = SAMPLE_DATA / "wa_sample_data.gpkg"


def legend(layer):
    """(renderer type, band, class labels) of a raster layer, or (type, field, labels) of a vector layer."""
    r = layer.renderer()
    if r.type() == "singlebandpseudocolor":
        items = r.shader().rasterShaderFunction().colorRampItemList()
        return r.type(), r.band(), [i.label for i in items]
    if r.type() == "categorizedSymbol":
        return r.type(), r.classAttribute(), [c.label() for c in r.categories()]
    return r.type(), None, []


def project_layers():
    """{layer name: (layer, name of its group or '')} of everything in the project's layer tree."""
    from qgis.core import QgsProject

    out = {}
    for node in QgsProject.instance().layerTreeRoot().findLayers():
        parent = node.parent()
        out[node.layer().name()] = (node.layer(), parent.name() if parent is not None else "", node)
    return out


@pytest.fixture()
def clean_project(qgis_app):
    from qgis.core import QgsProject

    QgsProject.instance().clear()
    yield QgsProject.instance()
    QgsProject.instance().clear()


def krige_in_toolbox(tmp_path):
    import processing

    return processing.runAndLoadResults("janja:krige", {
        "INPUT": f"{GPKG}|layername=samples", "FIELDS": ["Au_ppm", "Cu_ppm"], "CELL_SIZE": 2000.0,
        "NEIGHBOURS": 16, "OUTPUT": str(tmp_path / "stack.tif"), "VARIANCE": str(tmp_path / "var.tif"),
        "CV_TABLE": str(tmp_path / "cv.gpkg"), "REPORT": None})


def test_krige_loads_one_styled_layer_per_element_in_groups(clean_project, tmp_path):
    result = krige_in_toolbox(tmp_path)
    layers = project_layers()
    au, group, node = layers["Au (ppm)"]
    kind, band, labels = legend(au)
    assert (kind, band, group) == ("singlebandpseudocolor", 1, "Kriged elements") and node.isVisible()
    assert len(labels) >= 5 and all(label.endswith(" ppm") for label in labels)
    assert "e-0" not in " ".join(labels)  # 0.0012 ppm, not 1.2e-03
    cu, group, node = layers["Cu (ppm)"]
    assert legend(cu)[:2] == ("singlebandpseudocolor", 2) and group == "Kriged elements" and not node.isVisible()
    assert au.source() == cu.source() == result["OUTPUT"]
    variance = [n for n, (_, g, _) in layers.items() if g == "Kriging variance" and "all bands" not in n]
    assert variance == ["Au kriging variance (of ln values, unitless)", "Cu kriging variance (of ln values, unitless)"]
    for name in variance:  # listed, styled, but not drawn over the elements
        assert legend(layers[name][0])[0] == "singlebandpseudocolor" and not layers[name][2].isVisible()
    # the multi-band stacks are in their groups, hidden and styled, never an RGB mix of elements
    for name, group in (("Kriged elements: all bands", "Kriged elements"),
                        ("Kriging variance: all bands", "Kriging variance")):
        layer, g, node = layers[name]
        assert g == group and not node.isVisible() and legend(layer)[0] == "singlebandpseudocolor"
    rasters = [lyr for lyr, _, _ in layers.values() if lyr.type() == lyr.RasterLayer]
    assert len(rasters) == 6 and all(legend(lyr)[0] == "singlebandpseudocolor" for lyr in rasters)
    del layers, au, cu, layer, node, rasters


def test_prospectivity_loads_legends_with_units_and_target_areas(clean_project, tmp_path):
    import processing

    krige = krige_in_toolbox(tmp_path)
    card = card_dict(elements=[("Au_ppm", "ppm", "log10", -3.6, 0.5), ("Cu_ppm", "ppm", "log10", 0.0, 0.5)],
                     channels=2, window=3, size=6, cell_size=2000.0)
    import numpy as np

    build_model(tmp_path / "m.onnx", card, pool=True,
                weights=(np.array([[0, 0], [3.0, 1.0]], np.float32), np.array([0, -1.5], np.float32)))
    clean_project.clear()
    result = processing.runAndLoadResults("janja:prospectivity", {
        "STACK": krige["OUTPUT"], "MODEL": str(tmp_path / "m.onnx"), "PROBABILITY": str(tmp_path / "p.tif"),
        "CLASSES": str(tmp_path / "c.tif"), "TARGETS": str(tmp_path / "t.gpkg"), "REPORT": None,
        "MODERATE": 0.3, "HIGH": 0.6})
    layers = project_layers()
    assert set(layers) == {"Prospectivity: probability of the prospective class (0–1)", "Prospectivity classes",
                           "Target areas (ranked by mean probability)"}
    kind, band, labels = legend(layers["Prospectivity: probability of the prospective class (0–1)"][0])
    assert (kind, band, len(labels)) == ("singlebandpseudocolor", 1, 3)
    assert labels[0].startswith("low: probability <") and labels[2].startswith("high:")
    kind, band, labels = legend(layers["Prospectivity classes"][0])
    assert (kind, band) == ("singlebandpseudocolor", 1) and [s.split(":")[0] for s in labels] == \
        ["1 low", "2 moderate", "3 high"]
    kind, field, labels = legend(layers["Target areas (ranked by mean probability)"][0])
    assert (kind, field, len(labels)) == ("categorizedSymbol", "name", result["N_TARGETS"]) and result["N_TARGETS"] >= 1
    assert labels[0].startswith("Area I: ") and "km²" in labels[0] and "mean probability" in labels[0]
    del layers


def test_class_raster_from_the_toolbox_is_styled(clean_project, tmp_path):
    import processing

    krige = krige_in_toolbox(tmp_path)
    clean_project.clear()
    processing.runAndLoadResults("janja:thresholds", {
        "RASTER": krige["OUTPUT"], "BAND": 1, "METHOD": 3, "PERCENTILES": "50,90",
        "OUTPUT_RASTER": str(tmp_path / "cls.tif"), "REPORT": None})
    (layer, _, _), = project_layers().values()
    kind, band, labels = legend(layer)
    assert (kind, band, len(labels)) == ("singlebandpseudocolor", 1, 3)
    del layer


def results_kwargs(handle, parameters):
    """handleAlgorithmResults(alg, context, feedback, showResults, parameters) on QGIS 3.22; showResults is
    gone in 3.40."""
    import inspect

    kwargs = {"parameters": parameters}
    if "showResults" in inspect.signature(handle).parameters:
        kwargs["showResults"] = False
    return kwargs


def small_model():
    """krige -> thresholds as a graphical model, outputs exposed as model outputs (as janja:workflow does)."""
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterFeatureSource,
    )

    model = QgsProcessingModelAlgorithm("styles_model", "tests")
    model.addModelParameter(QgsProcessingParameterFeatureSource("samples", "Samples"),
                            QgsProcessingModelParameter("samples"))

    def child(cid, alg, params, outputs):
        c = QgsProcessingModelChildAlgorithm(alg)
        c.setChildId(cid)
        for key, source in params.items():
            c.addParameterSources(key, [source])
        outs = {}
        for output, name in outputs.items():
            o = QgsProcessingModelOutput(name, name)
            o.setChildId(cid)
            o.setChildOutputName(output)
            outs[name] = o
        c.setModelOutputs(outs)
        model.addChildAlgorithm(c)

    static = QgsProcessingModelChildParameterSource.fromStaticValue
    child("krige", "janja:krige", {
        "INPUT": QgsProcessingModelChildParameterSource.fromModelParameter("samples"),
        "FIELDS": static(["Au_ppm", "Cu_ppm"]), "CELL_SIZE": static(2000.0), "NEIGHBOURS": static(16),
        "CV_TABLE": static(None), "REPORT": static(None)}, {"OUTPUT": "elements", "VARIANCE": "variance"})
    child("thresholds", "janja:thresholds", {
        "RASTER": QgsProcessingModelChildParameterSource.fromChildOutput("krige", "OUTPUT"), "BAND": static(1),
        "METHOD": static(3), "PERCENTILES": static("50,90"), "REPORT": static(None)},
        {"OUTPUT_RASTER": "classes"})
    return model


def test_a_model_run_loads_the_same_styled_layers(clean_project, tmp_path):
    import processing

    model = small_model()
    # a model built in Python names its outputs "child:output" on QGIS 3.22 and "output" on 3.40+
    dest = {d.description(): d.name() for d in model.destinationParameterDefinitions()}
    processing.runAndLoadResults(model, {
        "samples": f"{GPKG}|layername=samples", dest["elements"]: str(tmp_path / "e.tif"),
        dest["variance"]: str(tmp_path / "v.tif"), dest["classes"]: str(tmp_path / "c.tif")})
    layers = project_layers()
    assert legend(layers["Au (ppm)"][0])[:2] == ("singlebandpseudocolor", 1)
    assert legend(layers["Cu (ppm)"][0])[:2] == ("singlebandpseudocolor", 2)
    assert layers["Au (ppm)"][1] == "Kriged elements"
    rasters = [lyr for lyr, _, _ in layers.values() if lyr.type() == lyr.RasterLayer]
    assert len(rasters) == 7 and all(legend(lyr)[0] == "singlebandpseudocolor" for lyr in rasters), \
        {n: legend(lyr)[0] for n, (lyr, _, _) in layers.items()}
    del layers, rasters, model


def test_batch_rows_each_load_their_styled_groups(clean_project, tmp_path):
    """Two rows the way BatchAlgorithmDialog runs them (3.22): a new context per row, alg.run(), then
    handleAlgorithmResults with that row's parameters."""
    from processing.gui.Postprocessing import handleAlgorithmResults
    from processing.tools import dataobjects
    from qgis.core import QgsApplication, QgsProcessingFeedback, QgsProcessingOutputLayerDefinition

    alg = QgsApplication.processingRegistry().createAlgorithmById("janja:thresholds")
    krige = krige_in_toolbox(tmp_path)
    clean_project.clear()
    feedback = QgsProcessingFeedback()
    for band in (1, 2):
        parameters = {"RASTER": krige["OUTPUT"], "BAND": band, "METHOD": 3, "PERCENTILES": "50,90",
                      "OUTPUT_RASTER": QgsProcessingOutputLayerDefinition(str(tmp_path / f"cls{band}.tif"),
                                                                          clean_project),
                      "REPORT": None}
        context = dataobjects.createContext(feedback)
        results, ok = alg.run(parameters, context, feedback)
        assert ok
        handleAlgorithmResults(alg, context, feedback, **results_kwargs(handleAlgorithmResults, parameters))
        del context
    layers = [node.layer() for node in clean_project.layerTreeRoot().findLayers()]
    assert len(layers) == 2 and all(legend(lyr)[0] == "singlebandpseudocolor" and len(legend(lyr)[2]) == 3
                                    for lyr in layers)
    del layers, alg
