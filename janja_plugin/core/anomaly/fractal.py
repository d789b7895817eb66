"""Fractal thresholds: concentration–area (C–A) on a raster, concentration–number (C–N) on samples.

Cheng et al. (1994) model each geochemical population as a power law, A(>= c) ∝ c^-a, so the
log–log curve of area (or number of samples, Hassanpour & Afzal 2013) above a concentration is a
chain of straight segments and the thresholds are where the slope changes. We fit that chain by
least squares: for every number of segments the best breakpoints are found exactly by dynamic
programming over the curve's points, and the number of segments is chosen by BIC (or given by the
user), so the thresholds do not depend on where someone drew lines by eye.

Two choices make BIC behave on real curves: points are weighted by their count (log N of a small
count is noisy, so the sparse top of the curve cannot buy extra segments), and BIC is computed
from the counts between levels, which are independent, not from the cumulative points, which are
not. Caveats: a lognormal population is not a power law; its C–A curve bends everywhere and BIC
will split it into several segments, so read thresholds on such data as breaks, not populations.
On a kriged raster the cells are not independent either; fix the number of segments there.

Censored samples (C–N with `censored`, the rows whose value substitutes 'below detection') are not
points of the curve: N(>= c) counts measured samples, which is exact at every level above the
detection limit, and the curve starts at the smallest measured value. They are background (class 0)
whatever their substitute, so a threshold at the detection limit never calls them anomalous.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import JanjaInputError
from .thresholds import MIN_MEASURED, class_names, classify_by_thresholds, measured_mask

DEFAULT_LEVELS = 100
MAX_SEGMENTS = 5
MIN_POINTS_PER_SEGMENT = 5
MIN_COUNT = 3  # levels with fewer cells/samples above them are too noisy to fit (log of 1, 2)


@dataclass
class Segment:
    slope: float  # d log10(A) / d log10(c): minus the fractal dimension
    intercept: float  # log10(A) at log10(c) = 0
    c_from: float  # data units, first level in the segment
    c_to: float  # data units, last level in the segment
    n_points: int


@dataclass
class FractalResult:
    """The log–log curve, the fitted segments and the thresholds between them (data units)."""

    kind: str  # 'C-A' or 'C-N'
    levels: np.ndarray  # concentration levels c (data units)
    sizes: np.ndarray  # A(>= c) in area units (C-A) or N(>= c) in samples (C-N)
    fitted: np.ndarray  # boolean mask of the levels used in the fit
    segments: list
    thresholds: np.ndarray  # ascending, data units; len(segments) - 1
    labels: list  # class names, len(thresholds) + 1
    bic: dict  # number of segments -> BIC
    n_segments: int
    chosen_by: str  # 'BIC' or 'user'
    n_values: int
    notes: list = field(default_factory=list)
    n_censored: int = 0  # below-detection samples left out of the curve (background)

    def classify(self, values, censored=None):
        """Integer class per value (0 = background, i = at or above the i-th threshold, -1 = NaN,
        censored rows 0)."""
        return classify_by_thresholds(values, self.thresholds, censored)


def _line_cost_table(x, y, w=None):
    """Weighted SSE and (slope, intercept) of the least-squares line through points i..j, all i <= j."""
    n = x.size
    w = np.ones(n) if w is None else np.asarray(w, float)

    def csum(a):
        return np.concatenate([[0.0], np.cumsum(a)])

    sw, sx, sy, sxx, sxy, syy = (csum(a) for a in (w, w * x, w * y, w * x * x, w * x * y, w * y * y))
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    with np.errstate(invalid="ignore", divide="ignore"):
        m = sw[j + 1] - sw[i]
        cx = sx[j + 1] - sx[i]
        cy = sy[j + 1] - sy[i]
        cxx = sxx[j + 1] - sxx[i] - cx * cx / m
        cxy = sxy[j + 1] - sxy[i] - cx * cy / m
        cyy = syy[j + 1] - syy[i] - cy * cy / m
        slope = np.where(cxx > 0, cxy / cxx, 0.0)
        sse = np.maximum(cyy - slope * cxy, 0.0)
        intercept = (cy - slope * cx) / m
    return sse, slope, intercept


def segmented_fit(x, y, n_segments, min_points=MIN_POINTS_PER_SEGMENT, w=None):
    """Exact least-squares fit of `n_segments` separate lines to consecutive runs of points.

    Dynamic programming over the break positions: best[s][j] is the smallest total SSE of s lines
    covering points 0..j. Returns (total SSE, list of (start, end) index pairs, inclusive).
    """
    n = x.size
    if n_segments * min_points > n:
        return math.inf, []
    sse, _, _ = _line_cost_table(x, y, w)
    best = np.full((n_segments + 1, n), np.inf)
    back = np.zeros((n_segments + 1, n), dtype=int)
    best[1, min_points - 1:] = sse[0, min_points - 1:]
    for s in range(2, n_segments + 1):
        for j in range(s * min_points - 1, n):
            starts = np.arange((s - 1) * min_points, j - min_points + 2)  # first point of the last segment
            cand = best[s - 1, starts - 1] + sse[starts, j]
            k = int(np.argmin(cand))
            best[s, j], back[s, j] = cand[k], starts[k]
    runs, j = [], n - 1
    for s in range(n_segments, 0, -1):
        start = back[s, j] if s > 1 else 0
        runs.append((int(start), int(j)))
        j = start - 1
    return float(best[n_segments, n - 1]), runs[::-1]


def poisson_bic(x, counts, runs, slope, intercept, n_values):
    """BIC of a segment chain from the counts between successive levels (independent, Poisson).

    The cumulative curve's points are not independent (each count contains the next), so a
    Gaussian BIC on them keeps adding segments to fit sampling wiggles. The counts *between*
    levels are independent; their expected values follow from the fitted lines. Parameters: a
    slope and an intercept per segment and one position per break; n = number of values.
    """
    seg_of = np.empty(x.size, dtype=int)
    for s, (a, b) in enumerate(runs):
        seg_of[a:b + 1] = s
    lines = [(slope[a, b], intercept[a, b]) for a, b in runs]
    expected_cum = np.array([10.0 ** (lines[s][1] + lines[s][0] * xi) for xi, s in zip(x, seg_of)])
    observed = np.append(counts[:-1] - counts[1:], counts[-1]).astype(float)
    expected = np.maximum(np.append(expected_cum[:-1] - expected_cum[1:], expected_cum[-1]), 1e-9)
    loglik = float(np.sum(observed * np.log(expected) - expected))
    return -2.0 * loglik + (3 * len(runs) - 1) * math.log(n_values)


def _levels(v, n_levels):
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        raise JanjaInputError(
            f"All {v.size} values are equal ({lo:g}); a concentration–area/number curve needs a range of values."
        )
    return np.logspace(math.log10(lo), math.log10(hi), n_levels)


def fractal_curve(values, kind, cell_area=1.0, n_levels=DEFAULT_LEVELS, n_segments=None,
                  max_segments=MAX_SEGMENTS, min_points=MIN_POINTS_PER_SEGMENT, min_count=MIN_COUNT,
                  weighted=True, censored=None):
    """C–A (kind='C-A', values = raster cells, sizes in area units) or C–N (kind='C-N', samples).

    Levels are log-spaced from the smallest to the largest value; levels with fewer than
    `min_count` values above them are drawn but not fitted. Thresholds are where adjacent fitted
    lines meet, kept between the last level of one segment and the first of the next.
    `censored` marks below-detection rows: left out of the curve (see the module note).
    """
    v = np.asarray(values, dtype=float).ravel()
    ok = measured_mask(values, censored)
    n_censored = int(np.sum(np.isfinite(v) & ~ok))
    v = v[ok]
    if n_censored and v.size < MIN_MEASURED:
        raise JanjaInputError(
            f"The {kind} curve uses measured values only, but only {v.size} sample(s) are measured and "
            f"{n_censored} are below detection; it needs at least {MIN_MEASURED}. Below-detection samples "
            "are background by construction, and too few are measured to set a threshold: choose an element "
            "with more detections, or a laboratory method with a lower detection limit."
        )
    if v.size == 0:
        raise JanjaInputError(f"The {kind} curve got no valid values (all nodata/NaN). Check the band or field.")
    bad = int(np.sum(v <= 0))
    if bad:
        raise JanjaInputError(
            f"The {kind} curve is drawn on log scales, but {bad} of the {v.size} values are zero or negative. "
            "Substitute censored values first (e.g. half the detection limit)."
        )
    levels = _levels(v, n_levels)
    sv = np.sort(v)
    counts = sv.size - np.searchsorted(sv, levels, side="left")  # number of values >= c
    sizes = counts * (float(cell_area) if kind == "C-A" else 1.0)
    fitted = counts >= min_count
    x, y = np.log10(levels[fitted]), np.log10(sizes[fitted])
    w = counts[fitted].astype(float) if weighted else None
    notes = []
    if n_censored:
        notes.append(f"{n_censored} below-detection sample(s) are left out of the curve and classed as "
                     "background.")
    if x.size < 2 * min_points:
        notes.append(f"Only {x.size} usable levels: a single line was fitted.")
    bics, fits = {}, {}
    _, slope, intercept = _line_cost_table(x, y, w)
    top = max(1, min(max_segments, x.size // min_points))
    for m in range(1, top + 1):
        _, runs = segmented_fit(x, y, m, min_points, w)
        if runs:
            fits[m] = runs
            bics[m] = poisson_bic(x, counts[fitted], runs, slope, intercept, v.size)
    if n_segments is None:
        chosen = min(bics, key=bics.get)
        chosen_by = "BIC"
    else:
        if int(n_segments) not in fits:
            raise JanjaInputError(
                f"{n_segments} segments cannot be fitted to {x.size} curve points with at least {min_points} "
                f"points each; ask for at most {max(fits)} segments, or use more levels."
            )
        chosen, chosen_by = int(n_segments), "user"
    runs = fits[chosen]
    fitted_levels = levels[fitted]
    segments = [Segment(float(slope[a, b]), float(intercept[a, b]), float(fitted_levels[a]),
                        float(fitted_levels[b]), b - a + 1) for a, b in runs]
    thresholds = []
    for (_, b0), (a1, _), s0, s1 in zip(runs[:-1], runs[1:], segments[:-1], segments[1:]):
        lo, hi = x[b0], x[a1]
        # the threshold is where the two lines meet; kept between the two points either side of the break
        cross = (s1.intercept - s0.intercept) / (s0.slope - s1.slope) if s0.slope != s1.slope else (lo + hi) / 2
        thresholds.append(10.0 ** min(max(cross, lo), hi))
    return FractalResult(kind, levels, sizes, fitted, segments, np.asarray(thresholds), class_names(len(thresholds)),
                         bics, chosen, chosen_by, int(v.size), notes, n_censored)


def concentration_area(band, cell_area, n_levels=DEFAULT_LEVELS, n_segments=None, nodata=None, **kwargs):
    """C–A on a raster band (2-D array; NaN or `nodata` cells are left out); A in the units of cell_area."""
    a = np.asarray(band, dtype=float)
    if nodata is not None:
        a = np.where(a == nodata, np.nan, a)
    if not (cell_area > 0):
        raise JanjaInputError(f"The cell area must be positive, not {cell_area}.")
    return fractal_curve(a, "C-A", cell_area, n_levels, n_segments, **kwargs)


def concentration_number(values, n_levels=DEFAULT_LEVELS, n_segments=None, **kwargs):
    """C–N on sample values (NaN left out): N(>= c) samples; pass `censored=` for non-detects."""
    return fractal_curve(values, "C-N", 1.0, n_levels, n_segments, **kwargs)


def report_title(result, element=""):
    """'Fractal thresholds, concentration–area (C-A) — Cu (ppm)': the report's title, the one place that names it."""
    from ..reporting.units import element_label

    name = "concentration–area" if result.kind == "C-A" else "concentration–number"
    return f"Fractal thresholds, {name} ({result.kind}){f' — {element_label(element)}' if element else ''}"


