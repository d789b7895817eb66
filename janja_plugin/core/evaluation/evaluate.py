"""Scoring a prospectivity or anomaly layer against known deposits.

Four views, each answering a question a geologist asks of a map:
- ROC / AUC: do deposit locations score higher than the rest? (AUC = Mann–Whitney U / n_pos n_neg,
  ties counted one half, identical to sklearn's roc_auc_score.)
- The OpenGADBench sample protocol (`sample_protocol_auc`): the published yardstick for sample
  scores, reproduced from the benchmark's own code so our numbers can sit beside theirs.
- Success-rate curve: what share of the deposits lies in the top x % of the area?
- Prediction–area (P–A) plot (Yousefi & Carranza 2015): at which score do 'deposits predicted'
  and 'area left unexplored' balance, and how much better than chance is that zone (Nd, We)?
"""

import math
from dataclasses import dataclass

import numpy as np

from ..errors import JanjaInputError

EARTH_RADIUS_KM = 6371.0  # the benchmark's value
IN_SAMPLE_LABEL = "in-sample (training labels): not a validation"


# ---------------------------------------------------------------- ROC / AUC

def auc_mann_whitney(positive_scores, negative_scores):
    """P(score of a positive > score of a negative), ties counting one half."""
    p = np.asarray(positive_scores, float)
    n = np.asarray(negative_scores, float)
    if p.size == 0 or n.size == 0:
        raise JanjaInputError("An AUC needs at least one positive (deposit) and one negative location.")
    from scipy.stats import rankdata  # here, not at module level: scipy.stats costs ~0.3 s at plugin load

    ranks = rankdata(np.concatenate([p, n]))
    return float((ranks[:p.size].sum() - p.size * (p.size + 1) / 2.0) / (p.size * n.size))


@dataclass
class RocCurve:
    false_positive_rate: np.ndarray  # from 0 to 1
    true_positive_rate: np.ndarray
    thresholds: np.ndarray  # score at or above which a location is called positive (first is +inf)
    auc: float
    n_positive: int
    n_negative: int


def roc_curve(positive_scores, negative_scores):
    """ROC curve through every distinct score (ties move both rates at once) and its AUC."""
    p = np.asarray(positive_scores, float)
    n = np.asarray(negative_scores, float)
    auc = auc_mann_whitney(p, n)
    scores = np.concatenate([p, n])
    is_pos = np.concatenate([np.ones(p.size), np.zeros(n.size)])
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], is_pos[order]
    last_of_tie = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    tp = np.cumsum(y)[last_of_tie]
    fp = np.cumsum(1 - y)[last_of_tie]
    return RocCurve(np.r_[0.0, fp / n.size], np.r_[0.0, tp / p.size], np.r_[np.inf, s[last_of_tie]],
                    auc, int(p.size), int(n.size))


# ---------------------------------------------------------------- locating deposits

def _finite_xy(x, y, what):
    x = np.asarray(x, float).ravel()
    y = np.asarray(y, float).ravel()
    if x.size != y.size:
        raise JanjaInputError(f"The {what} have {x.size} x values but {y.size} y values.")
    if x.size == 0:
        raise JanjaInputError(f"There are no {what}. Check the layer and its selection/filter.")
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        raise JanjaInputError(
            f"{int(bad.sum())} of the {what} have no coordinates (rows {np.nonzero(bad)[0][:5].tolist()}...). "
            "Remove them or fix their geometry."
        )
    return x, y


def is_lonlat(*xy_pairs):
    """True when all coordinates fit longitude/latitude ranges (the benchmark's own test)."""
    return all(np.all(np.abs(x) <= 180) and np.all(np.abs(y) <= 90) for x, y in xy_pairs)


