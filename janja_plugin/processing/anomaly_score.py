"""janja:anomaly_score — element stack + unsupervised anomaly model -> anomaly score, percentile classes,
and the score at each sample."""

from pathlib import Path

import numpy as np
from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.inference import anomaly_score as an
from ..core.inference import streamed_anomaly as sa
from ..core.reporting.report import HtmlReport
from . import qgis_compat as compat
from .base import JanjaAlgorithm, parse_number_list, progress_callback, report_stride_error
from .classified_outputs import write_class_points
from .layers import mask_cells_from, read_sample_points
from .styling import BLUE_TO_RED, attach_style, write_class_style

MODELS_DIR = Path(__file__).resolve().parents[2] / "models" / "wa_anomaly"  # not models/*.onnx: classifiers
BUNDLED = "wa_anomaly_fanogan.onnx"


def bundled_anomaly_model():
    """The bundled anomaly model (trained on the Western Australia survey), or None."""
    path = MODELS_DIR / BUNDLED
    return path if path.is_file() else None


class AnomalyScoreAlgorithm(JanjaAlgorithm):
    GROUP_ID = "prospectivity"
    GROUP = "Prospectivity"
    STACK, MODEL, MASK, POINTS = "STACK", "MODEL", "MASK", "POINTS"
    REQUIRES, PURPOSE = ("onnxruntime",), "running the anomaly model"
    STRIDE, THREADS, BATCH, PERCENTILES = "STRIDE", "THREADS", "BATCH", "PERCENTILES"
    OUTPUT, CLASSES, OUTPUT_POINTS, REPORT = "OUTPUT", "CLASSES", "OUTPUT_POINTS", "REPORT"
    EXTRAPOLATE = "EXTRAPOLATE"
    SCHEDULER = "SCHEDULER"

    def name(self):
        return "anomaly_score"

    def displayName(self):
        return "Unsupervised anomaly score (GAN; janja:spatial_anomaly does better)"

    def shortHelpString(self):
        return (
            "Not the recommended label-free map: held out against known deposits on the Western Australia survey "
            "the bundled GAN scored 0.637, janja:spatial_anomaly 0.880 (no training, no deposits needed) and the "
            "kriged Au smoothed at 4 sample spacings 0.927. Use janja:spatial_anomaly; this one stays for comparison "
            "and for models you train yourself.\n\n"
            "Scores how unusual the multivariate geochemical pattern around each cell is, with an unsupervised "
            "anomaly model trained on the survey itself: no known deposits are needed, which suits early "
            "exploration. The bundled model is an f-AnoGAN (a Wasserstein GAN learns what windows of the "
            "element stack look like; an encoder finds the closest window the GAN can make; the score is how "
            "badly that reconstruction fits, in values and in the critic's features) trained on the Western "
            "Australia survey; train one on your own stack with `make train-anomaly`.\n\n"
            "The windows are cut, transformed and batched exactly as in janja:prospectivity (same engine, same "
            "model card contract; the card must say model_kind 'unsupervised_anomaly'; at stride > 1 the "
            "measured error of the interpolated cells is stated, as there). The score is 0..1: the "
            "share of the training area's windows that scored lower. It flags patterns unlike the bulk of the "
            "area, in either direction, not deposits as such: check what drives a high score in the element "
            "maps.\n\n"
            "Large grids: the score is computed and written in row tiles, so memory stays bounded whatever the "
            "grid's size; a Dask scheduler address (advanced) computes the same row tiles on a cluster, with the "
            "same results.\n\n"
            "Outputs: the score raster styled by its percentile classes, the class raster, the samples with "
            "the score of the cell they lie on (feed them to janja:evaluate), and an HTML report.\n\n"
            "Reference: Schlegl et al. (2019) f-AnoGAN: fast unsupervised anomaly detection with generative "
            "adversarial networks, Medical Image Analysis 54."
        )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer(self.STACK, "Element stack"))
        default = bundled_anomaly_model()
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, "Anomaly model (.onnx; its card beside it or inside the file)", extension="onnx",
            defaultValue=str(default) if default else None, optional=default is not None))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.POINTS, "Samples to score (optional)", [compat.SOURCE_POINT], optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.MASK, "Mask polygons (cells outside are not scored)", [compat.SOURCE_POLYGON],
            optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.PERCENTILES, "Class breaks (percentiles of the map)",
            ",".join(f"{p:g}" for p in an.DEFAULT_PERCENTILES)))
        self.addParameter(QgsProcessingParameterNumber(
            self.STRIDE, "Stride (score every k-th cell, interpolate the rest)",
            compat.NUMBER_INTEGER, 1, minValue=1, maxValue=16))
        self.addParameter(QgsProcessingParameterBoolean(
            self.EXTRAPOLATE, "Extrapolate beyond the training data (outputs marked as extrapolation)", False))
        self.addParameter(QgsProcessingParameterNumber(
            self.THREADS, "onnxruntime threads (0 = all cores)", compat.NUMBER_INTEGER, 0,
            minValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.BATCH, "Windows per batch", compat.NUMBER_INTEGER, 256, minValue=1))
        scheduler = QgsProcessingParameterString(
            self.SCHEDULER, "Dask scheduler address (optional; empty = this computer's threads), e.g. "
            "tcp://10.0.0.5:8786", optional=True)
        scheduler.setFlags(scheduler.flags() | compat.FLAG_ADVANCED)
        self.addParameter(scheduler)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Anomaly score"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.CLASSES, "Anomaly classes (percentiles)", optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_POINTS, "Scored samples", compat.SOURCE_POINT, optional=True,
            createByDefault=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.REPORT, "Report", "HTML files (*.html)", optional=True, createByDefault=True))

    def perform(self, parameters, context, feedback):
        from ..core.inference.windows import RasterStack

        stack_layer = self.parameterAsRasterLayer(parameters, self.STACK, context)
        if stack_layer is None:
            raise QgsProcessingException("The element stack could not be opened: choose a GeoTIFF element stack.")
        model = self.parameterAsFile(parameters, self.MODEL, context)
        if not model:
            raise QgsProcessingException(
                f"No anomaly model given and models/wa_anomaly/{BUNDLED} is not there. Give an .onnx anomaly "
                "model with its model card (train one with `make train-anomaly`, see the README).")
        settings = an.AnomalySettings(
            stride=self.parameterAsInt(parameters, self.STRIDE, context),
            threads=self.parameterAsInt(parameters, self.THREADS, context) or None,
            batch_size=self.parameterAsInt(parameters, self.BATCH, context),
            percentiles=tuple(parse_number_list(self.parameterAsString(parameters, self.PERCENTILES, context),
                                                "class percentiles")),
            extrapolate=self.parameterAsBool(parameters, self.EXTRAPOLATE, context),
        )
        an.check_percentiles(settings.percentiles)
        path = stack_layer.source().split("|")[0]
        crs = stack_layer.crs()
        with RasterStack(path) as stack:
            grid = stack.grid()
        mask_source = self.parameterAsSource(parameters, self.MASK, context)
        mask = None if mask_source is None else mask_cells_from(mask_source, crs, grid, context)
        source = self.parameterAsSource(parameters, self.POINTS, context)
        points = None
        if source is not None:
            points = read_sample_points(source, [], crs, context, feedback)
            if feedback.isCanceled():
                raise QgsProcessingException("Cancelled: nothing was written.")
        score_path = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        cls_path = self.parameterAsOutputLayer(parameters, self.CLASSES, context)
        # streamed tile by tile into the (staged) files: memory bounded whatever the grid (streamed_anomaly)
        result = sa.run_anomaly_score_to_files(path, model, score_path, cls_path or None, settings, mask=mask,
                                               sample_xy=None if points is None else (points.x, points.y),
                                               progress=progress_callback(feedback, 5.0, 95.0),
                                               scheduler=self.parameterAsString(parameters, self.SCHEDULER,
                                                                                context).strip() or None)
        feedback.pushInfo(f"Windows scored on {result.computed_on}.")
        feedback.pushInfo(f"{result.stats.n_windows:,} windows in {result.seconds:.1f} s "
                          f"({result.stats.windows_per_second:.0f} windows/s); class breaks at "
                          + ", ".join(f"P{p:g} = {b:.4f}" for p, b in zip(result.percentiles, result.breaks)))
        report_stride_error(feedback, result.stride_error)
        for note in result.notes:
            feedback.pushWarning(note)
        outputs = {}
        labels = result.class_labels
        colours = _colours(len(labels))
        if result.extrapolated:
            labels = [f"{label}, extrapolation" for label in labels]
        breaks = [0.0] + [float(b) if np.isfinite(b) else 1.0 for b in result.breaks] + [1.0]
        breaks = [float(v) for v in np.maximum.accumulate(breaks)]
        attach_style(context, score_path, write_class_style(score_path, 1, breaks, labels, colours),
                     self.post_processors)
        outputs[self.OUTPUT] = score_path
        if cls_path:
            qml = write_class_style(cls_path, 1, [k + 0.5 for k in range(len(labels) + 1)], labels, colours)
            attach_style(context, cls_path, qml, self.post_processors)
            outputs[self.CLASSES] = cls_path
        if points is not None and parameters.get(self.OUTPUT_POINTS) is not None:
            sample_classes = result.sample_classes().astype(int)
            sample_classes = np.where(sample_classes > 0, sample_classes, -1)
            outputs[self.OUTPUT_POINTS] = write_class_points(
                self, parameters, self.OUTPUT_POINTS, context, source, points, result.sample_scores,
                sample_classes.astype(int), ["no data"] + labels, value_field="anomaly_score")
        report = self.parameterAsFileOutput(parameters, self.REPORT, context)
        if report:
            rep = HtmlReport("Anomaly score report")
            an.report_section(rep, result)
            rep.write(report)
            outputs[self.REPORT] = report
        feedback.setProgress(100.0)
        return outputs


def _colours(n):
    """n colours from blue (background) to red (the top percentile class)."""
    return [BLUE_TO_RED[round(i * (len(BLUE_TO_RED) - 1) / max(1, n - 1))] for i in range(n)]
