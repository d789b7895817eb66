"""janja:robust_mahalanobis — a multivariate conventional score: robust distance on log-ratios."""

import numpy as np
from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..core.anomaly import multivariate
from ..core.geostatistics.samples import parse_censored
from ..core.reporting.report import HtmlReport
from . import qgis_compat as compat
from .base import JanjaAlgorithm
from .classified_outputs import write_class_points
from .inputs import read_raster_band
from .layers import read_sample_points
from .styling import attach_style, write_class_style


class RobustMahalanobisAlgorithm(JanjaAlgorithm):
    GROUP_ID = "anomalies"
    GROUP = "Anomaly separation"
    POINTS, FIELDS, STACK = "POINTS", "FIELDS", "STACK"
    OUTPUT_POINTS, OUTPUT_RASTER, REPORT = "OUTPUT_POINTS", "OUTPUT_RASTER", "REPORT"

    def name(self):
        return "robust_mahalanobis"

    def displayName(self):
        return "Multivariate anomaly score (robust Mahalanobis distance on log-ratios)"

    def shortHelpString(self):
        return (
            "A multivariate anomaly score: how far each sample's (or cell's) element composition lies from "
            "the bulk of the survey. Concentrations are compositional, so they are taken as log-ratios "
            "(isometric log-ratio pivot coordinates, equivalent to clr with a pseudo-inverse); the centre and "
            "scatter of the background are estimated robustly (minimum covariance determinant, FastMCD), so "
            "the anomalies do not mask themselves. Distances above the chi-square 97.5 % cutoff are flagged.\n\n"
            "Inputs: sample points with three or more element fields (censored values parsed, half the "
            "detection limit substituted), or a multi-band element stack from janja:krige (every band). "
            "Outputs: the samples with the distance and an outlier flag, or a distance raster; an HTML report.\n\n"
            "References: Filzmoser, Hron & Reimann (2009) Principal component analysis for compositional data "
            "with outliers, Environmetrics 20:621-632; Rousseeuw & Van Driessen (1999) A fast algorithm for "
            "the minimum covariance determinant estimator, Technometrics 41:212-223."
        )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.POINTS, "Sample points", [compat.SOURCE_POINT], optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.FIELDS, "Element fields (three or more)", parentLayerParameterName=self.POINTS,
            allowMultiple=True, optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(self.STACK, "or: element stack", optional=True))
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_POINTS, "Scored samples", compat.SOURCE_POINT, optional=True))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_RASTER, "Distance raster", optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.REPORT, "Report", "HTML files (*.html)", optional=True, createByDefault=True))

    def perform(self, parameters, context, feedback):
        source = self.parameterAsSource(parameters, self.POINTS, context)
        stack = self.parameterAsRasterLayer(parameters, self.STACK, context)
        if (source is None) == (stack is None):
            raise QgsProcessingException("Give either sample points with element fields, or an element stack.")
        outputs = {}
        if source is not None:
            fields = compat.parameter_as_strings(self, parameters, self.FIELDS, context)
            points = read_sample_points(source, fields, source.sourceCrs(), context, feedback)
            x = np.column_stack([parse_censored(points.raw[f], column=f).values for f in fields])
            result = multivariate.robust_mahalanobis(x, elements=fields)
            if parameters.get(self.OUTPUT_POINTS) is not None:
                classes = np.where(np.isnan(result.distances), -1, result.outliers.astype(int))
                outputs[self.OUTPUT_POINTS] = write_class_points(
                    self, parameters, self.OUTPUT_POINTS, context, source, points, result.distances, classes,
                    ["background", "multivariate outlier"], value_field="robust_distance")
        else:
            from ..core.raster_grid import Grid, write_stack

            bands = [read_raster_band(stack, b) for b in range(1, stack.bandCount() + 1)]
            x = np.column_stack([b.values.ravel() for b in bands])
            result = multivariate.robust_mahalanobis(x, elements=[b.name for b in bands])
            out = self.parameterAsOutputLayer(parameters, self.OUTPUT_RASTER, context)
            if out:
                first = bands[0]
                t = first.transform
                grid = Grid(t.c, t.f, first.cell_width, first.values.shape[1], first.values.shape[0])
                write_stack(out, [result.distances.reshape(first.values.shape)], ["robust_distance"], grid,
                            first.crs.toWkt())
                d = result.distances[np.isfinite(result.distances)]
                breaks = [float(d.min()), result.cutoff, float(max(d.max(), result.cutoff * 1.0001))]
                qml = write_class_style(out, 1, breaks, ["background", "multivariate outlier"])
                attach_style(context, out, qml, self.post_processors)
                outputs[self.OUTPUT_RASTER] = out
        feedback.pushInfo(f"{result.n_used} rows scored, {int(np.sum(result.outliers))} above the cutoff "
                          f"{result.cutoff:.3g}; {result.n_left_out} left out (a missing or non-positive part)")
        report = self.parameterAsFileOutput(parameters, self.REPORT, context)
        if report:
            rep = HtmlReport(multivariate.REPORT_TITLE)
            multivariate.report_section(rep, result)
            rep.write(report)
            outputs[self.REPORT] = report
        return outputs