def distances_km(x1, y1, x2, y2, geographic):
    """Distance matrix (km), len(x1) x len(x2): haversine on lon/lat degrees, else Euclidean metres / 1000."""
    x1, y1, x2, y2 = (np.asarray(a, float) for a in (x1, y1, x2, y2))
    if geographic:
        lon1, lat1 = np.radians(x1)[:, None], np.radians(y1)[:, None]
        lon2, lat2 = np.radians(x2)[None, :], np.radians(y2)[None, :]
        a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
        return EARTH_RADIUS_KM * 2.0 * np.arctan2(np.sqrt(a), np.sqrt(1.0 - a))
    return np.hypot(x1[:, None] - x2[None, :], y1[:, None] - y2[None, :]) / 1000.0


# ---------------------------------------------------------------- the OpenGADBench sample protocol

def half_min_positive(values, missing_codes=(-9999.0,)):
    """The benchmark's cleaning of one element: values <= 0 (below-detection codes, zeros) become half
    the smallest positive value; unlike the benchmark, missing codes (-9999) become NaN, not a value."""
    v = np.asarray(values, float).copy()
    missing = ~np.isfinite(v) | np.isin(v, missing_codes)
    v[missing] = np.nan
    positive = v[v > 0]
    if positive.size == 0:
        raise JanjaInputError("The column has no positive value, so below-detection values cannot be substituted.")
    v[v <= 0] = positive.min() / 2.0
    return v


@dataclass
class ProtocolResult:
    auc_mean: float
    auc_sd: float  # population SD (ddof=0) over the draws, as the benchmark reports
    aucs: np.ndarray  # one AUC per draw
    deposit_scores: np.ndarray  # score of each deposit's nearest sample (NaN where that sample has none)
    deposit_sample_index: np.ndarray  # index of each deposit's nearest sample
    deposit_distance_km: np.ndarray  # distance to it
    n_deposits_scored: int
    n_eligible_negatives: int  # samples at least min_distance_km from every deposit
    n_negatives_per_draw: np.ndarray  # negatives left in each draw after missing scores are left out
    min_distance_km: float
    n_draws: int
    seed: int
    geographic: bool
    n_merged_locations: int = 0  # locations where several rows were merged into their mean
    spacing_km: float = math.nan  # median nearest-neighbour spacing of the distinct sample locations
    min_distance_rule: str = "given"  # "given", or the per-area rule that set min_distance_km


def sample_spacing_km(x, y, geographic):
    """Median distance from each distinct sample location to its nearest other one (km); NaN for < 2."""
    xy = np.unique(np.column_stack([np.asarray(x, float), np.asarray(y, float)]), axis=0)
    if xy.shape[0] < 2:
        return math.nan
    from scipy.spatial import cKDTree

    if geographic:  # exact: chord distance on the unit sphere is monotone in the great-circle distance
        lon, lat = np.radians(xy[:, 0]), np.radians(xy[:, 1])
        pts = np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
        chord, _ = cKDTree(pts).query(pts, k=2)
        return float(np.median(2.0 * EARTH_RADIUS_KM * np.arcsin(np.minimum(chord[:, 1] / 2.0, 1.0))))
    d, _ = cKDTree(xy).query(xy, k=2)
    return float(np.median(d[:, 1]) / 1000.0)


def protocol_min_distance_km(spacing_km):
    """The benchmark's per-area rule (OpenGADBench scripts): min(5 km, max(0.1 km, 8 x resolution)), with the
    survey's sample spacing as its resolution. 5 km when the spacing is unknown."""
    if not math.isfinite(spacing_km):
        return 5.0
    return float(min(5.0, max(0.1, 8.0 * spacing_km)))


def merge_duplicate_locations(x, y, scores):
    """(x, y, scores, n_merged_groups): rows at identical coordinates become one, scored by their mean, the same
    merge janja:krige does (samples.merge_duplicates), so the row order never decides a deposit's score."""
    from ..geostatistics.samples import merge_duplicates

    merged = merge_duplicates(x, y, np.asarray(scores, float).reshape(-1, 1))
    with np.errstate(invalid="ignore"):
        values = merged.values[:, 0]
    return merged.x, merged.y, values, merged.n_merged_groups


