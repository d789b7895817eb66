"""janja:thresholds — conventional anomaly thresholds on sample values or a raster band."""

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterBand,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.anomaly import thresholds as th
from ..core.reporting.report import HtmlReport
from . import qgis_compat as compat
from .base import JanjaAlgorithm, parse_number_list
from .classified_outputs import write_class_points, write_class_raster
from .inputs import add_censoring_parameters, choose_input, read_censored_column, read_raster_band

METHODS = ["mean_sd", "median_mad", "tukey", "percentiles"]
METHOD_LABELS = ["Mean + k·SD of log10 values", "Median + k·MAD of log10 values (robust)",
                 "Tukey's upper fence of log10 values (Q3 + 1.5·IQR)", "Percentiles"]


class ThresholdsAlgorithm(JanjaAlgorithm):
    GROUP_ID = "anomalies"
    GROUP = "Anomaly separation"
    POINTS, FIELD, RASTER, BAND = "POINTS", "FIELD", "RASTER", "BAND"
    METHOD, K, PERCENTILES = "METHOD", "K", "PERCENTILES"
    OUTPUT_POINTS, OUTPUT_RASTER, REPORT = "OUTPUT_POINTS", "OUTPUT_RASTER", "REPORT"

    def name(self):
        return "thresholds"

    def displayName(self):
        return "Anomaly thresholds (mean + k·SD, median + k·MAD, Tukey, percentiles)"

    def shortHelpString(self):
        return (
            "Separates background from anomalies with the classical statistical thresholds, on the values "
            "of a sample field (below-detection codes parsed, half the detection limit substituted) or on "
            "the cells of a raster band (e.g. a kriged element).\n\n"
            "Below-detection samples ('<0.1', zeros, negative codes, '<' in the flag field) are background "
            "by construction: the thresholds come from the measured values only and these samples are "
            "always class 0. Too few measured values (under 10) is refused; a percentile that falls among "
            "the non-detects is refused.\n\n"
            "Methods: mean + k·SD of log10 values (k = 1, 2, 3 by default); median + k·MAD of log10 values, "
            "robust to the anomalies themselves (MAD × 1.4826); Tukey's upper fence Q3 + 1.5·IQR of log10 "
            "values; percentiles (75/90/95/98 by default). Thresholds are reported in data units.\n\n"
            "Outputs: the samples with value, class and class name, or a class raster (0 = background), "
            "styled blue to red; an HTML report with the thresholds and the distribution.\n\n"
            "References: Reimann, Filzmoser & Garrett (2005) Background and threshold: critical comparison "
            "of methods of determination, Science of the Total Environment 346:1-16; Tukey (1977) "
            "Exploratory Data Analysis."
        )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.POINTS, "Sample points", [compat.SOURCE_POINT], optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.FIELD, "Element field", parentLayerParameterName=self.POINTS, optional=True))
        add_censoring_parameters(self, self.POINTS, signed=True)
        self.addParameter(QgsProcessingParameterRasterLayer(self.RASTER, "or: raster", optional=True))
        self.addParameter(QgsProcessingParameterBand(self.BAND, "Band", 1, self.RASTER, optional=True))
        self.addParameter(QgsProcessingParameterEnum(self.METHOD, "Method", METHOD_LABELS, defaultValue=1))
        self.addParameter(QgsProcessingParameterString(self.K, "k values (comma separated)", "1,2,3"))
        self.addParameter(QgsProcessingParameterString(self.PERCENTILES, "Percentiles (comma separated)",
                                                       "75,90,95,98"))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_POINTS, "Classified samples", compat.SOURCE_POINT, optional=True))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_RASTER, "Classified raster", optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.REPORT, "Report", "HTML files (*.html)", optional=True, createByDefault=True))

    def compute(self, method, values, k, percentiles, censored=None):
        if method == "mean_sd":
            return th.mean_sd_thresholds(values, k=k, censored=censored)
        if method == "median_mad":
            return th.median_mad_thresholds(values, k=k, censored=censored)
        if method == "tukey":
            return th.tukey_thresholds(values, censored=censored)
        return th.percentile_thresholds(values, percentiles=percentiles, censored=censored)

    def perform(self, parameters, context, feedback):
        source = self.parameterAsSource(parameters, self.POINTS, context)
        raster = self.parameterAsRasterLayer(parameters, self.RASTER, context)
        kind = choose_input(source, raster, "thresholds")
        method = METHODS[self.parameterAsEnum(parameters, self.METHOD, context)]
        k = parse_number_list(self.parameterAsString(parameters, self.K, context), "k values")
        pcts = parse_number_list(self.parameterAsString(parameters, self.PERCENTILES, context), "percentiles")
        outputs = {}
        if kind == "points":
            field = self.parameterAsString(parameters, self.FIELD, context)
            if not field:
                raise QgsProcessingException("Choose the element field of the sample layer.")
            points, parsed = read_censored_column(
                source, field, source.sourceCrs(), context, feedback,
                flag_field=self.parameterAsString(parameters, "FLAG_FIELD", context) or None,
                detection_limit=self.parameterAsDouble(parameters, "DETECTION_LIMIT", context),
                signed=self.parameterAsBoolean(parameters, "SIGNED", context))
            values, censored = parsed.values, parsed.below_detection
            result = self.compute(method, values, k, pcts, censored)
            classes = result.classify(values, censored)
            feedback.pushInfo(th.censoring_note(values, censored))
            name = field
            if parameters.get(self.OUTPUT_POINTS) is not None:
                outputs[self.OUTPUT_POINTS] = write_class_points(
                    self, parameters, self.OUTPUT_POINTS, context, source, points, values, classes, result.labels)
        else:
            band = read_raster_band(raster, self.parameterAsInt(parameters, self.BAND, context))
            values = band.values
            censored = None
            result = self.compute(method, values.ravel(), k, pcts)
            classes = result.classify(values)
            name = band.name
            out = self.parameterAsOutputLayer(parameters, self.OUTPUT_RASTER, context)
            if out:
                outputs[self.OUTPUT_RASTER] = write_class_raster(
                    out, band, classes, result.labels, f"{name} classes", self.post_processors, context,
                    self.OUTPUT_RASTER)
        for i, t in enumerate(result.thresholds):
            feedback.pushInfo(f"{result.threshold_names[i]}: {t:.6g}")
        report = self.parameterAsFileOutput(parameters, self.REPORT, context)
        if report:
            rep = HtmlReport(th.report_title(name))
            th.report_section(rep, {method: result}, element=name, values=values.ravel(),
                              censored=None if censored is None else censored.ravel())
            rep.write(report)
            outputs[self.REPORT] = report
        outputs["THRESHOLDS"] = ",".join(f"{t:.6g}" for t in result.thresholds)
        return outputs
