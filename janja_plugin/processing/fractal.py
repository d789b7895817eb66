"""janja:fractal — concentration–area (raster) and concentration–number (samples) thresholds."""

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterBand,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..core.anomaly import fractal
from ..core.reporting.report import HtmlReport
from . import qgis_compat as compat
from .base import JanjaAlgorithm
from .classified_outputs import write_class_points, write_class_raster
from .inputs import add_censoring_parameters, choose_input, read_censored_column, read_raster_band


class FractalAlgorithm(JanjaAlgorithm):
    GROUP_ID = "anomalies"
    GROUP = "Anomaly separation"
    POINTS, FIELD, RASTER, BAND = "POINTS", "FIELD", "RASTER", "BAND"
    N_SEGMENTS, N_LEVELS = "N_SEGMENTS", "N_LEVELS"
    OUTPUT_POINTS, OUTPUT_RASTER, REPORT = "OUTPUT_POINTS", "OUTPUT_RASTER", "REPORT"

    def name(self):
        return "fractal"

    def displayName(self):
        return "Fractal thresholds (concentration–area, concentration–number)"

    def shortHelpString(self):
        return (
            "Fractal (multifractal) separation of geochemical populations. On a raster band, "
            "concentration–area (C–A): the area A(≥c) of cells at or above each concentration c; on "
            "sample values, concentration–number (C–N): the number N(≥c) of samples. On log–log axes each "
            "population follows a straight line; the breaks between lines are the thresholds.\n\n"
            "The curve is fitted piecewise-linearly by exact dynamic programming; the number of segments "
            "(1–5) is chosen by BIC, or given by you (recommended for kriged rasters, whose smooth curves "
            "can be over-split). Outputs: the samples or a class raster (0 = background), styled; an HTML "
            "report with the log–log plot, fitted segments and thresholds.\n\n"
            "Below-detection samples ('<0.1', zeros, negative codes, '<' in the flag field) are not points "
            "of the C–N curve and are always background (class 0); under 10 measured samples is refused.\n\n"
            "References: Cheng, Agterberg & Ballantyne (1994) The separation of geochemical anomalies from "
            "background by fractal methods, J. Geochemical Exploration 51:109-130; Hassanpour & Afzal (2013) "
            "Application of concentration–number (C–N) multifractal modelling for geochemical anomaly "
            "separation, Arabian J. Geosciences 6:957-970."
        )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.POINTS, "Sample points (C–N)", [compat.SOURCE_POINT], optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.FIELD, "Element field", parentLayerParameterName=self.POINTS, optional=True))
        add_censoring_parameters(self, self.POINTS)
        self.addParameter(QgsProcessingParameterRasterLayer(self.RASTER, "or: raster (C–A)", optional=True))
        self.addParameter(QgsProcessingParameterBand(self.BAND, "Band", 1, self.RASTER, optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.N_SEGMENTS, "Number of segments (0 = choose by BIC)", compat.NUMBER_INTEGER,
            defaultValue=0, minValue=0, maxValue=5))
        self.addParameter(QgsProcessingParameterNumber(
            self.N_LEVELS, "Concentration levels on the curve", compat.NUMBER_INTEGER,
            defaultValue=100, minValue=20, maxValue=1000))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_POINTS, "Classified samples", compat.SOURCE_POINT, optional=True))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_RASTER, "Classified raster", optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.REPORT, "Report", "HTML files (*.html)", optional=True, createByDefault=True))

    def perform(self, parameters, context, feedback):
        source = self.parameterAsSource(parameters, self.POINTS, context)
        raster = self.parameterAsRasterLayer(parameters, self.RASTER, context)
        kind = choose_input(source, raster, "fractal model")
        n_segments = self.parameterAsInt(parameters, self.N_SEGMENTS, context) or None
        n_levels = self.parameterAsInt(parameters, self.N_LEVELS, context)
        outputs = {}
        if kind == "points":
            field = self.parameterAsString(parameters, self.FIELD, context)
            if not field:
                raise QgsProcessingException("Choose the element field of the sample layer.")
            points, parsed = read_censored_column(
                source, field, source.sourceCrs(), context, feedback,
                flag_field=self.parameterAsString(parameters, "FLAG_FIELD", context) or None,
                detection_limit=self.parameterAsDouble(parameters, "DETECTION_LIMIT", context))
            values, censored = parsed.values, parsed.below_detection
            result = fractal.concentration_number(values, n_levels=n_levels, n_segments=n_segments,
                                                  censored=censored)
            name = field
            if parameters.get(self.OUTPUT_POINTS) is not None:
                outputs[self.OUTPUT_POINTS] = write_class_points(
                    self, parameters, self.OUTPUT_POINTS, context, source, points, values,
                    result.classify(values, censored), result.labels)
        else:
            band = read_raster_band(raster, self.parameterAsInt(parameters, self.BAND, context))
            result = fractal.concentration_area(band.values, band.cell_width * band.cell_height,
                                                n_levels=n_levels, n_segments=n_segments)
            name = band.name
            out = self.parameterAsOutputLayer(parameters, self.OUTPUT_RASTER, context)
            if out:
                outputs[self.OUTPUT_RASTER] = write_class_raster(
                    out, band, result.classify(band.values), result.labels, f"{name} {result.kind} classes",
                    self.post_processors, context, self.OUTPUT_RASTER)
        feedback.pushInfo(f"{result.kind}: {result.n_segments} segment(s) ({result.chosen_by}); thresholds "
                          + ", ".join(f"{t:.6g}" for t in result.thresholds))
        for note in result.notes:
            feedback.pushWarning(note)
        report = self.parameterAsFileOutput(parameters, self.REPORT, context)
        if report:
            rep = HtmlReport(fractal.report_title(result, name))
            fractal.report_section(rep, result, element=name)
            rep.write(report)
            outputs[self.REPORT] = report
        outputs["THRESHOLDS"] = ",".join(f"{t:.6g}" for t in result.thresholds)
        outputs["N_SEGMENTS"] = result.n_segments
        return outputs
