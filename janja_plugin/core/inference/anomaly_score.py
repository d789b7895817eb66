"""The anomaly-score job: element stack + unsupervised anomaly model -> score raster, percentile classes,
and the score at each sample.

Pure compute (no QGIS). The same window engine as prospectivity (core.inference.windows.predict: tiles,
reflection at the edges, the card's transform, resize, batching, stride, cancel); only the model
kind and what is made of its output differ. The model's output is a score in 0..1 (output_kind
"score"); for the bundled f-AnoGAN model it reads "higher than this share of the training area's
windows" (janja_plugin/training/anomaly.py).

This is the whole-grid run (the score and classes in memory: the reference, and the training tests' engine);
janja:anomaly_score itself runs streamed_anomaly.run_anomaly_score_to_files, which writes the same files tile
by tile and shares this module's classes, notes and report.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import JanjaInputError
from ..raster_grid import write_stack
from ..reporting.svgplot import chart
from . import distribution as dist
from . import model_card as mc
from . import stride_check as sc
from . import windows as wn

DEFAULT_PERCENTILES = (75.0, 90.0, 95.0, 98.0)
COMPUTED_LOCALLY = "this computer's threads"  # where the windows ran without a Dask scheduler
# Stated first in every report (issue 16): held out against known deposits the GAN loses to simpler label-free maps.
GAN_BENCHMARK_WARNING = (
    "Not the recommended label-free map: held out against the 32 Au sites of the Western Australia survey (sed1, "
    "make detect-bench, sample protocol AUC), the bundled f-AnoGAN anomaly model scored 0.637, against 0.880 for "
    "janja:spatial_anomaly (robust distance of multi-scale survey ranks, no training, no deposits needed) and 0.927 "
    "for the kriged Au smoothed at 4 sample spacings. Use janja:spatial_anomaly for a label-free map, beside the "
    "kriged target element; read this score as 'unusual', not as prospectivity."
)


@dataclass
class AnomalySettings:
    stride: int = 1
    threads: int | None = None
    batch_size: int = wn.DEFAULT_BATCH
    percentiles: tuple = DEFAULT_PERCENTILES  # class breaks, as percentiles of the map's scores
    tile_rows: int | None = None
    extrapolate: bool = False  # run on a stack outside the training distribution, marking every output
    stride_sample: int | None = None  # interpolated cells checked exactly at stride > 1; None = stride_check's size
    stride_seed: int = sc.DEFAULT_SEED


@dataclass
class AnomalyResult:
    score: np.ndarray  # float32 (rows, cols), 0..1, NaN = no data
    classes: np.ndarray  # uint8: 0 no data, 1 below the first percentile, ..., len(percentiles) + 1 top class
    breaks: list  # score values at the percentiles
    percentiles: tuple
    grid: object
    crs_wkt: str | None
    card: mc.ModelCard
    model_path: str
    stats: wn.EngineStats
    stride: int
    seconds: float
    sample_scores: np.ndarray | None = None  # score of the cell under each sample (NaN outside / nodata)
    notes: list = field(default_factory=list)
    distribution: dist.DistributionCheck | None = None
    constant: bool = False
    spread: float = float("nan")
    stride_error: sc.StrideError | None = None  # measured interpolation error of the score map
    summary: dict | None = None  # a streamed run's report numbers (its grids are on disk, not here)
    paths: dict | None = None  # a streamed run's rasters: {"score": path, "classes": path or None}
    computed_on: str = COMPUTED_LOCALLY  # where the windows ran: here, or a Dask cluster (distributed_inference.where)

    def map_summary(self):
        """(cells in each class 1..k+1, cells with a class, cells with a score, 40-bin histogram of the score)."""
        if self.summary is not None:
            return (self.summary["class_counts"], self.summary["n_classed"], self.summary["n_finite"],
                    self.summary["histogram"])
        p = self.score[np.isfinite(self.score)]
        counts = [int((self.classes == k).sum()) for k in range(1, len(self.percentiles) + 2)]
        return counts, int((self.classes > 0).sum()), p.size, np.histogram(p, bins=40, range=(0.0, 1.0))[0]

    def sample_classes(self):
        """The class of the cell under each sample (0 = no data, outside, or a constant map); None without samples."""
        if self.sample_scores is None:
            return None
        return classes_of(self.sample_scores, self.breaks, self.constant)

    @property
    def class_labels(self):
        return class_labels(self.percentiles)

    @property
    def extrapolated(self):
        return self.distribution is not None and self.distribution.out_of_distribution

    def tags(self):
        tags = {"model": self.card.name, "janja_model": self.card.name, "janja_model_kind": self.card.model_kind,
                "janja_extrapolation": "yes" if self.extrapolated else "no",
                "janja_constant": "yes" if self.constant else "no"}
        if self.stride_error is not None:
            tags.update(self.stride_error.tags())
        return tags


def check_percentiles(percentiles):
    p = [float(v) for v in percentiles]
    if not p or any(not (0 < v < 100) for v in p) or any(b <= a for a, b in zip(p, p[1:])):
        raise JanjaInputError(
            f"The class percentiles must be increasing numbers strictly between 0 and 100, e.g. 75,90,95,98 "
            f"(got {', '.join(f'{v:g}' for v in p) or 'none'})."
        )
    return tuple(p)


def class_labels(percentiles):
    p = [f"P{v:g}" for v in percentiles]
    return [f"< {p[0]}"] + [f"{a}–{b}" for a, b in zip(p, p[1:])] + [f"≥ {p[-1]}"]


def percentile_classes(score, percentiles):
    """uint8 classes by the map's own percentiles (1 = below the first, k + 1 = at or above the last), 0 = NaN."""
    percentiles = check_percentiles(percentiles)
    s = np.asarray(score)
    ok = np.isfinite(s)
    breaks = [float(b) for b in np.percentile(s[ok], percentiles)] if ok.any() else [np.nan] * len(percentiles)
    out = np.zeros(s.shape, np.uint8)
    out[ok] = 1 + np.searchsorted(np.asarray(breaks), s[ok], side="right")
    return out, breaks


