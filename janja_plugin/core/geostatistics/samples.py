"""Reading geochemical sample values as laboratories and databases write them.

One parser for every convention met in real surveys: '<0.5' and '>1000' strings, negative numbers
as detection-limit codes (-0.001 = below 0.001), missing codes (-9999, empty, NULL), zeros, text
such as 'BDL', and a separate flag column ('<' beside a value of 0.0, as in GTK's till database).
The caller chooses what replaces a below-detection value; every run counts what it saw, per kind,
so a map never hides how much of it rests on substituted values.

Decisions, written down once:
- A comma is a decimal comma when the text has no point ('0,5' = 0.5): European spreadsheets write
  it so, and geochemical tables do not use thousands separators.
- Missing-value codes (DEFAULT_MISSING_CODES) are matched to 1 part in 1e6, so a -9999.9 stored
  as float32 is still recognised; any other negative number is a below-detection code.
- A zero, a '<0', 'BDL' or a '<' flag without a usable limit means "below an unknown detection
  limit": the limit is taken as the smallest positive measured value of the column (so 'half_dl'
  gives half of it, as the OpenGADBench code does for values <= 0).
- '>1000' becomes 1000 (the limit): the true value is at least that; such rows are counted.
- Signed variables (clr/ilr/factor scores) are read with `negative_codes=False`: a negative number or
  a zero is then a measured value, not a below-detection code; '<x' strings and '<' flags still are.
- A stated detection limit (`detection_limit`) is the limit of every zero, 'BDL' and flag-only '<'
  row, instead of the smallest positive value: the survey's own convention beats a guess.
- 'ND' is left out of the below-detection words on purpose: it means "not detected" in some
  tables and "not determined" in others, so it is reported as unparseable for the user to decide.
"""

import math
import re
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import JanjaInputError

MEASURED, BELOW_DL, ABOVE_DL, MISSING, ZERO, UNPARSEABLE = (
    "measured", "below_dl", "above_dl", "missing", "zero", "unparseable")
KINDS = (MEASURED, BELOW_DL, ABOVE_DL, ZERO, MISSING, UNPARSEABLE)
# Codes that mean "not analysed" in survey databases; a negative value not in this set is a
# below-detection code whose absolute value is the detection limit.
DEFAULT_MISSING_CODES = frozenset({-9999.0, -99999.0, -999999.0, -9999.9, -999.0})
MISSING_TEXT = {"", "NULL", "NA", "N/A", "NAN", "-", "--", "NS", "IS", "LNR", "N.A.", "NONE"}
# Words that mean "below detection" without giving the limit.
BELOW_TEXT = {"BDL", "<DL", "<LOD", "<LLD", "LLD", "BLD", "<D.L.", "B.D.L."}
SUBSTITUTIONS = ("half_dl", "dl_factor", "omit", "half_min_positive")
MAX_UNPARSEABLE_FRACTION = 0.05
_CENSORED = re.compile(r"^\s*([<>])\s*=?\s*([-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?)\s*$")


@dataclass
class ParsedColumn:
    """Values after substitution (NaN = missing or left out), the kind and detection limit per row.

    `counts` always has the six KINDS as keys. `warnings` holds sentences for the user (e.g. mixed
    detection limits); `other_flags` counts flag-column entries other than '<' and '>' (their values
    are used as measured, e.g. GTK's undocumented '!').
    """

    values: np.ndarray
    kinds: np.ndarray
    detection_limits: np.ndarray
    counts: dict
    unparseable_examples: list = field(default_factory=list)  # (row index, text), first 5
    warnings: list = field(default_factory=list)
    other_flags: dict = field(default_factory=dict)

    @property
    def below_detection(self):
        """Rows whose value is a substitute for 'below detection' ('<x', zeros, codes, '<' flags):
        background by construction, so anomaly thresholds must neither use nor classify them."""
        return np.isin(self.kinds, (BELOW_DL, ZERO))

    def censoring_sentence(self, column=None):
        """'12 of 40 samples (30.0 %) are below detection, 1 above' for logs and reports."""
        n = int(sum(v for k, v in self.counts.items() if k not in (MISSING, UNPARSEABLE)))
        below = self.counts[BELOW_DL] + self.counts[ZERO]
        pct = 100.0 * below / n if n else 0.0
        above = self.counts[ABOVE_DL]
        return (f"{column + ': ' if column else ''}{below} of {n} samples ({pct:.1f} %) are below detection"
                + (f", {above} above the upper limit (taken at the limit)" if above else "") + ".")


def _number(text):
    text = text.strip()
    if "," in text and "." not in text:  # decimal comma (e.g. '0,5'); thousands separators are not used
        text = text.replace(",", ".")
    return float(text)


