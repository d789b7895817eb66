"""janja:evaluate — score any map against known deposits: ROC/AUC, the OpenGADBench protocol, P–A."""

import csv

import numpy as np
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
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
    BASELINE, BASELINE_BAND, ALLOW_OUTSIDE = "BASELINE", "BASELINE_BAND", "ALLOW_OUTSIDE"
    MERGE = "MERGE_DUPLICATES"
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
            "samples at least the minimum distance from every deposit; AUC mean ± SD over 20 draws, seed 42), "
            "so the numbers can be set beside the benchmark's (choose its cleaning for concentration fields: "
            "below-detection values and zeros become half the smallest positive value). Left empty, the minimum "
            "distance follows the benchmark scripts' per-area rule, min(5 km, max(0.1 km, 8 × the median "
            "sample spacing)), and the output says what was used. Samples at the same location are one location "
            "scored by their mean, as janja:krige merges them. Deposits farther from every sample than the "
            "survey is wide (a CRS mix-up) are refused, or warned about when only some are. Both: the success-rate "
            "curve (share of deposits captured against share of area or samples) and the prediction–area "
            "plot with its intersection: the zone holding P % of the deposits in A % of the area, "
            "Nd = P/A, We = ln(Nd).\n\n"
            "Baseline: give the kriged target element (e.g. band 1 of janja:krige's stack) and it is scored by "
            "the same method beside the map, and the report says which is better. Learned maps from "
            "janja:prospectivity carry their model's training sites: when the deposits evaluated are those "
            "sites, every figure is labelled 'in-sample (training labels): not a validation', and the model "
            "card's held-out numbers are shown first.\n\n"
            "Outputs: a CSV table of the curves, an HTML report with the plots, and the numbers as outputs "
            "for the modeler. Deposits outside the map are refused unless 'Leave out deposits outside the map' "
            "is set; a map with no valid cells is refused.\n\n"
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
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.BASELINE, "Baseline to score beside it (e.g. the kriged target element)", optional=True))
        self.addParameter(QgsProcessingParameterBand(
            self.BASELINE_BAND, "Baseline band", 1, self.BASELINE, optional=True))
        self.addParameter(QgsProcessingParameterBoolean(
            self.ALLOW_OUTSIDE, "Leave out deposits outside the map (raster)", defaultValue=False))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_DISTANCE, "Negatives at least this far from every deposit, metres (sample protocol; empty = "
            "per-area rule from the sample spacing)", compat.NUMBER_DOUBLE, None, optional=True,
            minValue=0.0))
        merge = QgsProcessingParameterBoolean(
            self.MERGE, "Samples at the same location are one location scored by their mean (off: every row "
            "counts, as the OpenGADBench code does)", defaultValue=True)
        merge.setFlags(merge.flags() | compat.FLAG_ADVANCED)
        self.addParameter(merge)
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
                           ("PA_AREA", "P–A occupied area (%)"), ("PA_WEIGHT", "P–A weight ln(Nd)"),
                           ("BASELINE_AUC", "Baseline AUC by the same method (NaN without a baseline)"),
                           ("IN_SAMPLE", "1 when the deposits were the map's training labels (in-sample)")):
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
        baseline_layer = self.parameterAsRasterLayer(parameters, self.BASELINE, context)
        kind = choose_input(points, raster, "score")
        outputs = {}
        if kind == "points":
            score = self.score_points(parameters, context, feedback, points)
        else:
            score = self.score_raster(parameters, context, feedback, raster)
        baseline = None
        if baseline_layer is not None:
            band = self.parameterAsInt(parameters, self.BASELINE_BAND, context) or 1
            baseline = self.score_baseline(parameters, context, feedback, score, baseline_layer, band)
        if baseline is None and score.get("tags", {}).get("janja_model_kind") == "supervised_classifier":
            score["notes"].insert(0, "WARNING: this is a learned map and no baseline was given. Give the kriged "
                                     "target element as BASELINE (band 1 of janja:krige's stack): a learned map "
                                     "is only worth using where it beats it.")
        stride_note = stride_note_from_tags(score.get("tags", {}))
        if stride_note:
            score["notes"].insert(0, stride_note)
        scope = ev.scope_label(score["in_sample"]) if score["in_sample"] is not None else None
        roc, protocol, success, pa = score["roc"], score["protocol"], score["success"], score["pa"]
        outputs.update(AUC=score["auc"], AUC_SD=score["auc_sd"], PA_THRESHOLD=pa.intersection_threshold,
                       PA_PREDICTION_RATE=pa.prediction_rate_at, PA_AREA=pa.area_at, PA_WEIGHT=pa.weight,
                       BASELINE_AUC=baseline["auc"] if baseline else float("nan"),
                       IN_SAMPLE=1 if scope == ev.IN_SAMPLE_LABEL else 0)
        label = f" [{scope}]" if scope and scope != "deposits not used to train the map" else ""
        feedback.pushInfo(f"{score['what']} {score['auc']:.3f}{score['auc_text']}{label}")
        feedback.pushInfo(f"P–A intersection at {pa.intersection_threshold:.6g}: {pa.prediction_rate_at:.1f} % "
                          f"of deposits in {pa.area_at:.1f} % of the area (We {pa.weight:.2f}){label}")
        if label:
            feedback.pushWarning(f"These deposits were the map's training labels: {scope}. The model card's held-out "
                                 "numbers are the validation.")
        verdict = None
        if baseline:
            verdict = baseline_verdict(score["title"], score["auc"], baseline["title"], baseline["auc"], score["what"])
            feedback.pushInfo(f"Baseline {baseline['title']}: {score['what']} {baseline['auc']:.3f}. {verdict}")
        for note in score["notes"]:
            feedback.pushWarning(note)
        table = self.parameterAsFileOutput(parameters, self.TABLE, context)
        if table:
            write_text_atomic(table, curves_csv(pa, success, scope or "", score, baseline))
            outputs[self.TABLE] = table
        report = self.parameterAsFileOutput(parameters, self.REPORT, context)
        if report:
            rep = HtmlReport(f"Evaluation of {score['title']} against known deposits"
                             + (" — IN-SAMPLE, NOT A VALIDATION" if scope == ev.IN_SAMPLE_LABEL else ""))
            self.report_summary(rep, score, baseline, scope, verdict)
            ev.report_section(rep, title="Evaluation against known deposits" + label, roc=roc, protocol=protocol,
                              success=success, pa=pa)
            if baseline:
                ev.report_section(rep, title=f"Baseline: {baseline['title']}, same method", roc=baseline["roc"],
                                  protocol=baseline["protocol"], success=baseline["success"], pa=baseline["pa"])
            rep.write(report)
            outputs[self.REPORT] = report
        return outputs

    def score_points(self, parameters, context, feedback, points):
        field = self.parameterAsString(parameters, self.SCORE_FIELD, context)
        if not field:
            raise QgsProcessingException("Choose the score field of the sample layer.")
        conc = self.parameterAsBool(parameters, self.CONCENTRATION, context)
        substitution = CENSORING[self.parameterAsEnum(parameters, self.CENSORED, context)]
        samples, scores = read_point_values(points, field, WGS84, context, feedback, concentrations=conc,
                                            substitution=substitution)
        deposits = self.deposits_in(parameters, context, feedback, WGS84)
        given = parameters.get(self.MIN_DISTANCE)
        min_km = None if given in (None, "") else self.parameterAsDouble(parameters, self.MIN_DISTANCE, context) / 1e3
        result = self.protocol(parameters, context, samples.x, samples.y, scores, deposits, min_km)
        result.update(title=field, samples=samples, deposits=deposits, in_sample=None)
        return result

    def protocol(self, parameters, context, sx, sy, scores, deposits, min_km):
        """The sample protocol with its ROC, success rate and P–A, on merged duplicate locations."""
        merge = self.parameterAsBool(parameters, self.MERGE, context)
        protocol = ev.sample_protocol_auc(
            sx, sy, scores, deposits.x, deposits.y, min_distance_km=min_km,
            n_draws=self.parameterAsInt(parameters, self.DRAWS, context),
            seed=self.parameterAsInt(parameters, self.SEED, context), geographic=True, merge_duplicates=merge)
        notes = []
        far = ev.check_far_deposits(protocol.deposit_distance_km, ev.survey_extent_km(sx, sy, True))
        if far:
            notes.append(far)
        mx, my, ms = ev.merge_duplicate_locations(sx, sy, scores)[:3] if merge else (sx, sy, np.asarray(scores))
        d = ev.distances_km(deposits.x, deposits.y, mx, my, True)
        negatives = np.all(d >= protocol.min_distance_km, axis=0) & np.isfinite(ms)
        deposit_scores = protocol.deposit_scores
        roc = ev.roc_curve(deposit_scores[np.isfinite(deposit_scores)], ms[negatives])
        notes.append(f"Negatives at least {protocol.min_distance_km:.3g} km from every deposit "
                     f"({protocol.min_distance_rule}); " + (
                         f"{protocol.n_merged_locations} location(s) with several rows scored by their mean."
                         if merge else "duplicate rows kept, as the OpenGADBench code does."))
        return dict(roc=roc, protocol=protocol, success=ev.success_rate_curve(ms, deposit_scores),
                    pa=ev.prediction_area(ms, deposit_scores), auc=protocol.auc_mean, auc_sd=protocol.auc_sd,
                    auc_text=f" ± {protocol.auc_sd:.3f} ({protocol.n_draws} draws, {protocol.n_eligible_negatives} "
                             "eligible negatives)", what="Protocol AUC", notes=notes)

    def score_raster(self, parameters, context, feedback, raster):
        band = read_raster_band(raster, self.parameterAsInt(parameters, self.BAND, context))
        deposits = self.deposits_in(parameters, context, feedback, band.crs)
        allow = self.parameterAsBool(parameters, self.ALLOW_OUTSIDE, context)
        result = self.raster_scores(band, deposits, allow)
        result.update(title=band.name, band=band, deposits=deposits)
        result["tags"] = raster_tags(band)  # read once: the model's training sites and held-out numbers
        mask = training_site_mask_from_tags(result["tags"], band, deposits)
        result["in_sample"] = mask
        if mask is not None and mask.any() and not mask.all():
            cells = result["cells"][~mask]
            if (cells >= 0).any():
                other = ev.raster_roc(band.values.ravel(), cells)
                result["notes"].append(
                    f"On the {int((~mask).sum())} deposits that were not training labels alone: ROC AUC "
                    f"{other.auc:.3f} ({other.n_positive} deposit cells).")
        return result

    @staticmethod
    def raster_scores(band, deposits, allow, valid=None):
        cx, cy = band.cell_centres()
        all_scores = band.values.ravel().copy()
        if valid is not None:
            all_scores[~valid] = np.nan
        idx = ev.deposit_cells(cx, cy, all_scores, deposits.x, deposits.y, band.cell_width, band.cell_height,
                               allow_outside=allow)
        notes = []
        if (idx < 0).any():
            notes.append(f"{int((idx < 0).sum())} of {idx.size} deposits lie outside the map or on nodata cells and "
                         "were left out.")
        kept = idx[idx >= 0]
        if kept.size == 0:
            raise QgsProcessingException("No deposit lies on a valid cell of the map: check the deposits layer and "
                                         "its CRS.")
        roc = ev.raster_roc(all_scores, idx)
        deposit_scores = all_scores[kept]
        return dict(roc=roc, protocol=None, success=ev.success_rate_curve(all_scores, deposit_scores),
                    pa=ev.prediction_area(all_scores, deposit_scores), auc=roc.auc, auc_sd=float("nan"),
                    auc_text=f" ({roc.n_positive} deposit cells)", what="ROC AUC", notes=notes, cells=idx)

    def score_baseline(self, parameters, context, feedback, score, layer, band_number):
        """The baseline scored by the same method: same cells (raster) or the same protocol draws (samples)."""
        band = read_raster_band(layer, band_number)
        if score["protocol"] is not None:
            samples = read_sample_points(self.parameterAsSource(parameters, self.SCORE_POINTS, context), [],
                                         band.crs, context, feedback)
            values = values_under(band, samples.x, samples.y)
            given = score["protocol"].min_distance_km
            result = self.protocol(parameters, context, score["samples"].x, score["samples"].y, values,
                                   score["deposits"], given)
        else:
            main = score["band"]
            same_grid = (main.values.shape == band.values.shape
                         and tuple(main.transform)[:6] == tuple(band.transform)[:6])
            if same_grid:  # the same cells for both: a cell missing in either is left out of both
                both = np.isfinite(main.values.ravel()) & np.isfinite(band.values.ravel())
                score.update(self.raster_scores(main, score["deposits"], True, both))
                result = self.raster_scores(band, score["deposits"], True, both)
            else:
                deposits = self.deposits_in(parameters, context, feedback, band.crs)
                result = self.raster_scores(band, deposits, True)
                result["notes"].append("The baseline is on another grid than the map: each was scored on its own "
                                       "valid cells.")
        result["title"] = band.name
        return result

    def report_summary(self, rep, score, baseline, scope, verdict):
        """Lead with what a geologist must know: in-sample or not, the held-out numbers, and the baseline."""
        held_out = held_out_from_tags(score.get("tags", {}))
        if scope == ev.IN_SAMPLE_LABEL or (scope and scope.startswith("partly")):
            rep.paragraph(f"These deposits were the map's training labels: every figure below is {scope}.",
                          css_class="warning")
        if held_out:
            rows = []
            if held_out.get("learned"):
                auc, sd = held_out["learned"]
                rows.append(["Learned map, held out by spatial blocks (model card, sample protocol)",
                             f"{auc:.3f}" + (f" ± {sd:.3f}" if sd is not None else "")])
            for name, value in (held_out.get("baselines") or {}).items():
                rows.append([f"Baseline: {name.replace('_', ' ')} (model card, same protocol)", f"{float(value):.3f}"])
            rep.table(["Held-out validation (from the model card)", "AUC"], rows)
        rows = [[f"{score['title']}", score["what"], f"{score['auc']:.3f}", scope or "-"]]
        if baseline:
            rows.append([f"{baseline['title']} (baseline)", baseline["what"], f"{baseline['auc']:.3f}", scope or "-"])
        rep.table(["Map", "Measure", "Value", "Deposits"], rows)
        if verdict:
            rep.paragraph(verdict, css_class="warning" if "does NOT" in verdict else "note")
        for note in score["notes"] + (baseline["notes"] if baseline else []):
            rep.paragraph(note, css_class="warning" if note.startswith("WARNING") else "note")


