"""The workflow's outputs as something to look at: a QGIS project, a map picture and one HTML report.

After janja:workflow has written its outputs into a folder (`make demo`: out/), this writes there:
- demo.qgz: every output as a styled layer (the rasters' sidecar .qml; the target areas and known
  deposits styled here and saved as sidecar .qml too), deposits on top; double-click it;
- demo_map.png: kriged first element | prospectivity with targets and deposits, rendered headless
  with QgsMapRendererParallelJob, with titles and legends;
- report.html: one page with the picture, the model used, the evaluation of both maps, the ranked
  target areas and links to every step's own report.

    .venv/bin/python tools/demo_project.py --out out [--deposits SRC] [--samples SRC] [--title TEXT]

The workflow's file names (WORKFLOW_OUTPUTS) and qgis_process arguments (workflow_args) live here so
`make demo` and the tests use the same ones. Importing this module needs no QGIS.
"""

import argparse
import base64
import csv
import html
import json
import math
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

GPKG = REPO / "resources" / "sample_data" / "wa_sample_data.gpkg"
SAMPLES = f"{GPKG}|layername=samples"
DEPOSITS = f"{GPKG}|layername=au_sites"
ELEMENTS = ["Au_ppm", "Ag_ppm", "Cu_ppm", "Pb_ppm", "Zn_ppm"]

# janja:workflow output -> file name in the output folder
WORKFLOW_OUTPUTS = {
    "krige:elements": "elements.tif",
    "krige:variance": "elements_variance.tif",
    "krige:cross_validation": "cross_validation.gpkg",
    "krige:kriging_report": "kriging_report.html",
    "prospectivity:probability": "prospectivity.tif",
    "prospectivity:classes": "prospectivity_classes.tif",
    "prospectivity:targets": "targets.gpkg",
    "prospectivity:prospectivity_report": "prospectivity_report.html",
    "evaluate:evaluation_table": "prospectivity_evaluation.csv",
    "evaluate:evaluation_report": "prospectivity_evaluation.html",
    "thresholds:mad_classes": "first_element_mad_classes.tif",
    "thresholds:thresholds_report": "first_element_thresholds.html",
    "fractal:ca_classes": "first_element_ca_classes.tif",
    "fractal:fractal_report": "first_element_ca.html",
    "evaluate_element:element_evaluation_table": "first_element_evaluation.csv",
    "evaluate_element:element_evaluation_report": "first_element_evaluation.html",
}
PROJECT = "demo.qgz"
PICTURE = "demo_map.png"
REPORT = "report.html"
DEPOSITS_COPY = "known_deposits.gpkg"
SAMPLES_COPY = "samples.gpkg"


def workflow_args(out_dir, model, cell_size, stride=1, samples=SAMPLES, deposits=DEPOSITS, fields=ELEMENTS,
                  neighbours=0):
    """`qgis_process.bin run janja:workflow` arguments (after the algorithm id) writing into out_dir."""
    out_dir = Path(out_dir)
    args = [f"samples={samples}", f"deposits={deposits}", *[f"element_fields={f}" for f in fields],
            f"cell_size={cell_size:g}", f"neighbours={neighbours}", f"stride={stride}"]
    if model:
        args.append(f"onnx_model={model}")
    args += [f"{key}={out_dir / name}" for key, name in WORKFLOW_OUTPUTS.items()]
    return args


def bundled_classifier(models_dir=REPO / "models"):
    """The first models/*.onnx whose card says it is a supervised classifier (as janja:workflow picks it)."""
    for path in sorted(Path(models_dir).glob("*.onnx")):
        if model_card_of(path).get("model_kind", "supervised_classifier") == "supervised_classifier":
            return path
    return None


def model_card_of(model):
    try:
        return json.loads(Path(model).with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return {}


# --- QGIS -------------------------------------------------------------------------------------------

def start_qgis():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    return app


def deposit_style(layer):
    from qgis.core import QgsMarkerSymbol, QgsSingleSymbolRenderer

    symbol = QgsMarkerSymbol.createSimple({"name": "star", "color": "#ffd92f", "outline_color": "#000000",
                                           "outline_width": "0.3", "size": "4.2"})
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))