def _is_missing_text(raw):
    return raw is None or str(raw).strip().upper() in MISSING_TEXT


def _classify(raw, missing_codes, negative_codes=True):
    """(kind, number or detection limit) for one raw cell; NaN limit = below an unknown limit."""
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
        if text.upper() in BELOW_TEXT:
            return BELOW_DL, math.nan
        m = _CENSORED.match(text)
        if m:
            limit = abs(_number(m.group(2)))
            if m.group(1) == ">":
                return (ABOVE_DL, limit) if limit > 0 else (UNPARSEABLE, math.nan)
            return BELOW_DL, (limit if limit > 0 else math.nan)
        try:
            v = _number(text)
        except ValueError:
            return UNPARSEABLE, math.nan
    if not math.isfinite(v) or any(abs(v - c) <= 1e-6 * abs(c) for c in missing_codes):
        return MISSING, math.nan
    if not negative_codes:
        return MEASURED, v
    if v < 0:
        return BELOW_DL, -v
    if v == 0:
        return ZERO, math.nan
    return MEASURED, v


def _classify_flagged(raw, flag, missing_codes, other_flags, negative_codes=True):
    """A value with its flag-column entry: '<' = below detection (the value, if positive, is the
    limit), '>' = above detection (the value is the limit); other flags are counted, value kept."""
    if _is_missing_text(flag):
        return _classify(raw, missing_codes, negative_codes)
    flag = str(flag).strip()
    kind, v = _classify(raw, missing_codes, negative_codes)
    if flag == "<":
        return BELOW_DL, (v if kind in (MEASURED, BELOW_DL) and v > 0 else math.nan)
    if flag == ">":
        return (ABOVE_DL, v) if kind == MEASURED else (kind, v)
    other_flags[flag] = other_flags.get(flag, 0) + 1
    return kind, v


def _mixed_limit_warning(column, numbers, kinds):
    """Sentence when below-detection limits exceed most measured values: the column mixes methods,
    and substituted values would rank as anomalies."""
    measured = numbers[kinds == MEASURED]
    known = (kinds == BELOW_DL) & np.isfinite(numbers)
    if measured.size < 10 or not known.any():
        return None
    p95 = float(np.percentile(measured, 95))
    high = known & (numbers > p95)
    if not high.any():
        return None
    return (
        f"Column '{column}': {int(high.sum())} below-detection value(s) have a detection limit (up to "
        f"{numbers[high].max():g}) above 95% of the measured values (95th percentile {p95:g}, maximum "
        f"{measured.max():g}). The column mixes analytical methods with different detection limits; "
        "substituted values will look like anomalies. Consider 'omit' or 'half_min_positive', or level "
        "the data per survey."
    )