def survey_extent_km(x, y, geographic):
    """The diagonal of the samples' bounding box (km): the yardstick for 'this deposit is nowhere near'."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return float(distances_km([x.min()], [y.min()], [x.max()], [y.max()], geographic)[0, 0])


def far_deposits(deposit_distance_km, extent_km):
    """Deposits farther from every sample than the survey's own extent (a CRS mix-up, or the wrong layer)."""
    limit = max(float(extent_km), 1e-9)
    return np.asarray(deposit_distance_km, float) > limit


def check_far_deposits(deposit_distance_km, extent_km):
    """Refuse when every deposit is farther from the samples than the survey's extent; a warning (or None)
    when some are."""
    far = far_deposits(deposit_distance_km, extent_km)
    d = np.asarray(deposit_distance_km, float)
    if far.all():
        raise JanjaInputError(
            f"Every deposit lies farther from the nearest sample ({d.min():,.0f} km or more) than the survey is wide "
            f"({extent_km:,.1f} km): the two layers do not describe the same area. Check that the deposits and the "
            "samples have the right CRS (a common cause: coordinates in another projection or lon/lat swapped)."
        )
    if far.any():
        return (f"WARNING: {int(far.sum())} of {far.size} deposits lie farther from every sample than the survey is "
                f"wide ({extent_km:,.1f} km; deposit rows {np.flatnonzero(far)[:10].tolist()}). They were scored by a "
                "far-away sample; check their coordinates and CRS, or clip the deposit layer to the survey.")
    return None