def sample_style(layer):
    from qgis.core import QgsMarkerSymbol, QgsSingleSymbolRenderer

    symbol = QgsMarkerSymbol.createSimple({"name": "circle", "color": "#555555", "outline_style": "no",
                                           "size": "0.9"})
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))


def target_style(layer):
    from qgis.core import (
        QgsFillSymbol,
        QgsPalLayerSettings,
        QgsSingleSymbolRenderer,
        QgsTextBufferSettings,
        QgsTextFormat,
        QgsVectorLayerSimpleLabeling,
    )
    from qgis.PyQt.QtGui import QColor, QFont

    symbol = QgsFillSymbol.createSimple({"color": "0,0,0,0", "outline_color": "#000000", "outline_width": "0.5"})
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))
    settings = QgsPalLayerSettings()
    settings.fieldName = "CASE WHEN \"rank\" <= 5 THEN \"name\" END"  # the five best areas named on the map
    settings.isExpression = True
    text = QgsTextFormat()
    text.setFont(QFont("DejaVu Sans", 9, QFont.Weight.Bold))
    text.setSize(9)
    buffer = QgsTextBufferSettings()
    buffer.setEnabled(True)
    buffer.setColor(QColor("white"))
    buffer.setSize(1.0)
    text.setBuffer(buffer)
    settings.setFormat(text)
    layer.setLabeling(QgsVectorLayerSimpleLabeling(settings))
    layer.setLabelsEnabled(True)


def copy_vector(source, target, crs=None):
    """Copy a vector layer to a GeoPackage, reprojected to `crs`: a project whose layers share one CRS opens
    in the desktop without asking which datum transformation to use (GDA94 -> WGS 84 has several)."""
    from qgis.core import QgsCoordinateTransform, QgsCoordinateTransformContext, QgsVectorFileWriter, QgsVectorLayer

    layer = QgsVectorLayer(source, "copy", "ogr")
    if not layer.isValid():
        raise RuntimeError(f"cannot open {source}")
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    if crs is not None and crs.isValid() and crs != layer.crs():
        options.ct = QgsCoordinateTransform(layer.crs(), crs, QgsCoordinateTransformContext())
    Path(target).unlink(missing_ok=True)
    error = QgsVectorFileWriter.writeAsVectorFormatV3(layer, str(target), QgsCoordinateTransformContext(), options)
    if error[0] != QgsVectorFileWriter.NoError:
        raise RuntimeError(f"cannot write {target}: {error}")


def save_sidecar(layer, path):
    message, ok = layer.saveNamedStyle(str(Path(path).with_suffix(".qml")))
    if not ok:
        raise RuntimeError(f"could not write the style of {path}: {message}")


