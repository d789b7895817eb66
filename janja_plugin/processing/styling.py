"""Styles for outputs: a sidecar .qml next to each raster (qgis_process users) and a post-processor
that applies it when the toolbox or the modeler loads the layer."""

from pathlib import Path

from qgis.core import (
    QgsColorRampShader,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.PyQt.QtGui import QColor

from . import qgis_compat as compat

# Low = blue to high = red (ColorBrewer RdYlBu reversed), one colour per class.
BLUE_TO_RED = ["#313695", "#4575b4", "#abd9e9", "#ffffbf", "#fdae61", "#f46d43", "#d73027", "#a50026"]


def sidecar_qml_path(raster_path):
    """QGIS applies `<name>.qml` automatically when `<name>.tif` is opened with default options."""
    return str(Path(raster_path).with_suffix(".qml"))


def write_class_style(raster_path, band, breaks, labels, colours=BLUE_TO_RED):
    """Discrete colour classes [breaks[i], breaks[i+1]) on `band`, saved as the sidecar .qml."""
    layer = QgsRasterLayer(str(raster_path), "style", "gdal")
    if not layer.isValid():
        raise RuntimeError(f"cannot open {raster_path} to style it")
    n = len(breaks) - 1
    picks = [colours[round(i * (len(colours) - 1) / max(1, n - 1))] for i in range(n)]
    items = [
        QgsColorRampShader.ColorRampItem(breaks[i + 1], QColor(picks[i]), labels[i]) for i in range(n)
    ]
    ramp = QgsColorRampShader(breaks[0], breaks[-1])
    ramp.setColorRampType(compat.SHADER_DISCRETE)
    ramp.setColorRampItemList(items)
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(ramp)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), band, shader)
    renderer.setClassificationMin(breaks[0])
    renderer.setClassificationMax(breaks[-1])
    layer.setRenderer(renderer)
    qml = sidecar_qml_path(raster_path)
    message, ok = layer.saveNamedStyle(qml)
    if not ok:
        raise RuntimeError(f"could not write the style {qml}: {message}")
    return qml


class LoadQmlPostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies a .qml to an output layer once the toolbox or modeler has loaded it."""

    def __init__(self, qml_path):
        super().__init__()
        self.qml_path = qml_path

    def postProcessLayer(self, layer, context, feedback):
        if layer is not None and layer.isValid():
            layer.loadNamedStyle(self.qml_path)
            layer.triggerRepaint()


def attach_style(context, output_id, qml_path, keep_alive):
    """Register the post-processor for an output; `keep_alive` (a list on the algorithm) stops sip
    from deleting it before QGIS calls it."""
    if context.willLoadLayerOnCompletion(output_id):
        processor = LoadQmlPostProcessor(qml_path)
        keep_alive.append(processor)
        context.layerToLoadOnCompletionDetails(output_id).setPostProcessor(processor)
