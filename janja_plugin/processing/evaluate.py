"""janja:evaluate — score any map against known deposits: ROC/AUC, the OpenGADBench protocol, P–A."""

import csv

import numpy as np
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDistance,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from ..core.evaluation import evaluate as ev
from ..core.reporting.report import HtmlReport, write_text_atomic
from . import qgis_compat as compat
from .base import JanjaAlgorithm
from .inputs import choose_input, read_point_values, read_raster_band
from .layers import read_sample_points

WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")
CENSORING = ["half_dl", "half_min_positive"]
CENSORING_LABELS = ["Half the detection limit", "Half the smallest positive value (OpenGADBench cleaning)"]


class EvaluateAlgorithm(JanjaAlgorithm):
    GROUP_ID = "evaluation"
    GROUP = "Evaluation"
    SCORE_POINTS, SCORE_FIELD, CONCENTRATION = "SCORE_POINTS", "SCORE_FIELD", "CONCENTRATION"
    SCORE_RASTER, BAND, DEPOSITS = "SCORE_RASTER", "BAND", "DEPOSITS"
    MIN_DISTANCE, DRAWS, SEED, CENSORED = "MIN_DISTANCE", "DRAWS", "SEED", "CENSORED"
    TABLE, REPORT = "TABLE", "REPORT"

    def name(self):
        return "evaluate"

    def displayName(self):
        return "Evaluate a score against known deposits (ROC/AUC, success rate, prediction–area)"

    def shortHelpString(self):
        return (
            "Scores any map the same way, so methods can be compared side by side: a raster band "
            "(prospectivity, kriged element, anomaly score, classes) or a numeric field of the sample points, "
            "against a point layer of known deposits or occurrences.\n\n"
            "Raster: each deposit takes its cell; ROC/AUC of deposit cells against all other valid cells. "
            "Samples: the published OpenGADBench protocol (each deposit takes the score of its nearest "
            "sample by great-circle distance; an equal number of negatives drawn with replacement from the "
            "samples at least the minimum distance, 5 km by default, from every deposit; AUC mean ± SD over "
            "20 draws, seed 42), so the numbers can be set beside the benchmark's (choose its cleaning "
            "for concentration fields: below-detection values and zeros become half the smallest positive "
            "value). Both: the success-rate "
            "curve (share of deposits captured against share of area or samples) and the prediction–area "
            "plot with its intersection: the zone holding P % of the deposits in A % of the area, "
            "Nd = P/A, We = ln(Nd).\n\n"
            "Outputs: a CSV table of the curves, an HTML report with the plots, and the numbers as outputs "
            "for the modeler. Deposits outside the map, or a map with no valid cells, are refused.\n\n"
            "References: Yousefi & Carranza (2015) Prediction–area (P–A) plot and C–A fractal analysis to "
            "classify and evaluate evidential maps for mineral prospectivity modeling, Computers & "
            "Geosciences 79:69-81; Ding et al. (2026) GeoChemAD/OpenGADBench, arXiv:2603.13068."
        )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer(self.SCORE_RASTER, "Score raster", optional=True))
        self.addParameter(QgsProcessingParameterBand(self.BAND, "Band", 1, self.SCORE_RASTER, optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.SCORE_POINTS, "or: scored sample points", [compat.SOURCE_POINT], optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.SCORE_FIELD, "Score field", parentLayerParameterName=self.SCORE_POINTS, optional=True))
        self.addParameter(QgsProcessingParameterBoolean(
            self.CONCENTRATION, "The score field holds concentrations (parse '<DL', -9999, negative codes)",
            defaultValue=False))
        self.addParameter(QgsProcessingParameterEnum(
            self.CENSORED, "Below-detection concentrations", CENSORING_LABELS, defaultValue=0))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.DEPOSITS, "Known deposits / occurrences", [compat.SOURCE_POINT]))
        self.addParameter(QgsProcessingParameterDistance(
            self.MIN_DISTANCE, "Negatives at least this far from every deposit (sample protocol)", 5000.0,
            minValue=0.0))
        self.addParameter(QgsProcessingParameterNumber(
            self.DRAWS, "Number of negative draws (sample protocol)", compat.NUMBER_INTEGER, 20,
            minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.SEED, "Random seed", compat.NUMBER_INTEGER, 42))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.TABLE, "Curves table", "CSV files (*.csv)", optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.REPORT, "Report", "HTML files (*.html)", optional=True, createByDefault=True))
        for name, text in (("AUC", "AUC (mean over draws for samples)"), ("AUC_SD", "AUC standard deviation"),
                           ("PA_THRESHOLD", "P–A intersection threshold"),
                           ("PA_PREDICTION_RATE", "P–A prediction rate (% deposits)"),
                           ("PA_AREA", "P–A occupied area (%)"), ("PA_WEIGHT", "P–A weight ln(Nd)")):
            self.addOutput(QgsProcessingOutputNumber(name, text))

    def deposits_in(self, parameters, context, feedback, crs):
        source = self.parameterAsSource(parameters, self.DEPOSITS, context)
        if source is None:
            raise QgsProcessingException("The deposits layer could not be opened.")
        deposits = read_sample_points(source, [], crs, context, feedback)
        if deposits.x.size == 0:
            raise QgsProcessingException("The deposits layer has no points.")
        return deposits

    def perform(self, parameters, context, feedback):
        points = self.parameterAsSource(parameters, self.SCORE_POINTS, context)
        raster = self.parameterAsRasterLayer(parameters, self.SCORE_RASTER, context)
        kind = choose_input(points, raster, "score")
        outputs = {}
        if kind == "points":
            field = self.parameterAsString(parameters, self.SCORE_FIELD, context)
            if not field:
                raise QgsProcessingException("Choose the score field of the sample layer.")
            conc = self.parameterAsBool(parameters, self.CONCENTRATION, context)
            substitution = CENSORING[self.parameterAsEnum(parameters, self.CENSORED, context)]
            samples, scores = read_point_values(points, field, WGS84, context, feedback, concentrations=conc,
                                                substitution=substitution)
            deposits = self.deposits_in(parameters, context, feedback, WGS84)
            protocol = ev.sample_protocol_auc(
                samples.x, samples.y, scores, deposits.x, deposits.y,
                min_distance_km=self.parameterAsDouble(parameters, self.MIN_DISTANCE, context) / 1000.0,
                n_draws=self.parameterAsInt(parameters, self.DRAWS, context),
                seed=self.parameterAsInt(parameters, self.SEED, context), geographic=True)
            d = ev.distances_km(deposits.x, deposits.y, samples.x, samples.y, True)
            far = np.all(d >= protocol.min_distance_km, axis=0) & np.isfinite(scores)
            deposit_scores = protocol.deposit_scores
            roc = ev.roc_curve(deposit_scores[np.isfinite(deposit_scores)], scores[far])
            all_scores, title = scores, field
            outputs.update(AUC=protocol.auc_mean, AUC_SD=protocol.auc_sd)
            feedback.pushInfo(f"Protocol AUC {protocol.auc_mean:.3f} ± {protocol.auc_sd:.3f} "
                              f"({protocol.n_draws} draws, {protocol.n_eligible_negatives} eligible negatives)")
        else:
            band = read_raster_band(raster, self.parameterAsInt(parameters, self.BAND, context))
            deposits = self.deposits_in(parameters, context, feedback, band.crs)
            cx, cy = band.cell_centres()
            all_scores = band.values.ravel()
            idx = ev.deposit_cells(cx, cy, all_scores, deposits.x, deposits.y, band.cell_width, band.cell_height)
            roc = ev.raster_roc(all_scores, idx)
            deposit_scores = all_scores[idx]
            protocol, title = None, band.name
            outputs.update(AUC=roc.auc, AUC_SD=float("nan"))
            feedback.pushInfo(f"ROC AUC {roc.auc:.3f} ({roc.n_positive} deposit cells)")
        success = ev.success_rate_curve(all_scores, deposit_scores)
        pa = ev.prediction_area(all_scores, deposit_scores)
        outputs.update(PA_THRESHOLD=pa.intersection_threshold, PA_PREDICTION_RATE=pa.prediction_rate_at,
                       PA_AREA=pa.area_at, PA_WEIGHT=pa.weight)
        feedback.pushInfo(f"P–A intersection at {pa.intersection_threshold:.6g}: {pa.prediction_rate_at:.1f} % "
                          f"of deposits in {pa.area_at:.1f} % of the area (We {pa.weight:.2f})")
        table = self.parameterAsFileOutput(parameters, self.TABLE, context)
        if table:
            write_text_atomic(table, curves_csv(pa, success))
            outputs[self.TABLE] = table
        report = self.parameterAsFileOutput(parameters, self.REPORT, context)
        if report:
            rep = HtmlReport(f"Evaluation of {title} against known deposits")
            ev.report_section(rep, roc=roc, protocol=protocol, success=success, pa=pa)
            rep.write(report)
            outputs[self.REPORT] = report
        return outputs


def curves_csv(pa, success):
    """The P–A and success-rate curves as one CSV text (curve, threshold, x, y)."""
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["curve", "threshold", "x", "y"])
    for t, p, a in zip(pa.thresholds, pa.prediction_rate, pa.occupied_area):
        writer.writerow(["prediction_area", f"{t:.8g}", f"{a:.6g}", f"{p:.6g}"])
    for t, a, c in zip(success.thresholds, success.area_share, success.deposit_share):
        writer.writerow(["success_rate", f"{t:.8g}", f"{a:.6g}", f"{c:.6g}"])
    return buffer.getvalue()