def report_section(report, result, element=""):
    """Log–log curve with the fitted segments, the segments table and the BIC per segment count.
    No heading of its own: the report's title (report_title) names it once."""
    from ..reporting.svgplot import chart
    from ..reporting.units import element_and_unit, element_label, number

    unit = element_and_unit(element)[1] if element else None
    element = element_label(element) if element else element
    report.paragraph(
        f"{result.n_segments} segment(s) chosen by {result.chosen_by}; thresholds: "
        + (", ".join(number(t, 4) + (f" {unit}" if unit else "") for t in result.thresholds)
           or "none (a single population)") + ". "
        + " ".join(result.notes)
    )
    series = [{"x": result.levels, "y": result.sizes, "label": "curve", "style": "points", "colour": "#555555"}]
    for i, s in enumerate(result.segments):
        xs = np.array([s.c_from, s.c_to])
        series.append({"x": xs, "y": 10.0 ** (s.intercept + s.slope * np.log10(xs)), "style": "line",
                       "label": f"segment {i + 1}: slope {s.slope:.2f}"})
    ylabel = "area >= c" if result.kind == "C-A" else "samples >= c"
    report.charts([chart(series, title=f"{result.kind} log–log plot", xlabel=element or "concentration",
                         ylabel=ylabel, logx=True, logy=True)])
    report.table(["segment", "from", "to", "slope", "intercept (log10)", "points"],
                 [(i + 1, s.c_from, s.c_to, s.slope, s.intercept, s.n_points) for i, s in enumerate(result.segments)])
    report.table(["segments", "BIC"], [(m, float(b)) for m, b in sorted(result.bic.items())])