def sample_protocol_auc(sample_x, sample_y, scores, deposit_x, deposit_y, min_distance_km=None, n_draws=20,
                        seed=42, geographic=None, merge_duplicates=True):
    """ROC-AUC of sample scores by the OpenGADBench protocol (yihaoding/geochemad, shared/evaluate.py).

    As in the benchmark's `evaluate()`:
    - each deposit takes the score of its nearest sample (every deposit counts, so two deposits
      sharing a nearest sample score it twice);
    - one generator `np.random.default_rng(seed)` (seed 42) serves all draws; each draw is
      `rng.choice(eligible, size=n_deposits, replace=True)` over the indices of the samples at
      least `min_distance_km` from every deposit (haversine distance, R = 6371 km);
    - AUC per draw as sklearn's roc_auc_score (Mann–Whitney, ties 1/2); mean and np.std (ddof=0).
    Where we differ, on purpose:
    - the nearest sample is found exactly, by great-circle distance on lon/lat (the benchmark uses a
      KD-tree on raw degrees, which is not a distance: on sed1 it picks another sample for 2 of the
      32 sites);
    - `min_distance_km=None` applies the benchmark scripts' per-area rule (protocol_min_distance_km)
      to the survey's sample spacing (the README's fixed 5 km cannot run on detailed surveys);
    - a sample whose score is NaN (element not analysed) stays in the sample set, so the draws are
      the benchmark's draws, but is left out where it is drawn: a deposit whose nearest sample has
      no score is not scored, and a missing negative shrinks that draw. The benchmark instead gives
      missing values (-9999) half the smallest positive value, which ranks them lowest and inflates
      the AUC of a partly analysed element (WA log Ag: 0.775 instead of 0.744).
    - no eligible negatives is an error (the benchmark silently falls back to all samples);
    - with merge_duplicates (default), rows at identical coordinates are one location scored by their
      mean, as janja:krige merges them; the benchmark keeps every row, so a deposit took whichever
      duplicate came first (merge_duplicates=False reproduces it).
    Projected coordinates are taken as metres. The numbers depend on the RNG stream: with 20 draws of
    32 negatives the Monte-Carlo error of the mean is about SD/4, so compare methods with one protocol.
    """
    sx, sy = _finite_xy(sample_x, sample_y, "samples")
    dx, dy = _finite_xy(deposit_x, deposit_y, "deposits")
    s = np.asarray(scores, float).ravel()
    if s.size != sx.size:
        raise JanjaInputError(f"Got {s.size} scores for {sx.size} samples; give one score per sample.")
    if not np.isfinite(s).any():
        raise JanjaInputError("No sample has a score (all NaN). Check the score field.")
    if geographic is None:
        geographic = is_lonlat((sx, sy), (dx, dy))
    n_merged = 0
    if merge_duplicates:
        sx, sy, s, n_merged = merge_duplicate_locations(sx, sy, s)
    spacing = sample_spacing_km(sx, sy, geographic)
    rule = "given"
    if min_distance_km is None:
        min_distance_km = protocol_min_distance_km(spacing)
        rule = (f"min(5 km, max(0.1 km, 8 x sample spacing {spacing:.3g} km)) = {min_distance_km:.3g} km "
                "(OpenGADBench per-area rule)")
    d = distances_km(dx, dy, sx, sy, geographic)  # deposits x samples
    nearest = np.argmin(d, axis=1)
    dep_dist = d[np.arange(dx.size), nearest]
    dep_scores = s[nearest]
    pos = dep_scores[np.isfinite(dep_scores)]
    if pos.size == 0:
        raise JanjaInputError("No deposit's nearest sample has a score, so nothing can be evaluated.")
    eligible = np.nonzero(d.min(axis=0) >= min_distance_km)[0]
    if eligible.size == 0:
        far = d.min(axis=0).max()
        raise JanjaInputError(
            f"No sample lies at least {min_distance_km:g} km from every deposit (the farthest lies {far:.2f} km "
            f"away), so there are no negatives. Set the minimum distance below {far:.2f} km (parameter "
            "MIN_DISTANCE; empty = the per-area rule from the sample spacing), or check that the samples and "
            "deposits share a CRS."
        )
    rng = np.random.default_rng(seed)
    aucs, n_neg = [], []
    for _ in range(int(n_draws)):
        neg = s[rng.choice(eligible, size=dep_scores.size, replace=True)]
        neg = neg[np.isfinite(neg)]
        n_neg.append(neg.size)
        aucs.append(auc_mann_whitney(pos, neg) if neg.size else math.nan)
    aucs = np.asarray(aucs)
    return ProtocolResult(float(np.nanmean(aucs)), float(np.nanstd(aucs)), aucs, dep_scores, nearest, dep_dist,
                          int(pos.size), int(eligible.size), np.asarray(n_neg), float(min_distance_km),
                          int(n_draws), int(seed), bool(geographic), int(n_merged), spacing, rule)


def training_site_mask(deposit_x, deposit_y, site_x, site_y, tolerance):
    """True for each deposit within `tolerance` (map units) of a training site of the model being scored."""
    dx, dy = np.asarray(deposit_x, float), np.asarray(deposit_y, float)
    if len(site_x) == 0 or dx.size == 0:
        return np.zeros(dx.size, bool)
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(np.column_stack([site_x, site_y])).query(np.column_stack([dx, dy]))
    return dist <= tolerance


def scope_label(in_sample_mask):
    """What an evaluation on these deposits is: independent, in-sample, or partly in-sample."""
    m = np.asarray(in_sample_mask, bool)
    if m.size and m.all():
        return IN_SAMPLE_LABEL
    if m.any():
        return (f"partly in-sample: {int(m.sum())} of {m.size} deposits were training labels; scored on all, not a "
                "validation (see the row on the other deposits)")
    return "deposits not used to train the map"


# ---------------------------------------------------------------- raster cells