def parse_censored(raw_values, substitution="half_dl", factor=0.5, missing_codes=DEFAULT_MISSING_CODES,
                   column="values", max_unparseable_fraction=MAX_UNPARSEABLE_FRACTION, flags=None,
                   negative_codes=True, detection_limit=None):
    """Parse a column of raw values; below-detection values become DL x 0.5 ('half_dl'), DL x factor
    ('dl_factor'), NaN ('omit') or half the smallest positive measured value of the column whatever
    their own limit ('half_min_positive', the OpenGADBench cleaning, which ranks every censored value
    lowest even when surveys with different detection limits are mixed); above-detection values
    become the limit.

    `flags` is an optional flag column of the same length ('<', '>', other text, or empty/NULL).
    `negative_codes=False` reads negative numbers and zeros as values (signed variables).
    `detection_limit` (> 0) is the stated limit of rows below an unknown limit (zeros, 'BDL', '<'
    flags with no value); without it the smallest positive measured value stands in.
    Text that is no number is counted and reported as unparseable (left out); a column with no
    number at all, or with more than `max_unparseable_fraction` of its non-missing cells unparseable
    (an ID or text column with a few numeric-looking entries), is refused: it is almost certainly
    the wrong field.
    """
    if substitution not in SUBSTITUTIONS:
        raise JanjaInputError(
            f"Unknown substitution '{substitution}'; use one of {', '.join(SUBSTITUTIONS)}.")
    if substitution == "dl_factor" and not (factor >= 0 and math.isfinite(factor)):
        raise JanjaInputError(f"The detection-limit factor must be a number >= 0, not {factor}.")
    if detection_limit is not None and not (math.isfinite(detection_limit) and detection_limit > 0):
        raise JanjaInputError(
            f"The stated detection limit of '{column}' must be a positive number, not {detection_limit:g}.")
    raw_values = list(raw_values)
    other_flags = {}
    if flags is None:
        pairs = [_classify(v, missing_codes, negative_codes) for v in raw_values]
    else:
        flags = list(flags)
        if len(flags) != len(raw_values):
            raise JanjaInputError(
                f"The flag column of '{column}' has {len(flags)} rows but the value column has "
                f"{len(raw_values)}: pick the flag field of the same layer."
            )
        pairs = [_classify_flagged(v, f, missing_codes, other_flags, negative_codes)
                 for v, f in zip(raw_values, flags)]
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
    censored = (kinds == BELOW_DL) | (kinds == ABOVE_DL)
    limits = np.where(censored, numbers, np.nan)
    warning_list = [w for w in [_mixed_limit_warning(column, numbers, kinds)] if w]
    # Below an unknown limit: the smallest positive measured value, else the smallest known limit.
    known_below = numbers[(kinds == BELOW_DL) & np.isfinite(numbers)]
    positive = numbers[measured & (numbers > 0)]
    min_positive = float(positive.min()) if positive.size else math.nan
    if detection_limit is not None:
        unknown_limit = float(detection_limit)
    elif positive.size:
        unknown_limit = min_positive
    elif known_below.size:
        unknown_limit = float(known_below.min())
    else:
        unknown_limit = math.nan
    unknown = (kinds == ZERO) | ((kinds == BELOW_DL) & np.isnan(numbers))
    limits[unknown] = unknown_limit
    if unknown.any() and math.isnan(unknown_limit):
        warning_list.append(
            f"Column '{column}': {int(unknown.sum())} value(s) are below an unknown detection limit and the "
            "column has no measured value to estimate it from; they are left out."
        )
    values = np.full(n, np.nan)
    values[measured] = numbers[measured]
    below = (kinds == BELOW_DL) | (kinds == ZERO)
    if substitution == "half_min_positive":
        values[below] = 0.5 * (min_positive if positive.size else unknown_limit)
    else:
        multiplier = {"half_dl": 0.5, "dl_factor": factor}.get(substitution, math.nan)
        values[below] = limits[below] * multiplier
    values[kinds == ABOVE_DL] = limits[kinds == ABOVE_DL]
    counts = {k: int(np.sum(kinds == k)) for k in KINDS}
    examples = [(i, str(v)) for i, (v, k) in enumerate(zip(raw_values, kinds)) if k == UNPARSEABLE][:5]
    return ParsedColumn(values, kinds.astype(str), limits, counts, examples, warning_list, other_flags)


@dataclass
class MergedSamples:
    """Samples after merging duplicate locations: one point per group (mean x, y and values)."""

    x: np.ndarray
    y: np.ndarray
    values: np.ndarray  # (n_groups, n_columns), nanmean of each column over the group
    group_sizes: np.ndarray
    row_order: np.ndarray  # original row indices, group after group (ascending within a group)
    n_merged_groups: int  # groups of more than one row

    @property
    def groups(self):
        """Original row indices of each merged point; built on demand (10^6 small arrays cost 0.5 s)."""
        ends = np.cumsum(self.group_sizes)
        return [self.row_order[e - c:e] for e, c in zip(ends.tolist(), self.group_sizes.tolist())]


# Groups of this many rows or more are averaged by np.nanmean itself: numpy sums them pairwise, while
# below it numpy sums in row order, as np.bincount does, so every mean stays bit-identical to np.nanmean.
_PAIRWISE_FROM = 8


def _group_nanmeans(columns, label, n_groups, big, order, starts, sizes, mean_of_group):
    """Per-group NaN-ignoring mean of each column in one pass (np.bincount), bit-identical to
    `mean_of_group(rows)` (np.nanmean / ndarray.mean) per group; an all-NaN group gives NaN."""
    out = np.empty((n_groups, columns.shape[1]))
    with np.errstate(invalid="ignore", divide="ignore"):  # all-NaN group: 0/0 -> NaN, as np.nanmean
        for j in range(columns.shape[1]):
            col = columns[:, j]
            finite = ~np.isnan(col)
            total = np.bincount(label, weights=np.where(finite, col, 0.0), minlength=n_groups)
            count = np.bincount(label, weights=finite, minlength=n_groups)
            out[:, j] = total / count
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN group -> NaN, on purpose
        for i in big:
            out[i] = mean_of_group(order[starts[i]:starts[i] + sizes[i]])
    return out