def classes_of(values, breaks, constant=False):
    """percentile_classes' class of each value for the given breaks (0 = NaN, or every cell of a constant map)."""
    v = np.asarray(values)
    ok = np.isfinite(v) & (not constant)
    out = np.zeros(v.shape, np.uint8)
    out[ok] = 1 + np.searchsorted(np.asarray(breaks), v[ok], side="right")
    return out


def point_cells(grid, x, y):
    """(inside, rows, cols) of the cell under each point (map units of the grid); rows/cols valid where inside."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    with np.errstate(invalid="ignore"):
        cols = np.floor((x - grid.xmin) / grid.cell)
        rows = np.floor((grid.ymax - y) / grid.cell)
    inside = np.isfinite(rows) & np.isfinite(cols) & (rows >= 0) & (rows < grid.nrows) & (cols >= 0) & \
        (cols < grid.ncols)
    return inside, np.where(inside, rows, 0).astype(np.int64), np.where(inside, cols, 0).astype(np.int64)


def values_at(raster, grid, x, y):
    """Value of the cell under each point (map units of the grid); NaN outside the grid or on nodata."""
    inside, rows, cols = point_cells(grid, x, y)
    out = np.full(inside.shape, np.nan)
    out[inside] = raster[rows[inside], cols[inside]]
    return out


def check_model(model):
    """Refuse a model that is not an unsupervised anomaly model with a 0..1 score."""
    card = model.card
    if card.model_kind != "unsupervised_anomaly" or card.output_kind != "score":
        raise JanjaInputError(
            f"The model '{card.name}' ({model.path.name}) is a {card.model_kind.replace('_', ' ')} with output "
            f"'{card.output_kind}', not an unsupervised anomaly model with a 0..1 score. Use it with "
            "janja:prospectivity, or choose an anomaly model (e.g. models/wa_anomaly/wa_anomaly_fanogan.onnx)."
        )


def run_notes(check, model, stats, constant, spread, low, high):
    """The run's notes for the log and the report (the whole-grid and the streamed run alike)."""
    notes = list(check.notes) + list(model.notes)
    if constant:
        notes.insert(0, dist.constant_note(spread, low, high))
    if stats.n_windows_filled:
        notes.append(
            f"{stats.n_windows_filled:,} of {stats.n_windows:,} windows reached cells without a value; those values "
            "were filled with the element's training mean, which itself can look anomalous near gaps and edges."
        )
    return notes


