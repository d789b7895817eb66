"""janja:prospectivity — element stack + ONNX classifier -> probability, classes, ranked target areas."""

import os
import uuid
from pathlib import Path

import numpy as np
from qgis.core import (
    QgsFeature,
    QgsFeatureSink,
    QgsFields,
    QgsGeometry,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingUtils,
)

from ..core.dependencies import MODELS_BUTTON
from ..core.inference import model_card as mc
from ..core.inference import prospectivity as pr
from ..core.reporting.report import HtmlReport
from . import profile
from . import qgis_compat as compat
from .base import JanjaAlgorithm, report_stride_error
from .layers import mask_cells_from, read_sample_points
from .styling import CallbackPostProcessor, attach_processor, attach_style, write_class_style

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


def bundled_model():
    """The repository's trained classifier: the first models/*.onnx whose card is a supervised classifier."""
    from .workflow import bundled_classifier

    return bundled_classifier(MODELS_DIR)


class ProspectivityAlgorithm(JanjaAlgorithm):
    GROUP_ID = "prospectivity"
    GROUP = "Prospectivity"
    STACK, ELEMENT_RASTERS, MODEL, MASK, DEPOSITS = "STACK", "ELEMENT_RASTERS", "MODEL", "MASK", "DEPOSITS"
    INSTALLED_MODEL = "INSTALLED_MODEL"
    REQUIRES, PURPOSE = ("onnxruntime",), "running the prospectivity classifier"
    STRIDE, THREADS, BATCH, SHARED_TRUNK = "STRIDE", "THREADS", "BATCH", "SHARED_TRUNK"
    MODERATE, HIGH, MIN_TARGET_CELLS = "MODERATE", "HIGH", "MIN_TARGET_CELLS"
    EXTRAPOLATE = "EXTRAPOLATE"
    SCHEDULER = "SCHEDULER"
    PROBABILITY, CLASSES, TARGETS, REPORT = "PROBABILITY", "CLASSES", "TARGETS", "REPORT"

    def name(self):
        return "prospectivity"

    def displayName(self):
        return "Prospectivity map from an ONNX classifier"

    def shortHelpString(self):
        return (
            "Maps mineral prospectivity over an element stack (from janja:krige) with a classifier exported "
            "to ONNX (an Inception-v3 retrained by transfer learning with the bundled training script, or "
            "any model with a janja model card). For every output cell the window centred on it is cut "
            "(edges mirrored), transformed as the model card says (e.g. log10 and standardised with the "
            "training statistics), mapped to the model's channels, resized to its input size and "
            "classified with onnxruntime; the probability of the prospective class is the cell's value.\n\n"
            "The stack's bands are matched to the card's elements by band description (janja:krige names "
            "them after the fields); its cell size must be the one the model was trained at. Stride k "
            "predicts every k-th cell and interpolates the rest (k² fewer windows); a seeded sample of the "
            "interpolated cells (a tenth of the windows, 200–2,000 cells) is then classified exactly, and the map's "
            "measured error (mean, 95th percentile, max, class changes) is stated in the log, the report and the "
            "raster's metadata, with a warning when it is too large.\n\n"
            "Before any window is classified, each element of the stack is compared with the training survey's "
            "distribution recorded on the model card: when more than 25 % of the cells of an element lie outside "
            "the training 1–99 % range, the run is refused with both distributions (a model this far from its "
            "training data gives meaningless, often constant, maps); 'Extrapolate beyond the training data' runs "
            "it anyway and marks every output as extrapolation. A map that barely varies is flagged as constant "
            "and gives no classes and no target areas.\n\n"
            "Large grids: the map is computed and written in row tiles (compressed, tiled GeoTIFFs with "
            "overviews), window by window and on the shared trunk alike, so memory stays bounded whatever the "
            "grid's size; a Dask scheduler address (advanced) computes the same row tiles on a cluster, with the "
            "same results (window by window, and row bands of the shared trunk).\n\n"
            "Shared trunk (models exported with their trunk and head parts): the network's "
            "convolutional trunk runs once over the whole stack and each cell's features are read off the "
            "feature map, tens of times faster than window by window. For a model whose head was trained on "
            "those shared-trunk features (card: dense.head_trained_on = dense_features) this IS the model: it "
            "is used by default, every cell is the model's exact output and no stride applies. For a per-window "
            "head, tick the option to use it anyway: then it is an approximation, not the same map (a window "
            "classified alone sees zeros beyond its edge where the shared trunk sees the neighbouring cells; "
            "see the README for the measured difference).\n\n"
            "Outputs: probability raster (0–1), classes (low / moderate / high by your thresholds, or with "
            "known deposits by the prediction–area intersection), the high-class target areas as polygons "
            "ranked by mean probability (Area I, II, ...), styled, and an HTML report with the model card.\n\n"
            "Reference: Szegedy et al. (2016) Rethinking the Inception architecture for computer vision, "
            "CVPR; the Janja (SE Iran) study (2025) of GAN-augmented transfer learning on stream sediments."
        )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.STACK, "Element stack (multi-band, from janja:krige)", optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.ELEMENT_RASTERS, "…or one single-band raster per element (named by band description or file name)",
            compat.SOURCE_RASTER, optional=True))
        # Installed classifiers by name (QGIS profile first, then the plugin's models/); the file parameter
        # below overrides the list (any .onnx with a janja card, e.g. in the modeler or qgis_process).
        self.installed = profile.installed_models("supervised_classifier")
        recommended = profile.recommended_model()
        names = [m.name for m in self.installed]
        self.addParameter(QgsProcessingParameterEnum(
            self.INSTALLED_MODEL, f"Installed model (more: {MODELS_BUTTON})",
            options=[m.label() for m in self.installed],
            defaultValue=names.index(recommended.name) if recommended else None, optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, "…or an ONNX model file (its card: the .json beside it or inside the file)",
            extension="onnx", optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.MASK, "Mask polygons (cells outside are not predicted)", [compat.SOURCE_POLYGON],
            optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.DEPOSITS, "Known deposits (classes by the prediction–area intersection)",
            [compat.SOURCE_POINT], optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.STRIDE, "Stride (predict every k-th cell, interpolate the rest)",
            compat.NUMBER_INTEGER, 1, minValue=1, maxValue=16))
        self.addParameter(QgsProcessingParameterBoolean(
            self.SHARED_TRUNK, "Shared trunk for any model (one trunk pass over the stack; faster, approximate "
            "unless the model's head was trained on shared-trunk features: those always use it)", False))
        self.addParameter(QgsProcessingParameterBoolean(
            self.EXTRAPOLATE, "Extrapolate beyond the training data (outputs marked as extrapolation)", False))
        self.addParameter(QgsProcessingParameterNumber(
            self.THREADS, "onnxruntime threads (0 = all cores)", compat.NUMBER_INTEGER, 0,
            minValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.BATCH, "Windows per batch", compat.NUMBER_INTEGER, 64, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.MODERATE, "Moderate class from probability", compat.NUMBER_DOUBLE, 0.5,
            minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterNumber(
            self.HIGH, "High class from probability", compat.NUMBER_DOUBLE, 0.8,
            minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_TARGET_CELLS, "Smallest target area (cells)", compat.NUMBER_INTEGER, 1,
            minValue=1))
        scheduler = QgsProcessingParameterString(
            self.SCHEDULER, "Dask scheduler address (optional; empty = this computer's threads), e.g. "
            "tcp://10.0.0.5:8786", optional=True)
        scheduler.setFlags(scheduler.flags() | compat.FLAG_ADVANCED)
        self.addParameter(scheduler)
        self.addParameter(QgsProcessingParameterRasterDestination(self.PROBABILITY, "Prospectivity probability"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.CLASSES, "Prospectivity classes", optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.TARGETS, "Target areas", compat.SOURCE_POLYGON, optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.REPORT, "Report", "HTML files (*.html)", optional=True, createByDefault=True))

    def perform(self, parameters, context, feedback):
        from ..core.inference.windows import RasterStack

        model = self.chosen_model(parameters, context)
        if not model:
            raise QgsProcessingException(self.no_model_sentence())
        feedback.pushInfo(f"Model: {model}")
        path, crs = self.stack_path(parameters, context, feedback)
        settings = pr.ProspectivitySettings(
            stride=self.parameterAsInt(parameters, self.STRIDE, context),
            threads=self.parameterAsInt(parameters, self.THREADS, context) or None,
            batch_size=self.parameterAsInt(parameters, self.BATCH, context),
            moderate=self.parameterAsDouble(parameters, self.MODERATE, context),
            high=self.parameterAsDouble(parameters, self.HIGH, context),
            min_target_cells=self.parameterAsInt(parameters, self.MIN_TARGET_CELLS, context),
            # unticked: the card decides (a head trained on shared-trunk features runs on them, exactly)
            dense=True if self.parameterAsBool(parameters, self.SHARED_TRUNK, context) else None,
            extrapolate=self.parameterAsBool(parameters, self.EXTRAPOLATE, context),
        )
        with RasterStack(path) as stack:
            grid = stack.grid()
        mask = self.mask_cells(parameters, context, crs, grid)
        deposits = self.deposit_cells(parameters, context, feedback, crs, grid)

        def progress(fraction):
            feedback.setProgress(95.0 * fraction)
            return feedback.isCanceled()

        prob_path = self.parameterAsOutputLayer(parameters, self.PROBABILITY, context)
        cls_path = self.parameterAsOutputLayer(parameters, self.CLASSES, context)
        labels_path = None
        scheduler = self.parameterAsString(parameters, self.SCHEDULER, context).strip()
        loaded = mc.load_model(model, threads=settings.threads)
        # streamed tile by tile into the files, memory bounded: window by window (streamed_prospectivity) or
        # on the shared trunk band by band (streamed_dense)
        from ..core.inference import streamed_prospectivity as sp

        if parameters.get(self.TARGETS) is not None:
            labels_path = os.path.join(QgsProcessingUtils.tempFolder(), f"target_ranks_{uuid.uuid4().hex[:8]}.tif")
        result = sp.run_prospectivity_to_files(path, loaded, prob_path, cls_path or None, labels_path, settings,
                                               mask=mask, deposit_cells=deposits, progress=progress,
                                               scheduler=scheduler or None)
        feedback.pushInfo(f"{result.stats.n_windows:,} windows in {result.seconds:.1f} s "
                          f"({result.stats.windows_per_second:.0f} windows/s); {len(result.targets)} target area(s).")
        if result.computed_on:
            feedback.pushInfo(f"{'Bands' if 'shared trunk' in result.stats.mode else 'Row tiles'} computed on "
                              f"{result.computed_on}.")
        report_stride_error(feedback, result.stride_error)
        for note in result.notes:
            feedback.pushWarning(note)
        outputs = {}
        breaks = [0.0, result.thresholds["moderate"], result.thresholds["high"], 1.0]
        labels = probability_labels(breaks)
        if result.extrapolated:
            labels = [f"{label}, extrapolation" for label in labels]
        colours = ["#2c7bb6", "#ffffbf", "#d7191c"]
        attach_style(context, prob_path, write_class_style(prob_path, 1, breaks, labels, colours),
                     self.post_processors, name="Prospectivity: probability of the prospective class (0–1)")
        outputs[self.PROBABILITY] = prob_path
        if cls_path:
            class_labels = [f"{i + 1} {label}" for i, label in enumerate(labels)]
            qml = write_class_style(cls_path, 1, [0.5, 1.5, 2.5, 3.5], class_labels, colours)
            attach_style(context, cls_path, qml, self.post_processors, name="Prospectivity classes")
            outputs[self.CLASSES] = cls_path
        if parameters.get(self.TARGETS) is not None:
            outputs[self.TARGETS] = self.write_targets(parameters, context, result, crs, labels_path)
            attach_processor(context, outputs[self.TARGETS],
                             CallbackPostProcessor(lambda layer, project: style_targets(layer)),
                             self.post_processors)
        report = self.parameterAsFileOutput(parameters, self.REPORT, context)
        if report:
            rep = HtmlReport("Prospectivity report")
            pr.report_section(rep, result)
            rep.write(report)
            outputs[self.REPORT] = report
        outputs["N_TARGETS"] = len(result.targets)
        return outputs

    def chosen_model(self, parameters, context):
        """The model file: the file parameter, else the installed model picked by name, else the recommended one."""
        given = self.parameterAsFile(parameters, self.MODEL, context)
        if given:
            return given
        if parameters.get(self.INSTALLED_MODEL) not in (None, "") and self.installed:
            index = self.parameterAsEnum(parameters, self.INSTALLED_MODEL, context)
            if 0 <= index < len(self.installed):
                return str(self.installed[index].path)
        recommended = profile.recommended_model()
        return str(recommended.path) if recommended else None

    @staticmethod
    def no_model_sentence():
        return (f"No prospectivity model is installed: click {MODELS_BUTTON} (or run janja:download_model) to "
                "download one, or give an .onnx file with its model card.")

    def readiness_problem(self, parameters, context):
        return super().readiness_problem(parameters, context) or (
            None if self.chosen_model(parameters, context) else self.no_model_sentence())

    def stack_path(self, parameters, context, feedback):
        """The stack's path and CRS: the multi-band stack, or a VRT stacking the single-band element rasters."""
        from ..core.inference.stack_from_rasters import stack_from_rasters

        layers = self.parameterAsLayerList(parameters, self.ELEMENT_RASTERS, context)
        stack_layer = self.parameterAsRasterLayer(parameters, self.STACK, context)
        if layers and stack_layer is not None:
            raise QgsProcessingException("Give either the element stack or the single-band element rasters, not both.")
        if layers:
            vrt = os.path.join(QgsProcessingUtils.tempFolder(), f"element_stack_{uuid.uuid4().hex[:8]}.vrt")
            names = stack_from_rasters([lyr.source().split("|")[0] for lyr in layers], vrt)
            feedback.pushInfo(f"Stacked {len(names)} element rasters as bands: {', '.join(names)}.")
            return vrt, layers[0].crs()
        if stack_layer is None:
            raise QgsProcessingException(
                "No element stack: give the multi-band stack from janja:krige, or one raster per element.")
        return stack_layer.source().split("|")[0], stack_layer.crs()

    def mask_cells(self, parameters, context, crs, grid):
        mask = self.parameterAsSource(parameters, self.MASK, context)
        return None if mask is None else mask_cells_from(mask, crs, grid, context)

    def deposit_cells(self, parameters, context, feedback, crs, grid):
        source = self.parameterAsSource(parameters, self.DEPOSITS, context)
        if source is None:
            return None
        points = read_sample_points(source, [], crs, context, feedback)
        cols = np.floor((points.x - grid.xmin) / grid.cell).astype(int)
        rows = np.floor((grid.ymax - points.y) / grid.cell).astype(int)
        inside = (rows >= 0) & (rows < grid.nrows) & (cols >= 0) & (cols < grid.ncols)
        if not inside.any():
            raise QgsProcessingException("No known deposit lies on the stack: check the deposits layer and its CRS.")
        if not inside.all():
            feedback.pushWarning(f"{int((~inside).sum())} deposit(s) outside the stack are left out.")
        return rows[inside], cols[inside]

    def write_targets(self, parameters, context, result, crs, labels_path=None):
        """Polygonise the target-rank raster: the streamed run's file, else the in-memory labels."""
        from osgeo import gdal, ogr, osr

        fields = QgsFields()
        for name, kind in (("rank", "int"), ("name", "string"), ("cells", "int"),
                           ("area_km2", "double"), ("mean_prob", "double"),
                           ("max_prob", "double")):
            fields.append(compat.field(name, kind))
        sink, dest = self.parameterAsSink(parameters, self.TARGETS, context, fields, compat.WKB_MULTIPOLYGON, crs)
        if sink is None:
            raise QgsProcessingException("The target areas output could not be created.")
        g = result.grid
        if labels_path:
            mem = gdal.Open(str(labels_path))  # float32, nodata outside targets: Polygonize reads it by rows
        else:
            mem = gdal.GetDriverByName("MEM").Create("", g.ncols, g.nrows, 1, gdal.GDT_Int32)
            mem.SetGeoTransform((g.xmin, g.cell, 0.0, g.ymax, 0.0, -g.cell))
            mem.GetRasterBand(1).WriteArray(result.labels.astype(np.int32))
        srs = osr.SpatialReference()
        srs.ImportFromWkt(crs.toWkt())
        source = ogr.GetDriverByName("Memory").CreateDataSource("targets")  # keep: the layer dies with it
        vec = source.CreateLayer("t", srs, ogr.wkbPolygon)
        vec.CreateField(ogr.FieldDefn("rank", ogr.OFTInteger))
        band = mem.GetRasterBand(1)
        gdal.Polygonize(band, band.GetMaskBand() if labels_path else band, vec, 0, ["8CONNECTED=8"])
        parts = {}
        for feature in vec:
            parts.setdefault(feature.GetField("rank"), []).append(
                QgsGeometry.fromWkt(feature.GetGeometryRef().ExportToWkt()))
        suffix = " (extrapolation)" if result.extrapolated else ""
        for target in result.targets:
            feature = QgsFeature(fields)
            feature.setGeometry(QgsGeometry.collectGeometry(parts.get(target.rank, [])))
            feature.setAttributes([target.rank, target.name + suffix, target.n_cells, target.area_km2,
                                   target.mean_probability, target.max_probability])
            sink.addFeature(feature, QgsFeatureSink.Flag.FastInsert)
        return dest




def probability_labels(breaks):
    """Legend entries that say what the numbers are: a probability between 0 and 1."""
    lo, mid, hi = breaks[1], breaks[2], breaks[3]
    return [f"low: probability < {lo:.2f}", f"moderate: {lo:.2f} ≤ probability < {mid:.2f}",
            f"high: {mid:.2f} ≤ probability ≤ {hi:.2f}"]


def style_targets(layer):
    """Target areas: one legend entry per area ('Area I: 2.5 km², mean probability 0.91'), red outlines."""
    from qgis.core import QgsCategorizedSymbolRenderer, QgsFillSymbol, QgsRendererCategory

    from ..core.reporting.units import area_km2

    categories = []
    features = sorted(layer.getFeatures(), key=lambda f: f["rank"])
    for i, f in enumerate(features):
        symbol = QgsFillSymbol.createSimple({
            "color": "255,0,0,0" if i else "215,25,28,60", "outline_color": "#a50026",
            "outline_width": "0.8" if i < 3 else "0.4"})
        categories.append(QgsRendererCategory(
            f["name"], symbol, f"{f['name']}: {area_km2(f['area_km2'])}, mean probability {f['mean_prob']:.2f}"))
    layer.setRenderer(QgsCategorizedSymbolRenderer("name", categories))
    layer.setName("Target areas (ranked by mean probability)")