def merge_duplicates(x, y, values, tolerance=0.0):
    """Merge samples at the same place (within `tolerance` CRS units, transitively; 0 = identical
    coordinates): mean of coordinates and nanmean of each value column, so the kriging system is
    never singular because of them. Use a metric CRS when tolerance > 0.

    Vectorised (one sort and one np.bincount per column) so 10^6 samples take seconds, with results
    bit-identical to the per-group np.nanmean it replaces (tests/core/test_merge_duplicates_fast.py)."""
    x = np.asarray(x, float).ravel()
    y = np.asarray(y, float).ravel()
    if x.size != y.size:
        raise JanjaInputError(
            f"x has {x.size} values but y has {y.size}: they must come from the same samples.")
    values = np.asarray(values, float).reshape(x.size, -1)
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise JanjaInputError(f"The duplicate tolerance must be a distance >= 0, not {tolerance}.")
    bad = np.flatnonzero(~(np.isfinite(x) & np.isfinite(y)))
    if bad.size:
        raise JanjaInputError(
            f"{bad.size} sample(s) have no valid coordinates (rows {', '.join(str(i) for i in bad[:5])}"
            f"{' ...' if bad.size > 5 else ''}). Remove them or fix their geometry first."
        )
    n = x.size
    if n == 0:
        return MergedSamples(x, y, values, np.zeros(0, int), np.zeros(0, int), 0)
    if tolerance > 0:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components
        from scipy.spatial import cKDTree

        pairs = cKDTree(np.column_stack([x, y])).query_pairs(tolerance, output_type="ndarray")
        graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        _, label = connected_components(graph, directed=False)
        label = np.asarray(label).ravel()
        order = np.argsort(label, kind="stable")
        new_group = np.r_[True, label[order][1:] != label[order][:-1]]
    else:
        # groups in (x, y) order, rows in their own order within a group: what np.unique(axis=0) and a
        # stable argsort of its labels gave, 10x faster at 10^6 rows
        order = np.lexsort((y, x))
        xs, ys = x[order], y[order]
        new_group = np.r_[True, (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1])]
    starts = np.flatnonzero(new_group)
    sizes = np.diff(np.r_[starts, n])
    n_groups = starts.size
    label = np.empty(n, np.intp)
    label[order] = np.cumsum(new_group) - 1  # group number of each row, groups numbered as above
    big = np.flatnonzero(sizes >= _PAIRWISE_FROM)
    if tolerance > 0:
        mx, my = (_group_nanmeans(c[:, None], label, n_groups, big, order, starts, sizes,
                                  lambda g, c=c: c[g].mean())[:, 0] for c in (x, y))
    else:  # identical coordinates: keep them exactly (a float mean can move them by one ulp)
        mx, my = x[order[starts]], y[order[starts]]
    mv = _group_nanmeans(values, label, n_groups, big, order, starts, sizes,
                         lambda g: np.nanmean(values[g], axis=0))
    return MergedSamples(mx, my, mv, sizes, order, int(np.sum(sizes > 1)))


def utm_epsg_for_lonlat(lon, lat):
    """EPSG code of the WGS 84 UTM zone holding (lon, lat): 326zz north, 327zz south.

    Longitudes wrap (180 = -180 -> zone 1). The Norway/Svalbard zone exceptions (32V, 31X-37X) are
    ignored: the standard 6-degree zone is always a valid projection there, only not the official one.
    """
    lon, lat = float(lon), float(lat)
    if not (math.isfinite(lon) and math.isfinite(lat) and abs(lat) <= 90 and abs(lon) <= 360):
        raise JanjaInputError(
            f"({lon:g}, {lat:g}) is not a longitude/latitude in degrees; the layer's coordinates look "
            "projected. Set the layer's CRS correctly, or give a projected kriging CRS."
        )
    lon = ((lon + 180.0) % 360.0) - 180.0
    zone = min(60, int((lon + 180.0) // 6.0) + 1)
    return (32600 if lat >= 0 else 32700) + zone


def summary_statistics(values, kinds=None):
    """Descriptive statistics of the usable values (after substitution) for the report; with the
    per-row `kinds` of a ParsedColumn it also says how many of them were really measured."""
    v = np.asarray(values, float)
    n_measured = None if kinds is None else int(np.sum(np.asarray(kinds) == MEASURED))
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"n": 0} if n_measured is None else {"n": 0, "n_measured": n_measured}
    q = np.percentile(v, [0, 25, 50, 75, 90, 95, 100])
    pos = v[v > 0]
    stats = {"n": int(v.size), "min": q[0], "p25": q[1], "median": q[2], "p75": q[3], "p90": q[4],
             "p95": q[5], "max": q[6], "mean": float(v.mean()),
             "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0}
    if pos.size > 1:
        lg = np.log10(pos)
        stats.update(mean_log10=float(lg.mean()), sd_log10=float(lg.std(ddof=1)))
    stats = {k: float(s) if k != "n" else s for k, s in stats.items()}
    if n_measured is not None:
        stats["n_measured"] = n_measured
    return stats