def sample_notes(sample_scores, notes):
    """Refuse samples that all miss the scored cells; note how many do."""
    n_out = int(np.count_nonzero(~np.isfinite(sample_scores)))
    if n_out == len(sample_scores):
        raise JanjaInputError(
            "No sample lies on a scored cell of the stack (all outside it or on nodata). Check that the sample "
            "layer covers the stack's area and has the right CRS."
        )
    if n_out:
        notes.append(f"{n_out} of {len(sample_scores)} samples lie outside the stack or on nodata: no score.")


def open_and_predict(stack, model, settings, mask=None, progress=None, grid=None, crs_wkt=None):
    """The shared front of a window job: open the stack, check it against the card (elements, grid, and the
    training distribution), run the engine.

    Returns (score, valid, stats, grid, crs_wkt, distribution check, StrideSample or None: the exact check of
    a sample of the interpolated cells at stride > 1). stack: a GeoTIFF path or a windows.ArrayStack with `grid`.
    """
    with wn.checked_stack(stack, model.card, grid, crs_wkt) as (stack, bands, grid, crs_wkt):
        check = dist.guard(model.card, dist.read_columns(stack, bands, mask), settings.extrapolate)
        score, valid, stats, sample = sc.predict_and_check(
            model, stack, bands, settings.stride, mask=mask, batch_size=settings.batch_size,
            tile_rows=settings.tile_rows, progress=progress, sample=getattr(settings, "stride_sample", None),
            seed=getattr(settings, "stride_seed", sc.DEFAULT_SEED))
    return score, valid, stats, grid, crs_wkt, check, sample


def run_anomaly_score(stack, model, settings=None, mask=None, sample_xy=None, progress=None, grid=None,
                      crs_wkt=None):
    """Anomaly score of every cell of `stack` with an unsupervised anomaly model (path or LoadedModel).

    sample_xy: optional (x, y) in the stack's CRS; their scores come back in result.sample_scores.
    progress(fraction) -> True cancels (windows.Cancelled).
    """
    settings = settings or AnomalySettings()
    percentiles = check_percentiles(settings.percentiles)
    t0 = time.perf_counter()
    if not isinstance(model, mc.LoadedModel):
        model = mc.load_model(model, threads=settings.threads)
    card = model.card
    check_model(model)
    score, valid, stats, grid, crs_wkt, check, stride_sample = open_and_predict(stack, model, settings, mask,
                                                                                 progress, grid, crs_wkt)
    constant, spread = dist.constant_map(score)
    finite = score[np.isfinite(score)]
    notes = run_notes(check, model, stats, constant, spread, float(finite.min()) if finite.size else float("nan"),
                      float(finite.max()) if finite.size else float("nan"))
    if constant:
        classes, breaks = np.zeros(score.shape, np.uint8), [float("nan")] * len(percentiles)
    else:
        classes, breaks = percentile_classes(score, percentiles)
    stride_error = sc.no_check() if stride_sample is None else sc.measure(
        stride_sample, breaks=None if constant else breaks, top_threshold=sc.top_threshold(score))
    sample_scores = None
    if sample_xy is not None:
        sample_scores = values_at(score, grid, *sample_xy)
        sample_notes(sample_scores, notes)
    return AnomalyResult(score=score, classes=classes, breaks=breaks, percentiles=percentiles, grid=grid,
                         crs_wkt=crs_wkt, card=card, model_path=str(model.path), stats=stats,
                         stride=settings.stride, seconds=time.perf_counter() - t0, sample_scores=sample_scores,
                         notes=notes, distribution=check, constant=constant, spread=spread,
                         stride_error=stride_error)