def baseline_verdict(title, auc, baseline_title, baseline_auc, what):
    if auc > baseline_auc:
        return f"{title} beats the baseline {baseline_title} by {what} ({auc:.3f} against {baseline_auc:.3f})."
    return (f"{title} does NOT beat the baseline {baseline_title} by {what} ({auc:.3f} against {baseline_auc:.3f}): "
            "the plain baseline map is the better one here.")


def stride_note_from_tags(tags):
    """The map's own stride check (janja_stride_* tags), so a score of an interpolated map says how it was made."""
    from ..core.inference.stride_check import StrideError

    record = StrideError.from_tags(tags)
    if record is None or record.exact:
        return None
    warning = record.warning()
    if warning:
        return f"WARNING: this map was made at stride {record.stride} and its own check says: {warning}"
    return f"This map was made at stride {record.stride} (interpolated between classified cells). {record.sentence()}"


def raster_tags(band):
    if band is None:
        return {}
    from osgeo import gdal

    ds = gdal.Open(band.path)
    return (ds.GetMetadata() or {}) if ds is not None else {}


def held_out_from_tags(tags):
    import json

    text = tags.get("janja_held_out")
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def training_site_mask_from_tags(tags, band, deposits):
    """Which deposits are the training sites written into the map by janja:prospectivity (None: not a learned
    map, or its card does not record them)."""
    import json

    from qgis.core import QgsCoordinateTransform, QgsPointXY, QgsProject

    if not tags.get("janja_training_sites"):
        return None
    try:
        sites = json.loads(tags["janja_training_sites"])
        tolerance = float(tags.get("janja_training_label_distance", band.cell_width))
    except ValueError:
        return None
    source = QgsCoordinateReferenceSystem(sites["crs"])
    transform = QgsCoordinateTransform(source, band.crs, QgsProject.instance())
    xy = [transform.transform(QgsPointXY(x, y)) for x, y in sites["xy"]]
    return ev.training_site_mask(deposits.x, deposits.y, [p.x() for p in xy], [p.y() for p in xy], tolerance)