def deposit_cells(cell_x, cell_y, cell_scores, deposit_x, deposit_y, cell_width, cell_height=None,
                  allow_outside=False):
    """Index of the valid cell holding each deposit (cells given by their centres).

    A deposit more than half a cell from every cell centre is outside the map; one on a nodata
    cell has no score. Both are an error unless allow_outside=True (then they get index -1).
    """
    cx, cy = _finite_xy(cell_x, cell_y, "raster cells")
    dx, dy = _finite_xy(deposit_x, deposit_y, "deposits")
    sc = np.asarray(cell_scores, float).ravel()
    cell_height = cell_width if cell_height is None else cell_height
    valid = np.isfinite(sc)
    if not valid.any():
        raise JanjaInputError("The score raster has no valid cells (all nodata). Check the band and its nodata value.")
    scale = np.array([abs(cell_width), abs(cell_height)], float)
    from scipy.spatial import cKDTree

    tree = cKDTree(np.column_stack([cx, cy]) / scale)
    _, idx = tree.query(np.column_stack([dx, dy]) / scale)
    inside = (np.abs(cx[idx] - dx) <= scale[0] / 2 * (1 + 1e-9)) & (np.abs(cy[idx] - dy) <= scale[1] / 2 * (1 + 1e-9))
    ok = inside & valid[idx]
    if not ok.all() and not allow_outside:
        bad = np.nonzero(~ok)[0]
        raise JanjaInputError(
            f"{bad.size} of the {dx.size} deposits fall outside the score map or on nodata cells (deposit rows "
            f"{bad[:10].tolist()}{'...' if bad.size > 10 else ''}). Clip the deposit layer to the map extent, check "
            "both layers share a CRS, or set 'Leave out deposits outside the map' (ALLOW_OUTSIDE)."
        )
    return np.where(ok, idx, -1)


def raster_roc(cell_scores, deposit_cell_index):
    """ROC of a raster: the (distinct) deposit cells are positives, every other valid cell a negative."""
    sc = np.asarray(cell_scores, float).ravel()
    dep = np.unique(np.asarray(deposit_cell_index)[np.asarray(deposit_cell_index) >= 0])
    positive = np.zeros(sc.size, bool)
    positive[dep] = True
    valid = np.isfinite(sc)
    return roc_curve(sc[positive & valid], sc[~positive & valid])


# ---------------------------------------------------------------- success rate and P-A

def _finite_scores(scores, deposit_scores, weights, what):
    """(scores, weights, deposit scores) with every non-finite value left out; refuse when nothing is left."""
    s = np.asarray(scores, float).ravel()
    w = np.ones(s.size) if weights is None else np.asarray(weights, float).ravel()
    keep = np.isfinite(s)
    ds = np.asarray(deposit_scores, float).ravel()
    ds = ds[np.isfinite(ds)]
    if not keep.any() or ds.size == 0:
        raise JanjaInputError(f"{what} needs valid cells and at least one deposit with a score.")
    return s[keep], w[keep], ds


@dataclass
class SuccessRate:
    area_share: np.ndarray  # share of the valid area (or samples) at or above each threshold, 0..1
    deposit_share: np.ndarray  # share of deposits in it, 0..1
    thresholds: np.ndarray  # the score at each step (first is +inf)
    auc: float  # area under the success-rate curve (0.5 = no better than chance)


def success_rate_curve(scores, deposit_scores, weights=None):
    """Cells (or samples) ranked by score; share of deposits captured against share of area.

    `scores` are all valid units (cells), `deposit_scores` the score of the unit holding each
    deposit; `weights` the area of each unit (equal by default). Ties are stepped over at once.
    """
    s, w, ds = _finite_scores(scores, deposit_scores, weights, "A success-rate curve")
    levels = np.unique(s)[::-1]
    order = np.argsort(-s, kind="mergesort")
    s_sorted, cum_w = s[order], np.cumsum(w[order])
    last = np.searchsorted(-s_sorted, -levels, side="right") - 1
    area = cum_w[last] / cum_w[-1]
    dep_sorted = np.sort(ds)
    captured = (ds.size - np.searchsorted(dep_sorted, levels, side="left")) / ds.size
    area, captured = np.r_[0.0, area], np.r_[0.0, captured]
    return SuccessRate(area, captured, np.r_[np.inf, levels], trapezoid_area(captured, area))