def write_rasters(result, score_path=None, classes_path=None):
    written = {}
    if score_path:
        written["score"] = write_stack(score_path, [result.score], ["anomaly_score"], result.grid, result.crs_wkt,
                                       tags=result.tags())
    if classes_path:
        written["classes"] = write_stack(classes_path, [np.where(result.classes > 0, result.classes, np.nan)],
                                         ["anomaly_class"], result.grid, result.crs_wkt, tags=result.tags())
    return written


def report_section(report, result):
    """The anomaly section of an HtmlReport: model card, percentile classes, histogram."""
    card = result.card
    report.paragraph(GAN_BENCHMARK_WARNING, css_class="warning")
    dist.report_heading(report, "Unsupervised anomaly score", result)
    from .prospectivity import held_out_verdict, stride_report_line

    stride_report_line(report, result.stride_error)
    rows, verdict = held_out_verdict(card, label_free_alternative=False)  # GAN_BENCHMARK_WARNING says it
    report.paragraph(verdict, css_class="warning" if "NOT" in verdict or "no " in verdict[:40] else "note")
    if rows:
        report.table(["Validation from the model card", "AUC"], rows)
    dist.report_table(report, result.distribution)
    report.paragraph(
        card.describe() + " High = the window's multivariate pattern is unlike the bulk of the area the model was "
        "trained on; it is not a probability of a deposit."
    )
    if card.raw.get("description"):
        report.paragraph(card.raw["description"], css_class="note")
    report.table(["Card field", "Value"],
                 [["Training", card.training.get("summary", "")],
                  ["Score map", card.training.get("score_map", "")],
                  ["Validation", card.validation.get("description", card.validation.get("method", ""))],
                  ["Libraries", ", ".join(f"{k} {v}" for k, v in card.libraries.items())],
                  ["Model file", result.model_path]])
    s = result.stats
    report.paragraph(
        f"{s.n_valid_cells:,} cells with values, {s.n_windows:,} windows scored"
        + (f" (stride {result.stride}: {s.n_interpolated:,} cells interpolated)" if result.stride > 1 else "")
        + f" on {result.computed_on} in {result.seconds:.1f} s ({s.windows_per_second:.0f} windows/s)."
    )
    labels = result.class_labels
    counts, total, n_finite, hist = result.map_summary()
    lows = [0.0] + list(result.breaks)
    highs = list(result.breaks) + [1.0]
    rows = []
    for k, label in enumerate(labels, start=1):
        n = counts[k - 1]
        rows.append([label, f"{lows[k - 1]:.4f} – {highs[k - 1]:.4f}", n, f"{100 * n / total:.1f} %" if total else "-"])
    report.table(["Class (percentiles of this map)", "Score", "Cells", "Share"], rows)
    if result.sample_scores is not None:
        v = result.sample_scores[np.isfinite(result.sample_scores)]
        report.paragraph(f"{v.size} samples scored (median {np.median(v):.3f}, 90th percentile "
                         f"{np.percentile(v, 90):.3f}).")
    for note in result.notes:
        if not dist.is_warning(note):
            report.paragraph(note, css_class="note")
    if n_finite:
        edges = np.histogram_bin_edges(np.zeros(0, np.float32), bins=40, range=(0.0, 1.0))  # the score's dtype
        report.charts([chart([{"x": np.repeat(edges, 2)[1:-1], "y": np.repeat(hist, 2), "style": "line",
                               "label": "cells"}], title="Anomaly score histogram", xlabel="score",
                             ylabel="cells")])