def build_project(out_dir, deposits=DEPOSITS, samples=SAMPLES, title="Janja workflow"):
    """Write out_dir/demo.qgz (layers styled, deposits on top); return the project."""
    from qgis.core import QgsProject, QgsRasterLayer, QgsVectorLayer

    out_dir = Path(out_dir).resolve()
    reference = QgsRasterLayer(str(out_dir / WORKFLOW_OUTPUTS["krige:elements"]), "stack", "gdal")
    crs = reference.crs() if reference.isValid() else None
    del reference
    copy_vector(deposits, out_dir / DEPOSITS_COPY, crs)
    copy_vector(samples, out_dir / SAMPLES_COPY, crs)
    project = QgsProject()
    project.setTitle(title)
    # top of the legend first; (name, file, kind, visible)
    layers = [
        ("Known deposits", DEPOSITS_COPY, "deposits", True),
        ("Target areas (ranked)", WORKFLOW_OUTPUTS["prospectivity:targets"], "targets", True),
        ("Samples", SAMPLES_COPY, "samples", False),
        ("Prospectivity classes", WORKFLOW_OUTPUTS["prospectivity:classes"], "raster", False),
        ("Prospectivity probability", WORKFLOW_OUTPUTS["prospectivity:probability"], "raster", True),
        ("First element: concentration–area classes", WORKFLOW_OUTPUTS["fractal:ca_classes"], "raster", False),
        ("First element: median + k·MAD classes", WORKFLOW_OUTPUTS["thresholds:mad_classes"], "raster", False),
        ("Kriging variance", WORKFLOW_OUTPUTS["krige:variance"], "variance", False),
        ("Kriged elements", WORKFLOW_OUTPUTS["krige:elements"], "elements", False),
    ]
    added = []
    for name, file, kind, visible in layers:
        path = out_dir / file
        if not path.exists():
            continue
        if kind in ("raster", "elements", "variance"):
            layer = QgsRasterLayer(str(path), name, "gdal")  # loads the sidecar .qml
        else:
            layer = QgsVectorLayer(str(path), name, "ogr")
            {"deposits": deposit_style, "targets": target_style, "samples": sample_style}[kind](layer)
            save_sidecar(layer, path)
        if not layer.isValid():
            raise RuntimeError(f"{path} does not open as a layer")
        added.append((layer, visible, kind))
    if not added:
        raise RuntimeError(f"no workflow output in {out_dir}")
    root = project.layerTreeRoot()
    for layer, visible, _ in added:
        project.addMapLayer(layer, False)
        node = root.addLayer(layer)  # appended: the list order is the drawing order, top first
        node.setItemVisibilityChecked(visible)
    # the stacks as the toolbox loads them: a group with one styled layer per element
    from janja_plugin.processing.styling import add_band_layers

    for layer, visible, kind in added:
        if kind in ("elements", "variance"):
            add_band_layers(layer, project, layer.name(), stack_band_styles(layer.source(), kind == "variance"),
                            visible)
    added = [(layer, visible) for layer, visible, _ in added]
    stack = next((layer for layer, _ in added if layer.name().startswith("Prospectivity probability")), added[-1][0])
    project.setCrs(stack.crs())
    # Written headless, the project has no map canvas state: without a default view it opens at 1:1 on an
    # empty canvas. The survey is the kriged grid (samples plus margin).
    project.viewSettings().setDefaultViewExtent(survey_extent(added, stack.crs(), project))
    project.write(str(out_dir / PROJECT))
    return project


def stack_band_styles(path, variance):
    """(band, layer name, breaks, labels) per band of a janja:krige stack, as janja:krige styles them."""
    import numpy as np
    from osgeo import gdal

    from janja_plugin.core.geostatistics import krige_pipeline

    dataset = gdal.Open(str(path))
    transform = "none" if "'transform': 'none'" in (dataset.GetMetadataItem("JANJA_SETTINGS") or "") else "log"
    styles = []
    for i in range(1, dataset.RasterCount + 1):
        band = dataset.GetRasterBand(i)
        values = band.ReadAsArray().astype(float)
        if band.GetNoDataValue() is not None:
            values[values == band.GetNoDataValue()] = np.nan
        label, unit, var_label, var_unit = krige_pipeline.layer_names(band.GetDescription() or f"band {i}", transform)
        name, shown_unit = (var_label, var_unit) if variance else (label, unit)
        styles.append((i, name, *krige_pipeline.style_classes(values, shown_unit)))
    dataset = None
    return styles


def survey_extent(layers, crs, project):
    """The extent of the raster outputs (else of every layer) in `crs`, grown by 2 %, as the opening view."""
    from qgis.core import QgsCoordinateTransform, QgsRasterLayer, QgsRectangle, QgsReferencedRectangle

    rasters = [layer for layer, _ in layers if isinstance(layer, QgsRasterLayer)]
    extent = QgsRectangle()
    extent.setMinimal()
    for layer in rasters or [layer for layer, _ in layers]:
        transform = QgsCoordinateTransform(layer.crs(), crs, project.transformContext())
        extent.combineExtentWith(transform.transformBoundingBox(layer.extent()))
    extent.scale(1.02)
    return QgsReferencedRectangle(extent, crs)


