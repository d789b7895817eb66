"""Reading geochemical sample values as laboratories and databases write them.

One parser for every convention met in real surveys: '<0.5' and '>1000' strings, negative numbers
as detection-limit codes (-0.001 = below 0.001), missing codes (-9999, empty, NULL), zeros. The
caller chooses what replaces a below-detection value; every run counts what it saw, per kind.
"""

import math
import re
from dataclasses import dataclass, field

import numpy as np

from .errors import JanjaInputError

MEASURED, BELOW_DL, ABOVE_DL, MISSING, ZERO, UNPARSEABLE = (
    "measured", "below_dl", "above_dl", "missing", "zero", "unparseable")
KINDS = (MEASURED, BELOW_DL, ABOVE_DL, ZERO, MISSING, UNPARSEABLE)
# Codes that mean "not analysed" in survey databases; a negative value not in this set is a
# below-detection code whose absolute value is the detection limit.
DEFAULT_MISSING_CODES = frozenset({-9999.0, -99999.0, -999999.0, -9999.9, -999.0})
MISSING_TEXT = {"", "NULL", "NA", "N/A", "NAN", "-", "--", "NS", "IS", "LNR", "N.A.", "NONE"}
SUBSTITUTIONS = ("half_dl", "dl_factor", "omit", "half_min_positive")
_CENSORED = re.compile(r"^\s*([<>])\s*=?\s*([-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass
class ParsedColumn:
    """Values after substitution (NaN = missing or left out), the kind and detection limit per row."""

    values: np.ndarray
    kinds: np.ndarray
    detection_limits: np.ndarray
    counts: dict
    unparseable_examples: list = field(default_factory=list)


def _number(text):
    text = text.strip()
    if "," in text and "." not in text:  # decimal comma (e.g. '0,5'); thousands separators are not used
        text = text.replace(",", ".")
    return float(text)


def _classify(raw, missing_codes):
    """(kind, number or detection limit) for one raw cell."""
    if raw is None:
        return MISSING, math.nan
    if isinstance(raw, bool):
        return UNPARSEABLE, math.nan
    if isinstance(raw, int | float | np.integer | np.floating):
        v = float(raw)
    else:
        text = str(raw).strip()
        if text.upper() in MISSING_TEXT:
            return MISSING, math.nan
        m = _CENSORED.match(text)
        if m:
            limit = abs(_number(m.group(2)))
            return (BELOW_DL if m.group(1) == "<" else ABOVE_DL), limit
        try:
            v = _number(text)
        except ValueError:
            return UNPARSEABLE, math.nan
    if not math.isfinite(v) or v in missing_codes:
        return MISSING, math.nan
    if v < 0:
        return BELOW_DL, -v
    if v == 0:
        return ZERO, math.nan
    return MEASURED, v


MAX_UNPARSEABLE_FRACTION = 0.05


def parse_censored(raw_values, substitution="half_dl", factor=0.5, missing_codes=DEFAULT_MISSING_CODES,
                   column="values", max_unparseable_fraction=MAX_UNPARSEABLE_FRACTION):
    """Parse a column of raw values; below-detection values become DL x 0.5 ('half_dl'), DL x factor
    ('dl_factor'), NaN ('omit') or half the smallest positive measured value of the column whatever
    their own limit ('half_min_positive', the OpenGADBench cleaning, which ranks every censored value
    lowest even when surveys with different detection limits are mixed); above-detection values
    become the limit.

    A zero means below an unknown detection limit: its limit is taken as the smallest positive
    measured value of the column (so 'half_dl' gives half of it, as the OpenGADBench code does).
    Text that is no number is counted and reported as unparseable (left out); a column with no
    number at all, or with more than `max_unparseable_fraction` of its non-missing cells unparseable
    (an ID or text column with a few numeric-looking entries), is refused: it is almost certainly
    the wrong field.
    """
    if substitution not in SUBSTITUTIONS:
        raise JanjaInputError(f"Unknown substitution '{substitution}'; use one of {', '.join(SUBSTITUTIONS)}.")
    if substitution == "dl_factor" and not (factor >= 0 and math.isfinite(factor)):
        raise JanjaInputError(f"The detection-limit factor must be a number >= 0, not {factor}.")
    multiplier = {"half_dl": 0.5, "dl_factor": factor}.get(substitution, math.nan)
    pairs = [_classify(v, missing_codes) for v in raw_values]
    kinds = np.array([k for k, _ in pairs], dtype=object)
    numbers = np.array([v for _, v in pairs], dtype=float)
    n = len(pairs)
    measured = kinds == MEASURED
    if n and not np.any((kinds != MISSING) & (kinds != UNPARSEABLE)):
        examples = [str(v) for v, k in zip(raw_values, kinds) if k == UNPARSEABLE][:3]
        raise JanjaInputError(
            f"Column '{column}' has no numeric values"
            + (f" (it holds text such as {', '.join(repr(e) for e in examples)})" if examples else "")
            + ". Check that you picked the element's field, and its missing-value codes."
        )
    n_text = int(np.sum(kinds == UNPARSEABLE))
    n_present = int(np.sum(kinds != MISSING))
    if n_text > max_unparseable_fraction * n_present:
        examples = [str(v) for v, k in zip(raw_values, kinds) if k == UNPARSEABLE][:3]
        raise JanjaInputError(
            f"Column '{column}' is mostly text: {n_text} of its {n_present} filled cells are not numbers "
            f"(such as {', '.join(repr(e) for e in examples)}). Pick the element's value field, or clean "
            "the column so it holds numbers, '<DL' / '>DL' codes or missing-value codes only."
        )
    limits = np.where((kinds == BELOW_DL) | (kinds == ABOVE_DL), numbers, np.nan)
    zero_limit = float(numbers[measured].min()) if measured.any() else math.nan
    limits[kinds == ZERO] = zero_limit
    values = np.full(n, np.nan)
    values[measured] = numbers[measured]
    below = (kinds == BELOW_DL) | (kinds == ZERO)
    if substitution == "half_min_positive":
        values[below] = 0.5 * zero_limit
    else:
        values[below] = limits[below] * multiplier
    values[kinds == ABOVE_DL] = limits[kinds == ABOVE_DL]
    counts = {k: int(np.sum(kinds == k)) for k in KINDS}
    examples = [(i, str(v)) for i, (v, k) in enumerate(zip(raw_values, kinds)) if k == UNPARSEABLE][:5]
    return ParsedColumn(values, kinds.astype(str), limits, counts, examples)


@dataclass
class MergedSamples:
    """Samples after merging duplicate locations: one point per group (mean x, y and values)."""

    x: np.ndarray
    y: np.ndarray
    values: np.ndarray
    group_sizes: np.ndarray
    groups: list  # original row indices of each merged point
    n_merged_groups: int


def merge_duplicates(x, y, values, tolerance=0.0):
    """Merge samples at the same place (within `tolerance` metres, transitively): mean of coordinates
    and nanmean of each value column, so the kriging system is never singular because of them."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    values = np.asarray(values, float).reshape(x.size, -1)
    n = x.size
    if n == 0:
        return MergedSamples(x, y, values, np.zeros(0, int), [], 0)
    if tolerance and tolerance > 0:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components
        from scipy.spatial import cKDTree

        pairs = cKDTree(np.column_stack([x, y])).query_pairs(tolerance, output_type="ndarray")
        graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        _, label = connected_components(graph, directed=False)
    else:
        _, label = np.unique(np.column_stack([x, y]), axis=0, return_inverse=True)
    label = np.asarray(label).ravel()
    order = np.argsort(label, kind="stable")
    _, starts, sizes = np.unique(label[order], return_index=True, return_counts=True)
    groups = [order[s:s + c] for s, c in zip(starts, sizes)]
    mx = np.array([x[g].mean() for g in groups])
    my = np.array([y[g].mean() for g in groups])
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mv = np.array([np.nanmean(values[g], axis=0) for g in groups]).reshape(len(groups), -1)
    return MergedSamples(mx, my, mv, sizes, groups, int(np.sum(sizes > 1)))


def utm_epsg_for_lonlat(lon, lat):
    """EPSG code of the WGS 84 UTM zone holding (lon, lat): 326zz north, 327zz south.

    The Norway/Svalbard zone exceptions are ignored: the standard 6-degree zone is always valid.
    """
    lon = ((float(lon) + 180.0) % 360.0) - 180.0
    zone = min(60, int((lon + 180.0) // 6.0) + 1)
    return (32600 if lat >= 0 else 32700) + zone


def summary_statistics(values):
    """Descriptive statistics of the usable values (after substitution) for the report."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"n": 0}
    q = np.percentile(v, [0, 25, 50, 75, 90, 95, 100])
    pos = v[v > 0]
    stats = {"n": int(v.size), "min": q[0], "p25": q[1], "median": q[2], "p75": q[3], "p90": q[4],
             "p95": q[5], "max": q[6], "mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0}
    if pos.size > 1:
        lg = np.log10(pos)
        stats.update(mean_log10=float(lg.mean()), sd_log10=float(lg.std(ddof=1)))
    return {k: float(s) if k != "n" else s for k, s in stats.items()}