def trapezoid_area(y, x):
    """Area under y(x) by the trapezoid rule, written out: np.trapz is gone in numpy 2 and
    np.trapezoid is missing from numpy 1.24 (QGIS 3.22 on Debian 12)."""
    y, x = np.asarray(y, float), np.asarray(x, float)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


@dataclass
class PredictionArea:
    thresholds: np.ndarray  # score levels t (ascending)
    prediction_rate: np.ndarray  # % of deposits in units scoring >= t
    occupied_area: np.ndarray  # % of the area scoring >= t
    intersection_threshold: float
    prediction_rate_at: float  # P: % of deposits predicted by the zone >= threshold
    area_at: float  # A: % of the area that zone occupies (= 100 - P at the crossing)
    normalized_density: float  # Nd = P / A
    weight: float  # We = ln(Nd)


def prediction_area(scores, deposit_scores, weights=None, n_levels=200):
    """P–A plot (Yousefi & Carranza 2015) and its intersection point.

    The plot draws, against the threshold t, the prediction rate P(t) (% of deposits scoring >= t,
    falling) and the cumulative area below t, 100 - A(t) (rising), where A(t) is the % of the area
    scoring >= t. They cross where P = 100 - A: a zone holding P % of the deposits in A % of the area.
    Nd = P / A measures how much denser in deposits the zone is than the map; We = ln(Nd).
    """
    s, w, ds = _finite_scores(scores, deposit_scores, weights, "A prediction–area plot")
    t = np.unique(np.quantile(s, np.linspace(0.0, 1.0, n_levels)))
    order = np.argsort(s)
    s_sorted, cum_w = s[order], np.concatenate([[0.0], np.cumsum(w[order])])
    area = 100.0 * (cum_w[-1] - cum_w[np.searchsorted(s_sorted, t, side="left")]) / cum_w[-1]
    return prediction_area_at(t, area, ds)


def prediction_area_at(t, area, ds):
    """The P–A curves and crossing from the levels t, the % of the area scoring >= each, and the deposits'
    finite scores: the part of prediction_area that needs no map in memory (a streamed map counts its
    area per level in a pass over the file, core/inference/streamed_prospectivity.py)."""
    pred = 100.0 * (ds.size - np.searchsorted(np.sort(ds), t, side="left")) / ds.size
    f = pred + area - 100.0  # > 0 at the lowest threshold, falls to about -100
    cross = np.nonzero(f <= 0)[0]
    if cross.size == 0:
        i = t.size - 1
        frac = 0.0
    else:
        i = int(cross[0])
        frac = 0.0 if i == 0 else f[i - 1] / (f[i - 1] - f[i])
    j = max(i - 1, 0)
    t_x = float(t[j] + frac * (t[i] - t[j]))
    p_x = float(pred[j] + frac * (pred[i] - pred[j]))
    a_x = float(area[j] + frac * (area[i] - area[j]))
    nd = p_x / a_x if a_x > 0 else math.inf
    we = math.log(nd) if 0 < nd < math.inf else math.nan
    return PredictionArea(t, pred, area, t_x, p_x, a_x, nd, we)


