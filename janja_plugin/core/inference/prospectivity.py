"""The prospectivity job: element stack + model -> probability raster, classes and ranked target areas.

Pure compute (no QGIS). The Processing glue writes the rasters, polygonises the label raster
(GDAL Polygonize: the label value is the area's rank) and styles the layers.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import JanjaInputError
from ..raster_grid import crs_name, write_stack
from ..reporting import units
from ..reporting.svgplot import chart
from . import distribution as dist
from . import model_card as mc
from . import stride_check as sc
from . import windows as wn

CLASS_NAMES = {1: "low", 2: "moderate", 3: "high"}  # class raster values; 0 = no data


@dataclass
class ProspectivitySettings:
    stride: int = 1  # predict every k-th cell, interpolate the rest
    threads: int | None = None  # onnxruntime intra-op threads; None = all cores
    batch_size: int = wn.DEFAULT_BATCH
    moderate: float = 0.5  # probability from which a cell is 'moderate'
    high: float = 0.8  # ... and 'high'
    min_target_cells: int = 1  # smaller high-class patches are not listed as target areas
    tile_rows: int | None = None  # None = sized for ~64 MB of working memory
    # shared trunk (core/dense.py): far faster; None follows the card (on when its head was trained on shared-trunk
    # features, so the shared trunk IS the model), True/False force it (for a per-window head it approximates)
    dense: bool | None = None
    dense_shifts: int | None = None  # trunk passes per axis in dense mode (shifts² the work); None = the card's
    extrapolate: bool = False  # run on a stack outside the training distribution, marking every output
    stride_sample: int | None = None  # interpolated cells checked exactly at stride > 1; None = stride_check's size
    stride_seed: int = sc.DEFAULT_SEED  # seed of that sample (same seed, same cells: reproducible)


@dataclass
class TargetArea:
    rank: int  # 1 = best; also its value in the label raster
    name: str  # "Area I", "Area II", ...
    n_cells: int
    area_km2: float
    mean_probability: float  # area-weighted mean over its cells (equal cells: the plain mean)
    max_probability: float
    x: float  # centroid of its cell centres, map units
    y: float


@dataclass
class ProspectivityResult:
    probability: np.ndarray  # float32 (rows, cols), 0..1, NaN = no data
    classes: np.ndarray  # uint8: 0 no data, 1 low, 2 moderate, 3 high
    labels: np.ndarray  # int32: 0 outside targets, k = target area of rank k
    targets: list  # TargetArea, best first
    thresholds: dict  # {"moderate": p, "high": p, "method": "user" or "prediction-area"}
    grid: object  # raster_grid.Grid
    crs_wkt: str | None
    card: mc.ModelCard
    model_path: str
    stats: wn.EngineStats
    stride: int
    seconds: float
    notes: list = field(default_factory=list)
    distribution: dist.DistributionCheck | None = None  # the stack against the card's training data
    constant: bool = False  # the map barely varies: no classes, no targets
    spread: float = float("nan")  # its 0.1-99.9 % percentile spread
    stride_error: sc.StrideError | None = None  # measured interpolation error (None: shared trunk, no stride)
    summary: dict | None = None  # a streamed run's report numbers (its grids are on disk, not here)
    paths: dict | None = None  # a streamed run's rasters: {"probability": path, "class": ..., "target_rank": ...}
    computed_on: str | None = None  # where a streamed run's tiles ran on a Dask cluster (distributed_inference.where)

    def map_summary(self):
        """(class counts high/moderate/low, cells with a value, 20-bin histogram of the probability over 0..1)."""
        if self.summary is not None:
            return self.summary["class_counts"], self.summary["n_finite"], self.summary["histogram"]
        p = self.probability[np.isfinite(self.probability)]
        counts = [int((self.classes == k).sum()) for k in (3, 2, 1)]
        return counts, p.size, np.histogram(p, bins=20, range=(0.0, 1.0))[0]

    @property
    def extrapolated(self):
        return self.distribution is not None and self.distribution.out_of_distribution

    def tags(self):
        """GeoTIFF metadata that travels with the rasters, so janja:evaluate can tell extrapolation and
        in-sample deposits (the card's training sites) without the model at hand, and the stride's error."""
        tags = output_tags(self.card, self.extrapolated, self.constant)
        if self.stride_error is not None:
            tags.update(self.stride_error.tags())
        return tags


def output_tags(card, extrapolated, constant):
    import json

    tags = {"model": card.name, "janja_model": card.name, "janja_model_kind": card.model_kind,
            "janja_extrapolation": "yes" if extrapolated else "no", "janja_constant": "yes" if constant else "no"}
    sites = (card.training_data or {}).get("sites")
    if sites and card.model_kind == "supervised_classifier":
        tags["janja_training_sites"] = json.dumps(sites)
        tags["janja_training_label_distance"] = str(label_distance(card))
    held_out = held_out_summary(card)
    if held_out:
        tags["janja_held_out"] = json.dumps(held_out)
    return tags


def label_distance(card):
    """How close to a training site a deposit must be to count as a training label (metres): the card's
    positive-label distance when it records one, else one cell."""
    training = card.training or {}
    for key in ("positive_within", "positive_within_m"):
        if isinstance(training.get(key), int | float):
            return float(training[key])
    labels = training.get("labels") or {}
    if isinstance(labels.get("positive_within"), int | float):
        return float(labels["positive_within"])
    return float(card.cell_size)


def held_out_summary(card):
    """The card's held-out (spatial-block) numbers beside its kriged-target baseline, when it records them."""
    metrics = (card.validation or {}).get("metrics", {})
    out = {}
    if "protocol_auc_held_out_blocks" in metrics:
        out["learned"] = [metrics["protocol_auc_held_out_blocks"], metrics.get("protocol_auc_sd")]
    elif "protocol_auc_sites_not_used" in metrics:  # an unsupervised model: the sites never touched training
        out["learned"] = [metrics["protocol_auc_sites_not_used"], metrics.get("protocol_auc_sd")]
        out["how"] = "known sites never used in training, sample protocol"
    for name, value in (metrics.get("measured_baselines") or {}).items():
        out.setdefault("baselines", {})[name] = value
    for key in ("kriged_target_protocol_auc", "log_target_protocol_auc"):
        if isinstance(metrics.get(key), int | float):
            out.setdefault("baselines", {})[key] = metrics[key]
    for name, value in (metrics.get("baselines") or {}).items():  # computed by training on the same survey
        auc = value.get("auc") if isinstance(value, dict) else value
        if isinstance(auc, int | float) and "protocol" in name:  # the same protocol as the learned score
            out.setdefault("baselines", {})[name] = auc
    return out


def roman(n):
    """Roman numeral of a positive integer (target areas are named 'Area I', 'Area II', ...)."""
    if n < 1:
        raise ValueError("roman numerals start at 1")
    out = []
    for value, letters in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
                           (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        count, n = divmod(n, value)
        out.append(letters * count)
    return "".join(out)


def check_thresholds(moderate, high):
    if not (0.0 <= moderate < high <= 1.0):
        raise JanjaInputError(
            f"The class thresholds must satisfy 0 <= moderate < high <= 1 (probabilities); got moderate={moderate}, "
            f"high={high}."
        )


def classify(probability, moderate, high):
    """uint8 classes: 1 low (p < moderate), 2 moderate, 3 high (p >= high), 0 where p is NaN."""
    check_thresholds(moderate, high)
    p = np.asarray(probability)
    out = np.zeros(p.shape, np.uint8)
    ok = np.isfinite(p)
    out[ok] = 1
    out[ok & (p >= moderate)] = 2
    out[ok & (p >= high)] = 3
    return out


def finite_deposit_scores(scores):
    """The deposits' probabilities that exist; none at all is refused (every deposit on nodata or masked)."""
    scores = np.asarray(scores, float)
    scores = scores[np.isfinite(scores)]
    if scores.size == 0:
        raise JanjaInputError(
            "None of the known deposits lies on a cell with a probability (all fall on nodata or masked cells), "
            "so the prediction-area thresholds cannot be found. Check the deposits layer, or give the moderate "
            "and high thresholds yourself."
        )
    return scores


def prediction_area_thresholds(probability, deposit_cells):
    """(moderate, high) from known deposits: high = the prediction–area intersection (Yousefi & Carranza
    2015), the zone holding P % of the deposits in A % of the area with P + A = 100; moderate = the next
    most prospective cells, so that moderate and high together cover three times the high area (at most
    half the map). A quantile of the map rather than of the deposits: a sharp model puts most of the map
    near 0, where a deposit- or median-based cut would call almost everything moderate."""
    from ..evaluation.evaluate import prediction_area

    rows, cols = (np.asarray(a, int) for a in deposit_cells)
    scores = probability[rows, cols].astype(float)
    scores = finite_deposit_scores(scores)
    valid = probability[np.isfinite(probability)].astype(float)
    high = float(prediction_area(valid, scores).intersection_threshold)
    high_share = float(np.mean(valid >= high))
    moderate = float(np.quantile(valid, 1.0 - min(0.5, 3.0 * high_share)))
    if moderate >= high:
        moderate = high / 2.0
    return moderate, high


def target_areas(probability, classes, grid, min_cells=1):
    """High-class patches (8-connected) ranked by mean probability, then by area: (label raster, [TargetArea]).

    Label values are the ranks, so polygonising the label raster gives polygons carrying their rank.
    """
    from scipy import ndimage

    high = classes == 3
    raw, n = ndimage.label(high, structure=np.ones((3, 3), int))
    labels = np.zeros(classes.shape, np.int32)
    if n == 0:
        return labels, []
    idx = np.arange(1, n + 1)
    p = np.where(high, probability, 0.0).astype(np.float64)
    counts = ndimage.sum_labels(high, raw, idx)
    means = ndimage.sum_labels(p, raw, idx) / counts
    maxima = ndimage.maximum(p, raw, idx)
    rows, cols = np.indices(classes.shape)
    cr = ndimage.sum_labels(rows, raw, idx) / counts
    cc = ndimage.sum_labels(cols, raw, idx) / counts
    lookup, targets = rank_targets(counts, means, maxima, cr, cc, grid, min_cells)
    labels = lookup[raw]
    return labels, targets


def rank_targets(counts, means, maxima, cr, cc, grid, min_cells=1):
    """(lookup, [TargetArea]) from per-patch numbers (patches numbered 1..n in raster order of their first
    cell): lookup[patch] = its rank, 0 when smaller than min_cells. Shared by the whole-grid and the
    streamed map (streamed_prospectivity), which gathers the same numbers tile by tile."""
    n = counts.size
    keep = np.nonzero(counts >= min_cells)[0]
    order = keep[np.lexsort((-counts[keep], -means[keep]))]
    lookup = np.zeros(n + 1, np.int32)
    targets = []
    cell_km2 = grid.cell * grid.cell / 1e6
    for rank, i in enumerate(order, start=1):
        lookup[i + 1] = rank
        targets.append(TargetArea(
            rank=rank, name=f"Area {roman(rank)}", n_cells=int(counts[i]), area_km2=float(counts[i] * cell_km2),
            mean_probability=float(means[i]), max_probability=float(maxima[i]),
            x=float(grid.xmin + (cc[i] + 0.5) * grid.cell), y=float(grid.ymax - (cr[i] + 0.5) * grid.cell),
        ))
    return lookup, targets


def dense_head(card):
    """True when the card's shared-trunk head was trained on shared-trunk features: the dense mode is the model."""
    return (card.dense or {}).get("head_trained_on") == "dense_features"


def uses_dense(settings, card):
    """Whether a run takes the shared trunk: as the settings force it, else as the card says (dense_head)."""
    return dense_head(card) if settings.dense is None else bool(settings.dense)


def run_prospectivity(stack, model, settings=None, mask=None, deposit_cells=None, progress=None, grid=None,
                      crs_wkt=None):
    """Map prospectivity over `stack` (a path to janja:krige's GeoTIFF, or a windows.ArrayStack with `grid`).

    model: a path to an .onnx (card beside it or inside) or a model_card.LoadedModel. mask: bool (rows, cols).
    deposit_cells: (rows, cols) of known deposits for P-A thresholds (hook; see prediction_area_thresholds).
    progress(fraction) -> True cancels (windows.Cancelled), and nothing is returned.
    """
    settings = settings or ProspectivitySettings()
    t0 = time.perf_counter()
    if not isinstance(model, mc.LoadedModel):
        model = mc.load_model(model, threads=settings.threads)
    card = model.card
    dense_model = dense_head(card)
    use_dense = uses_dense(settings, card)
    with wn.checked_stack(stack, card, grid, crs_wkt) as (stack, bands, grid, crs_wkt):
        check = dist.guard(card, dist.read_columns(stack, bands, mask), settings.extrapolate)
        if use_dense:
            from . import dense

            parts = dense.load_parts(model)
            shifts = settings.dense_shifts or int((card.dense or {}).get("shifts", 1))
            probability, valid, stats = dense.predict_dense(model, parts, stack, bands, mask=mask, shifts=shifts,
                                                            progress=progress)
        else:
            probability, valid, stats, stride_sample = sc.predict_and_check(
                model, stack, bands, settings.stride, mask=mask, batch_size=settings.batch_size,
                tile_rows=settings.tile_rows, progress=progress, sample=settings.stride_sample,
                seed=settings.stride_seed)
    constant, spread = dist.constant_map(probability)
    if constant:
        moderate, high, method = settings.moderate, settings.high, "none: the map is constant"
        classes = np.zeros(probability.shape, np.uint8)
        labels, targets = np.zeros(probability.shape, np.int32), []
    else:
        if deposit_cells is not None:
            moderate, high = prediction_area_thresholds(probability, deposit_cells)
            method = "prediction-area"
        else:
            moderate, high, method = settings.moderate, settings.high, "user"
        classes = classify(probability, moderate, high)
        labels, targets = target_areas(probability, classes, grid, settings.min_target_cells)
    stride_error = sc.dense_exact(settings.stride) if use_dense and dense_model else None
    if not use_dense:
        stride_error = sc.no_check() if stride_sample is None else sc.measure(
            stride_sample, breaks=None if constant else [moderate, high], top_threshold=sc.top_threshold(probability))
    finite = probability[np.isfinite(probability)] if constant else np.zeros(0)
    notes = run_notes(check, model, settings, stats, constant, spread,
                      float(finite.min()) if finite.size else float("nan"),
                      float(finite.max()) if finite.size else float("nan"), targets, high)
    return ProspectivityResult(
        probability=probability, classes=classes, labels=labels, targets=targets,
        thresholds={"moderate": float(moderate), "high": float(high), "method": method}, grid=grid,
        crs_wkt=crs_wkt, card=card, model_path=str(model.path), stats=stats,
        stride=1 if use_dense else settings.stride,
        seconds=time.perf_counter() - t0, notes=notes, distribution=check, constant=constant, spread=spread,
        stride_error=stride_error,
    )


def run_notes(check, model, settings, stats, constant, spread, low, high_value, targets, high):
    """The run's notes for the log and the report (the whole-grid and the streamed run alike)."""
    card = model.card
    notes = list(check.notes) + list(model.notes)
    if constant:
        notes.insert(0, dist.constant_note(spread, low, high_value))
    dense_model = dense_head(card)
    use_dense = uses_dense(settings, card)
    if use_dense and dense_model:
        notes.append(
            f"Shared-trunk evaluation ({stats.mode}): the trunk ran once over the stack and each cell's features were "
            "read off its feature map; this model's head was trained on exactly these features, so every cell is "
            "the model's own output (no stride, nothing interpolated)."
            + (f" The stride {settings.stride} was not used." if settings.stride > 1 else "")
        )
        sigma = float((card.dense or {}).get("map_smoothing_cells") or 0.0)
        if sigma > 0:
            spacings = (card.dense or {}).get("map_smoothing_spacings")
            notes.append(
                f"As the model's card specifies, its map is the head's log-odds averaged by a Gaussian of sigma "
                f"{sigma:.3g} cells" + (f" ({spacings:g} sample spacings of the training survey)" if spacings else "")
                + " over the valid cells, then turned into a probability: this smoothing is part of the model, the "
                "way it was trained and validated held out."
            )
    elif use_dense:
        notes.append(
            f"Shared-trunk evaluation ({stats.mode}): the trunk ran once over the stack and each cell's features were "
            "read off its feature map, which approximates the window-by-window result (see the README)."
            + (f" The stride {settings.stride} was not used: this mode predicts every cell." if settings.stride > 1
               else "")
        )
        if not dense_model:
            notes.append(
                "This model's shared-trunk head is its per-window head, which was trained on features of windows "
                "classified alone; the shared-trunk features differ from those (most at small inputs such as "
                "75 px), so this map can differ much from the window-by-window one. Prefer a model exported with a "
                "head fit on shared-trunk features (card field dense.head_trained_on = dense_features)."
            )
    elif dense_model:
        notes.append(
            "This model's head was trained on shared-trunk features, but the shared trunk was turned off: window by "
            "window its head reads features of windows classified alone, which differ from those it was trained on, "
            "so this map is not the model's. Leave the shared-trunk option on (its default for this model)."
            + (" Its card's map smoothing (part of the model) was not applied either."
               if (card.dense or {}).get("map_smoothing_cells") else "")
        )
    if stats.n_windows_filled:
        notes.append(
            f"{stats.n_windows_filled:,} of {stats.n_windows:,} windows reached cells without a value; those values "
            "were filled with the element's training mean."
        )
    if not targets and not constant:
        notes.append(f"No cell reached the high class (probability >= {high:g}): there are no target areas.")
    return notes


def write_rasters(result, probability_path=None, classes_path=None, labels_path=None):
    """Write the probability, class and label rasters (float32 GeoTIFFs, nodata -9999; 0 classes/labels -> nodata)."""
    written = {}
    pairs = (
        (probability_path, result.probability, "probability"),
        (classes_path, np.where(result.classes > 0, result.classes, np.nan), "class"),
        (labels_path, np.where(result.labels > 0, result.labels, np.nan), "target_rank"),
    )
    for path, data, name in pairs:
        if path:
            written[name] = write_stack(path, [data], [name], result.grid, result.crs_wkt, tags=result.tags())
    return written


# Said wherever a learned map loses to the kriged target: the label-free map to read beside the recommended one.
# The numbers are the README's detection-benchmark table (make detect-bench, held-out spatial blocks, sample
# protocol AUC): janja:spatial_anomaly's row against the kriged target's, on WA sed1 and South Tianshan.
LABEL_FREE_ALTERNATIVE = (
    "The label-free multi-element map to set beside the kriged target is janja:spatial_anomaly (no deposits, no "
    "training; held out it scored 0.880 on WA sed1 against kriged Au's 0.922, and 0.736 on South Tianshan against "
    "Au's 0.654)."
)


def held_out_verdict(card, label_free_alternative=True):
    """(rows, sentence): the card's held-out learned score beside its kriged-target baseline, and which wins.

    When the learned map loses, the sentence names the kriged target's classes as the recommended map and, unless
    label_free_alternative is False (janja:anomaly_score's report says it first already), janja:spatial_anomaly as
    the label-free map to read beside them."""
    summary = held_out_summary(card)
    rows = []
    learned = summary.get("learned")
    if learned:
        sd = f" ± {learned[1]:.3f}" if learned[1] is not None else ""
        how = summary.get("how", "held-out spatial blocks, sample protocol")
        rows.append([f"Learned map '{card.name}' ({how})", f"{learned[0]:.3f}{sd}"])
    baselines = summary.get("baselines", {})
    for name, value in baselines.items():
        rows.append([f"Baseline: {name.replace('_', ' ')} (same protocol)", f"{float(value):.3f}"])
    if not learned:
        return rows, ("The card records no held-out (spatial-block) score: nothing shows this model beats the kriged "
                      "target element. Treat the map as unvalidated.")
    if not baselines:
        return rows, ("The card records no kriged-target baseline, so it is unknown whether the learned map beats "
                      "the plain kriged target element.")
    best_name, best = max(baselines.items(), key=lambda kv: float(kv[1]))
    if float(learned[0]) > float(best):
        return rows, (f"On held-out deposits the learned map ({learned[0]:.3f}) beats the best baseline "
                      f"({best_name.replace('_', ' ')}, {float(best):.3f}).")
    return rows, (f"The learned map does NOT beat the kriged target on held-out deposits ({learned[0]:.3f} against "
                  f"{float(best):.3f}, {best_name.replace('_', ' ')}). The recommended map is the kriged target "
                  "element with its classes (janja:fractal or janja:thresholds on its band; janja:workflow writes "
                  "them as fractal:ca_classes and thresholds:mad_classes); use this map only beside it."
                  + (" " + LABEL_FREE_ALTERNATIVE if label_free_alternative else ""))


def benchmark_rows(card):
    """(title, rows) of the card's detection-benchmark table (every contender held out alike), or None."""
    bench = ((card.validation or {}).get("metrics") or {}).get("detection_benchmark")
    if not bench or not bench.get("rows"):
        return None
    rows = [[r["map"], f"{r['protocol_auc']:.3f} ± {r.get('protocol_draw_sd', float('nan')):.3f}",
             f"{r['cell_auc']:.3f}" if "cell_auc" in r else "-"] for r in bench["rows"]]
    return f"Detection benchmark on {bench.get('survey', 'the training survey')}: {bench.get('source', '')}", rows


def report_section(report, result):
    """Add the prospectivity section to an HtmlReport: warnings first, held-out verdict, card, classes, targets."""
    card = result.card
    dist.report_heading(report, "Prospectivity", result)
    stride_report_line(report, result.stride_error)
    rows, verdict = held_out_verdict(card)
    report.paragraph(verdict, css_class="warning" if "NOT" in verdict or "no " in verdict[:40] else "note")
    if rows:
        report.table(["Held-out validation from the model card", "AUC"], rows)
    bench = benchmark_rows(card)
    if bench:
        report.paragraph(bench[0], css_class="note")
        report.table(["Map (held out by spatial blocks)", "Sample-protocol AUC", "Cell ROC AUC"], bench[1])
    dist.report_table(report, result.distribution)
    report.paragraph(card.describe() + f" Probability of '{card.prospective_class}'.")
    metrics = card.validation.get("metrics", {})
    report.table(
        ["Card field", "Value"],
        [["Training", card.training.get("summary", "")],
         ["Validation", f"{card.validation.get('method', '').replace('_', ' ')}: "
                        + (card.validation.get("description") or "")
                        + ("" if metrics else " (the card records no metrics)")],
         ["Pretrained weights", card.pretrained.get("source", "")],
         ["Libraries", ", ".join(f"{k} {v}" for k, v in card.libraries.items())],
         ["Model file", result.model_path]],
    )
    s = result.stats
    counts, n_finite, hist = result.map_summary()
    report.paragraph(
        f"{s.n_valid_cells:,} cells with values, {s.n_windows:,} "
        + ("windows classified" if s.mode == "window by window" else f"cells predicted ({s.mode})")
        + (f" (stride {result.stride}: {s.n_interpolated:,} cells interpolated)" if result.stride > 1 else "")
        + (f" on {result.computed_on}" if result.computed_on else "")
        + f" in {result.seconds:.1f} s ({s.windows_per_second:.0f} "
        + ("windows" if s.mode == "window by window" else "cells") + "/s)."
    )
    t = result.thresholds
    cell_km2 = result.grid.cell ** 2 / 1e6
    report.table(
        ["Class", "Probability (0–1)", "Cells", "Area", "Share"],
        [["high", f"≥ {t['high']:.2f}", counts[0], units.area_km2(counts[0] * cell_km2), _share(counts[0], n_finite)],
         ["moderate", f"{t['moderate']:.2f} – {t['high']:.2f}", counts[1], units.area_km2(counts[1] * cell_km2),
          _share(counts[1], n_finite)],
         ["low", f"< {t['moderate']:.2f}", counts[2], units.area_km2(counts[2] * cell_km2),
          _share(counts[2], n_finite)]],
    )
    report.paragraph(f"Thresholds set by: {t['method']}. Cells are {units.distance(result.grid.cell)} square.",
                     css_class="note")
    if result.targets:
        report.table(
            ["Target", "Cells", "Area", "Mean probability", "Max probability",
             f"Centre (easting / northing, m, {crs_name(result.crs_wkt)})"],
            [[a.name, a.n_cells, units.area_km2(a.area_km2), f"{a.mean_probability:.2f}",
              f"{a.max_probability:.2f}", units.coordinate(a.x, a.y)] for a in result.targets],
        )
    for note in result.notes:
        if not dist.is_warning(note):
            report.paragraph(note, css_class="note")
    if n_finite:
        edges = np.histogram_bin_edges([], bins=20, range=(0.0, 1.0))
        x = np.repeat(edges, 2)[1:-1]
        y = np.repeat(hist, 2)
        report.charts([chart([{"x": x, "y": y, "style": "line", "label": "cells"}],
                             title="Probability histogram", xlabel="probability", ylabel="cells")])


def stride_report_line(report, stride_error):
    """The stride's measured error, near the top of the report (a warning when it is too large)."""
    if stride_error is None:
        return
    warning = stride_error.warning()
    report.paragraph(stride_error.sentence() + (" " + warning if warning else ""),
                     css_class="warning" if warning else "note")


def _share(n, total):
    return f"{100 * n / total:.1f} %" if total else "-"
