"""Styles for outputs: a sidecar .qml next to each raster (qgis_process users) and a post-processor
that applies it when the toolbox, the batch interface or the modeler loads the layer.

QGIS keys the layers it will load by the output's file path (the toolbox turns every destination into
one), not by the parameter name; so styles are attached by path.
"""

import os
import re
from collections import deque
from pathlib import Path

from qgis.core import (
    QgsColorRampShader,
    QgsLayerTreeRegistryBridge,
    QgsProcessingLayerPostProcessorInterface,
    QgsProject,
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


def class_renderer(provider, band, breaks, labels, colours=BLUE_TO_RED):
    """A single-band renderer with discrete colour classes [breaks[i], breaks[i+1]) labelled `labels`."""
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
    renderer = QgsSingleBandPseudoColorRenderer(provider, band, shader)
    renderer.setClassificationMin(breaks[0])
    renderer.setClassificationMax(breaks[-1])
    return renderer


def write_class_style(raster_path, band, breaks, labels, colours=BLUE_TO_RED):
    """Discrete colour classes [breaks[i], breaks[i+1]) on `band`, saved as the sidecar .qml."""
    layer = QgsRasterLayer(str(raster_path), "style", "gdal")
    if not layer.isValid():
        raise RuntimeError(f"cannot open {raster_path} to style it")
    layer.setRenderer(class_renderer(layer.dataProvider(), band, breaks, labels, colours))
    qml = sidecar_qml_path(raster_path)
    message, ok = layer.saveNamedStyle(qml)
    if not ok:
        raise RuntimeError(f"could not write the style {qml}: {message}")
    return qml


class LoadQmlPostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies a .qml (and optionally a layer name) to an output layer once QGIS has loaded it."""

    def __init__(self, qml_path, name=None):
        super().__init__()
        self.qml_path = qml_path
        self.name = name

    def copy(self):
        return LoadQmlPostProcessor(self.qml_path, self.name)

    def postProcessLayer(self, layer, context, feedback):
        if layer is not None and layer.isValid():
            layer.loadNamedStyle(self.qml_path)
            if self.name:
                layer.setName(self.name)
            layer.triggerRepaint()


class CallbackPostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Runs `apply(layer, project)` on the loaded layer: for styles built in code (vector renderers, groups)."""

    def __init__(self, apply):
        super().__init__()
        self.apply = apply

    def copy(self):
        return CallbackPostProcessor(self.apply)

    def postProcessLayer(self, layer, context, feedback):
        if layer is not None and layer.isValid():
            self.apply(layer, context.project() or QgsProject.instance())
            layer.triggerRepaint()


def _same_path(a, b):
    try:
        return os.path.normcase(os.path.abspath(str(a))) == os.path.normcase(os.path.abspath(str(b)))
    except (TypeError, ValueError):
        return False


_STAGED = re.compile(r"^\.(.+)\.janja-part-[0-9a-f]+(.*)$")  # core/staging.py's temporary names


def unstaged(path):
    """The destination a staged temporary file will be moved to ('.stack.janja-part-1a2b.tif' -> 'stack.tif')."""
    p = Path(str(path).split("|")[0])
    m = _STAGED.match(p.name)
    return str(p.with_name(m.group(1) + m.group(2))) if m else str(p)


def load_key(context, output):
    """The key under which QGIS will load `output`: its file path (the staged or the final name), or, in
    older callers, a parameter name."""
    loads = context.layersToLoadOnCompletion()
    if output in loads:
        return output
    candidates = {str(output).split("|")[0], unstaged(output)}
    for key in loads:
        if any(_same_path(str(key).split("|")[0], c) for c in candidates):
            return key
    return None


# Post-processors must outlive the algorithm: QgsProcessingAlgorithm.run() executes a copy of the algorithm
# and deletes it before the toolbox loads the results, so a list on the instance dies too early and sip
# deletes the processors with it. Bounded, so a long session does not keep them all.
_ALIVE = deque(maxlen=10000)


def attach_processor(context, output, processor, keep_alive=None):
    """Register `processor` for the layer QGIS loads from `output`. Returns whether the output will be loaded."""
    key = load_key(context, output)
    if key is None:
        return False
    _ALIVE.append(processor)
    if keep_alive is not None:
        keep_alive.append(processor)
    context.layerToLoadOnCompletionDetails(key).setPostProcessor(processor)
    return True


def attach_style(context, output_path, qml_path, keep_alive, name=None):
    """Apply `qml_path` to the layer loaded from `output_path` in the toolbox, batch interface or modeler."""
    return attach_processor(context, output_path, LoadQmlPostProcessor(qml_path, name), keep_alive)


def add_band_layers(stack_layer, project, group_name, bands, visible=True):
    """One styled single-band layer per band of `stack_layer` in a new group at the top of the layer tree.

    bands: (band number, layer name, breaks, labels). The multi-band layer itself moves into the group,
    hidden, so the map shows one element at a time instead of an RGB mix of three elements. With
    visible=False the whole group starts unticked.
    """
    root = project.layerTreeRoot()
    stack_node = root.findLayer(stack_layer.id())
    parent = stack_node.parent() if stack_node is not None and stack_node.parent() is not None else root
    index = parent.children().index(stack_node) if stack_node is not None else 0
    group = parent.insertGroup(index, group_name)  # where the stack was: top, or the results group
    group.setItemVisibilityChecked(visible)  # e.g. the variances: listed, not drawn over the elements
    for i, (band, name, breaks, labels) in enumerate(bands):
        layer = QgsRasterLayer(stack_layer.source(), name, "gdal")
        if not layer.isValid() or len(breaks) < 2:
            continue
        layer.setRenderer(class_renderer(layer.dataProvider(), band, breaks, labels))
        project.addMapLayer(layer, False)
        node = group.addLayer(layer)
        node.setItemVisibilityChecked(i == 0)
        node.setExpanded(i == 0)
    qml = sidecar_qml_path(stack_layer.source().split("|")[0])
    if os.path.exists(qml):  # Processing loads outputs without their default style
        stack_layer.loadNamedStyle(qml)
    stack_layer.setName(f"{group_name}: all bands")
    if stack_node is not None:
        clone = stack_node.clone()
        clone.setItemVisibilityChecked(False)
        clone.setExpanded(False)
        group.addChildNode(clone)
        parent.removeChildNode(stack_node)
    # New layers go above the groups, not into them: the desktop moves its insertion point to the node it had
    # selected (the stack, now inside the group), so the next run's map landed in an unticked variance group.
    project.layerTreeRegistryBridge().setLayerInsertionPoint(QgsLayerTreeRegistryBridge.InsertionPoint(parent, 0))
    return group