def curve_vertices(x, y, n_grid=201):
    """Indices of the vertices that keep a curve (as a polyline) exactly, plus the vertex nearest each of
    `n_grid` evenly spaced x values, so a table can still be read at 1 %, 5 %, 10 % of the area.

    A success-rate or ROC curve has one vertex per distinct score (one per cell of a probability map);
    between two deposits it is a straight run, so its corners are the curve. This is what keeps the
    evaluation table at kilobytes instead of the 16 MB it was on the WA 250 m grid.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = x.size
    if n <= 3:
        return np.arange(n)
    fx, fy = np.where(np.isfinite(x), x, 0.0), np.where(np.isfinite(y), y, 0.0)
    keep = np.ones(n, bool)
    dx1, dy1 = fx[1:-1] - fx[:-2], fy[1:-1] - fy[:-2]
    dx2, dy2 = fx[2:] - fx[1:-1], fy[2:] - fy[1:-1]
    scale = max(float(np.ptp(fx)) * float(np.ptp(fy)), 1e-300)
    keep[1:-1] = (np.abs(dx1 * dy2 - dy1 * dx2) > 1e-12 * scale) | ~np.isfinite(x[1:-1]) | ~np.isfinite(y[1:-1])
    finite = np.isfinite(x)
    if finite.any() and n_grid:
        xs = x[finite]
        order = np.argsort(xs, kind="mergesort")
        grid = np.linspace(xs.min(), xs.max(), n_grid)
        pos = np.clip(np.searchsorted(xs[order], grid), 0, xs.size - 1)
        keep[np.flatnonzero(finite)[order[pos]]] = True
    return np.flatnonzero(keep)


# ---------------------------------------------------------------- report

def report_section(report, title="Evaluation against known deposits", roc=None, protocol=None, success=None,
                   pa=None):
    """ROC curve, protocol AUC table, success-rate curve and P–A plot, whichever are given."""
    from ..reporting.svgplot import chart
    from ..reporting.units import number

    report.heading(title)
    svgs, rows = [], []
    if roc is not None:
        rows.append(("ROC AUC (all valid locations)", roc.auc, f"{roc.n_positive} positive, {roc.n_negative} negative"))
        svgs.append(chart([
            {"x": roc.false_positive_rate, "y": roc.true_positive_rate, "style": "line", "label": f"AUC {roc.auc:.3f}"},
            {"x": [0, 1], "y": [0, 1], "style": "line", "colour": "#999999", "label": "chance"},
        ], title="ROC curve", xlabel="false positive rate", ylabel="true positive rate"))
    if protocol is not None:
        rows.append((f"OpenGADBench protocol AUC ({protocol.n_draws} draws, seed {protocol.seed}, "
                     f">= {protocol.min_distance_km:g} km)", f"{protocol.auc_mean:.3f} ± {protocol.auc_sd:.3f}",
                     f"{protocol.n_deposits_scored} deposits, {protocol.n_eligible_negatives} eligible negatives"))
    if success is not None:
        rows.append(("Success-rate curve area", success.auc, "0.5 = chance"))
        svgs.append(chart([
            {"x": 100 * success.area_share, "y": 100 * success.deposit_share, "style": "line", "label": "success rate"},
            {"x": [0, 100], "y": [0, 100], "style": "line", "colour": "#999999", "label": "chance"},
        ], title="Success-rate curve", xlabel="% of area (highest scores first)", ylabel="% of deposits"))
    if pa is not None:
        rows.append(("P–A intersection", f"P = {pa.prediction_rate_at:.1f} %, A = {pa.area_at:.1f} %",
                     f"threshold {number(pa.intersection_threshold, 3)}, Nd = {number(pa.normalized_density, 3)}, "
                     f"We = {number(pa.weight, 3)}"))
        svgs.append(chart([
            {"x": pa.thresholds, "y": pa.prediction_rate, "style": "line",
             "label": "prediction rate (% deposits >= t)"},
            {"x": pa.thresholds, "y": 100.0 - pa.occupied_area, "style": "line",
             "label": "% of area below t (100 - occupied)"},
            {"x": [pa.intersection_threshold], "y": [pa.prediction_rate_at], "style": "points", "colour": "#000000"},
        ], title="Prediction–area plot", xlabel="score threshold t", ylabel="%"))
    if rows:
        report.table(["measure", "value", "note"], rows)
    if svgs:
        report.charts(svgs)