def values_under(band, x, y):
    """The band's value under each point (NaN outside or on nodata)."""
    t = band.transform
    with np.errstate(invalid="ignore"):
        cols = np.floor((np.asarray(x) - t.c) / t.a)
        rows = np.floor((np.asarray(y) - t.f) / t.e)
    nrows, ncols = band.values.shape
    inside = np.isfinite(rows) & np.isfinite(cols) & (rows >= 0) & (rows < nrows) & (cols >= 0) & (cols < ncols)
    out = np.full(np.shape(x), np.nan)
    out[inside] = band.values[rows[inside].astype(int), cols[inside].astype(int)]
    return out


def curves_csv(pa, success, scope="", score=None, baseline=None):
    """The summary numbers, then the P–A and success-rate curves, as one CSV text (curve, threshold, x, y,
    deposits); 'deposits' says on every row whether the figure is in-sample."""
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["curve", "threshold", "x", "y", "deposits"])
    if score is not None:
        writer.writerow([f"summary: {score['what']} of {score['title']}", "", "", f"{score['auc']:.6g}", scope])
        writer.writerow([f"summary: P–A intersection of {score['title']}", f"{pa.intersection_threshold:.8g}",
                         f"{pa.area_at:.6g}", f"{pa.prediction_rate_at:.6g}", scope])
    if baseline is not None:
        writer.writerow([f"summary: {baseline['what']} of baseline {baseline['title']}", "", "",
                         f"{baseline['auc']:.6g}", scope])
    for t, p, a in zip(pa.thresholds, pa.prediction_rate, pa.occupied_area):
        writer.writerow(["prediction_area", f"{t:.8g}", f"{a:.6g}", f"{p:.6g}", scope])
    # the curve's corners (exact) and a value every 0.5 % of the area, not one row per cell
    for i in ev.curve_vertices(success.area_share, success.deposit_share):
        t, a, c = success.thresholds[i], success.area_share[i], success.deposit_share[i]
        writer.writerow(["success_rate", f"{t:.8g}", f"{a:.6g}", f"{c:.6g}", scope])
    return buffer.getvalue()