def legend_items(layer, limit=8):
    """(label, QColor) of a raster layer's classes, as its renderer states them."""
    items = layer.renderer().legendSymbologyItems() if layer.renderer() else []
    return items[:limit]


def render_panel(layers, extent, crs, size):
    from qgis.core import QgsMapRendererParallelJob, QgsMapSettings
    from qgis.PyQt.QtGui import QColor

    settings = QgsMapSettings()
    settings.setLayers(layers)  # first drawn on top
    settings.setDestinationCrs(crs)
    settings.setExtent(extent)
    settings.setOutputSize(size)
    settings.setBackgroundColor(QColor("white"))
    settings.setFlag(QgsMapSettings.Antialiasing, True)
    settings.setFlag(QgsMapSettings.DrawLabeling, True)
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    return job.renderedImage()


def render_picture(project, out_png, subtitle=""):
    """Two panels (kriged first element | prospectivity + targets + deposits) with titles and legends."""
    from qgis.PyQt.QtCore import QPointF, QRect, QSize, Qt
    from qgis.PyQt.QtGui import QColor, QFont, QImage, QPainter, QPolygonF

    by_name = {layer.name(): layer for layer in project.mapLayers().values()}
    deposits = by_name.get("Known deposits")
    targets = by_name.get("Target areas (ranked)")
    prob = by_name.get("Prospectivity probability")
    group = project.layerTreeRoot().findGroup("Kriged elements")
    element = group.findLayers()[0].layer() if group is not None and group.findLayers() else None
    base = prob or element
    extent = base.extent()
    extent.scale(1.04)
    panel_w = 560
    panel_h = int(panel_w * extent.height() / max(extent.width(), 1e-9))
    panel_h = max(300, min(panel_h, 1000))
    head, foot = 56, 150
    overlays = [lyr for lyr in (deposits, targets) if lyr is not None]
    panels = []
    if element is not None:
        panels.append((f"Kriged {element.name()}", [deposits] if deposits else [], element))
    if prob is not None:
        panels.append(("Prospectivity, target areas, known deposits", overlays, prob))
    width = panel_w * len(panels) + 20 * (len(panels) + 1)
    image = QImage(width, head + panel_h + foot, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setFont(QFont("DejaVu Sans", 13, QFont.Weight.Bold))
    painter.drawText(QRect(20, 6, width - 40, 26), Qt.AlignmentFlag.AlignLeft, project.title())
    painter.setFont(QFont("DejaVu Sans", 9))
    painter.drawText(QRect(20, 30, width - 40, 20), Qt.AlignmentFlag.AlignLeft, subtitle)
    for i, (title, top, raster) in enumerate(panels):
        x = 20 + i * (panel_w + 20)
        picture = render_panel([*top, raster], extent, base.crs(), QSize(panel_w, panel_h))
        painter.drawImage(x, head, picture)
        painter.setPen(QColor("#888888"))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(x, head, panel_w - 1, panel_h - 1)
        painter.setPen(QColor("black"))
        painter.setFont(QFont("DejaVu Sans", 10, QFont.Weight.Bold))
        painter.drawText(QRect(x, head + panel_h + 6, panel_w, 18), Qt.AlignmentFlag.AlignLeft, title)
        painter.setFont(QFont("DejaVu Sans", 8))
        entries = legend_items(raster)
        if raster is prob and targets is not None:
            entries = [*entries, ("target area (outline, Area I = best)", None)]
        if deposits is not None:
            entries = [*entries, ("known deposit", "star")]
        for j, (label, colour) in enumerate(entries):
            col, row = divmod(j, 5)
            lx, ly = x + col * (panel_w // 2), head + panel_h + 30 + row * 22
            if colour == "star":
                painter.setBrush(QColor("#ffd92f"))
                painter.drawPolygon(QPolygonF([QPointF(lx + 7 + (7 if k % 2 == 0 else 3) * math.sin(k * math.pi / 5),
                                                       ly + 7 - (7 if k % 2 == 0 else 3) * math.cos(k * math.pi / 5))
                                               for k in range(10)]))
            elif colour is None:
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRect(lx, ly, 14, 14)
            else:
                painter.setBrush(colour)
                painter.drawRect(lx, ly, 14, 14)
            painter.drawText(QRect(lx + 20, ly, panel_w // 2 - 24, 16),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, str(label))
    painter.end()
    if not image.save(str(out_png), "PNG"):  # class colours: about 80 KB
        raise RuntimeError(f"could not write {out_png}")
    return out_png


# --- the one report -----------------------------------------------------------------------------

def success_rate_auc(csv_path):
    """Area under the success-rate curve (share of deposits against share of the area); None without the table."""
    try:
        with open(csv_path, newline="") as fh:
            points = sorted((float(r["x"]), float(r["y"])) for r in csv.DictReader(fh) if r["curve"] == "success_rate")
    except (OSError, KeyError, ValueError):
        return None
    if len(points) < 2:
        return None
    points = [(0.0, 0.0), *points, (1.0, 1.0)]  # shares 0–1
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False))


def summary_rows(csv_path):
    try:
        with open(csv_path, newline="") as fh:
            return [r for r in csv.DictReader(fh) if r["curve"].startswith("summary:")]
    except (OSError, KeyError, ValueError):
        return []


def summary_auc(csv_path):
    """The map's own ROC AUC from janja:evaluate's table (its first summary row); None without one."""
    rows = [r for r in summary_rows(csv_path) if "baseline" not in r["curve"] and "AUC" in r["curve"]]
    return float(rows[0]["y"]) if rows else None


def evaluation_scope(csv_path):
    """What the deposits were for the evaluated map ('in-sample (training labels): not a validation', ...)."""
    rows = summary_rows(csv_path)
    return rows[0].get("deposits") if rows else None


def held_out_section(rep, card):
    """Lead with the model card's held-out (spatial-block) numbers beside the kriged target, and the verdict."""
    from janja_plugin.core.errors import JanjaInputError
    from janja_plugin.core.inference.model_card import card_from_dict
    from janja_plugin.core.inference.prospectivity import benchmark_rows, held_out_verdict

    try:
        rows, verdict = held_out_verdict(card_from_dict(card))
    except (JanjaInputError, KeyError, TypeError):
        return
    rep.heading("Held-out validation (deposits the model never saw, by spatial blocks)")
    rep.paragraph(verdict, "warning" if "NOT" in verdict or "no held-out" in verdict else "note")
    if rows:
        rep.table(["map (model card)", "sample-protocol AUC"], rows)
    bench = benchmark_rows(card_from_dict(card))
    if bench:
        rep.paragraph(bench[0], "note")
        rep.table(["map (held out by spatial blocks)", "sample-protocol AUC", "cell ROC AUC"], bench[1])


def read_targets(path, limit=15):
    from qgis.core import QgsVectorLayer

    layer = QgsVectorLayer(str(path), "targets", "ogr")
    if not layer.isValid():
        return []
    rows = sorted(([f["rank"], f["name"], f["cells"], f["area_km2"], f["mean_prob"], f["max_prob"]]
                   for f in layer.getFeatures()), key=lambda r: r[0])
    return rows[:limit]


def stride_error_of(raster):
    """The stride check a janja map carries in its metadata (janja_stride_*), or None."""
    from janja_plugin.core.inference.stride_check import StrideError

    try:
        from osgeo import gdal

        ds = gdal.Open(str(raster))
        tags = ds.GetMetadata() if ds is not None else {}
        ds = None
    except (ImportError, RuntimeError):
        return None
    return StrideError.from_tags(tags)


def write_report(out_dir, model, cell_size, stride, seconds=None):
    from janja_plugin.core.reporting.report import HtmlReport

    out_dir = Path(out_dir)
    card = model_card_of(model)
    rep = HtmlReport("Janja workflow report")
    rep.paragraph("janja:workflow (resources/models/janja_workflow.model3): samples and known deposits → "
                  "janja:krige → janja:prospectivity → janja:evaluate, with the conventional thresholds of the "
                  "first element alongside. Open demo.qgz in QGIS for the styled layers.")
    name = card.get("name", Path(model).name if model else "?")
    if "stand-in" in name.lower():
        rep.paragraph(f"Model: {name}. This is NOT a trained classifier: its map only shows that the workflow "
                      "runs. Put the trained model and its card in models/ (or pass it) and run again.", "note")
    rows = [("model", name), ("model file", str(model)), ("cell size (m)", f"{cell_size:g}"),
            ("stride", stride)]
    if seconds is not None:
        rows.append(("run time (s)", f"{seconds:.0f}"))
    held_out_section(rep, card)
    rep.table(["", ""], rows)
    measured = stride_error_of(out_dir / WORKFLOW_OUTPUTS["prospectivity:probability"])
    if measured is not None:
        warning = measured.warning()
        rep.paragraph(measured.sentence() + (" " + warning if warning else ""), "warning" if warning else "note")
    picture = out_dir / PICTURE
    if picture.exists():
        data = base64.b64encode(picture.read_bytes()).decode("ascii")
        rep.parts.append(f'<p><img alt="workflow maps" style="max-width:100%" src="data:image/png;base64,{data}"></p>')
    evals = [("prospectivity probability", "evaluate:evaluation_table", "evaluate:evaluation_report"),
             ("kriged first element", "evaluate_element:element_evaluation_table",
              "evaluate_element:element_evaluation_report")]
    scopes = {label: evaluation_scope(out_dir / WORKFLOW_OUTPUTS[t]) for label, t, _ in evals}
    in_sample = any(scope == "in-sample (training labels): not a validation" for scope in scopes.values())
    rep.heading("Evaluation against the known deposits" + (" — IN-SAMPLE, NOT A VALIDATION" if in_sample else ""))
    if in_sample:
        rep.paragraph("The known deposits here are the model's own training labels: its fit to them below is "
                      "in-sample and validates nothing. The held-out numbers above are the validation.", "warning")
    rep.paragraph("ROC AUC of the deposit cells against every other cell, and the area under the success-rate "
                  "curve (share of deposits against share of the area, cells ranked by score), each map scored "
                  "the same way; the full ROC, success-rate and prediction–area analysis is in the linked reports.",
                  "note")
    rep.table(["map", "ROC AUC", "success-rate AUC", "deposits", "report"],
              [(label, "—" if (a := summary_auc(out_dir / WORKFLOW_OUTPUTS[t])) is None else round(a, 3),
                "—" if (a := success_rate_auc(out_dir / WORKFLOW_OUTPUTS[t])) is None else round(a, 3),
                scopes[label] or "—", WORKFLOW_OUTPUTS[r]) for label, t, r in evals])
    targets = read_targets(out_dir / WORKFLOW_OUTPUTS["prospectivity:targets"])
    if targets:
        rep.heading("Ranked target areas")
        rep.table(["rank", "name", "cells", "area (km²)", "mean probability", "max probability"], targets)
    rep.heading("Every output")
    links = "".join(f'<li><a href="{html.escape(f)}">{html.escape(f)}</a> <span class="note">({html.escape(k)})'
                    "</span></li>" for k, f in WORKFLOW_OUTPUTS.items() if (out_dir / f).exists())
    rep.parts.append(f"<ul>{links}</ul>")
    rep.write(out_dir / REPORT)
    return out_dir / REPORT


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="out")
    parser.add_argument("--deposits", default=DEPOSITS)
    parser.add_argument("--samples", default=SAMPLES)
    parser.add_argument("--model", default="")
    parser.add_argument("--cell-size", type=float, default=0.0)
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--title", default="Janja workflow on the bundled Western Australia survey")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    app = start_qgis()
    project = build_project(out, args.deposits, args.samples, args.title)
    name = model_card_of(args.model).get("name", Path(args.model).name if args.model else "")
    render_picture(project, out / PICTURE, f"model: {name}; cell {args.cell_size:g} m; stride {args.stride}")
    project.clear()
    del project
    write_report(out, args.model, args.cell_size, args.stride, args.seconds)
    app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
