"""Conventional anomaly thresholds: mean + k·SD, median + k·MAD, Tukey's fence, percentiles.

Geochemical data are right-skewed and roughly lognormal, so the statistical methods work on log10
values by default and convert the thresholds back to data units; a geologist reads '35 ppm', not
'1.54'. Every method returns the same small object, so the map, the table and the report treat them
alike: class 0 is background, class i means 'at or above the i-th threshold', NaN is class -1.

Censored values (`censored`: a mask of the rows whose value is a substitute for 'below detection')
are background by construction: the statistics use the measured values only, and a censored row is
class 0 whatever its substituted value, so a threshold that equals a detection limit (MAD = 0 on a
mostly censored field) can never call non-detects anomalous. Percentiles keep their usual meaning
(a share of all samples), with the non-detects ranked lowest; a percentile that falls among them is
refused rather than guessed. Fewer than MIN_MEASURED measured values beside censored ones is refused.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import JanjaInputError

MAD_SCALE = 1.4826  # makes the MAD a consistent estimate of the SD for normal data
DEFAULT_K = (1.0, 2.0, 3.0)
DEFAULT_PERCENTILES = (75.0, 90.0, 95.0, 98.0)
METHODS = ("mean_sd", "median_mad", "tukey", "percentile")
MIN_VALUES = 3  # a spread needs a few values
MIN_MEASURED = 10  # when some values are censored: fewer detections than this give no usable threshold
_CLASS_NAMES = {
    1: ["background", "anomalous"],
    2: ["background", "possibly anomalous", "anomalous"],
    3: ["background", "possibly anomalous", "anomalous", "strongly anomalous"],
    4: ["background", "upper background", "possibly anomalous", "anomalous", "strongly anomalous"],
}


def class_names(n_thresholds):
    """Ordered class names for n thresholds (n + 1 classes)."""
    if n_thresholds in _CLASS_NAMES:
        return list(_CLASS_NAMES[n_thresholds])
    return ["background"] + [f"anomalous class {i}" for i in range(1, n_thresholds + 1)]


def classify_by_thresholds(values, thresholds, censored=None):
    """Class per value: 0 below the first threshold, i at or above the i-th one; NaN gives -1;
    rows flagged in `censored` (below detection) are 0, background, whatever their substitute."""
    v = np.asarray(values, dtype=float)
    t = np.asarray(thresholds, dtype=float)
    out = np.searchsorted(t, v, side="right").astype(np.int32)
    if censored is not None:
        out[_mask(censored, v.shape)] = 0
    out[~np.isfinite(v)] = -1
    return out


def _mask(censored, shape):
    c = np.asarray(censored, dtype=bool)
    if c.shape != tuple(shape):
        raise JanjaInputError(
            f"The below-detection mask has {c.size} entries but there are {int(np.prod(shape))} values; "
            "they must come from the same samples.")
    return c


def measured_mask(values, censored=None):
    """Rows with a finite, measured (not substituted) value."""
    v = np.asarray(values, dtype=float).ravel()
    ok = np.isfinite(v)
    if censored is not None:
        ok &= ~_mask(censored, np.shape(values)).ravel()
    return ok


def censoring_note(values, censored):
    """'n of N samples below detection are background (class 0)' or '' when nothing is censored."""
    if censored is None:
        return ""
    v = np.asarray(values, dtype=float).ravel()
    c = _mask(censored, np.shape(values)).ravel() & np.isfinite(v)
    n = int(np.isfinite(v).sum())
    if not c.any():
        return f"None of the {n} samples is below detection."
    return (f"{int(c.sum())} of the {n} samples ({100.0 * c.sum() / n:.1f} %) are below detection: the "
            f"thresholds come from the {n - int(c.sum())} measured values, and every below-detection sample "
            "is background (class 0).")


@dataclass
class Thresholds:
    """Thresholds of one method, in data units and ascending, with the class each interval gets."""

    method: str
    thresholds: np.ndarray  # ascending, data units
    threshold_names: list  # e.g. ['mean + 1 SD', ...], one per threshold
    labels: list  # class names, len(thresholds) + 1; labels[0] == 'background'
    log10: bool  # whether the statistics were computed on log10 values
    parameters: dict = field(default_factory=dict)  # centre, spread, n ... for the report

    def classify(self, values, censored=None):
        """Integer class per value (0 = background, -1 = NaN, censored rows 0), shape of `values`."""
        return classify_by_thresholds(values, self.thresholds, censored)

    def table_rows(self):
        """(class, label, from, to) rows for a report or a legend."""
        bounds = [-np.inf] + [float(t) for t in self.thresholds] + [np.inf]
        return [(i, self.labels[i], bounds[i], bounds[i + 1]) for i in range(len(self.labels))]


def _too_few(method, n_ok, n_censored):
    if n_censored:
        if n_ok < MIN_MEASURED:
            raise JanjaInputError(
                f"The {method} threshold uses measured values only, but only {n_ok} sample(s) are measured and "
                f"{n_censored} are below detection; it needs at least {MIN_MEASURED}. Below-detection samples "
                "are background by construction, and too few are measured to set a threshold: choose an element "
                "with more detections, or a laboratory method with a lower detection limit."
            )
    elif n_ok < MIN_VALUES:
        raise JanjaInputError(
            f"The {method} threshold needs at least {MIN_VALUES} valid values but got {n_ok}. "
            "Check the field or band you chose and its missing-value codes."
        )


def _valid(values, log10, method, censored=None):
    v = np.asarray(values, dtype=float).ravel()
    ok = measured_mask(values, censored)
    n_censored = int(np.sum(np.isfinite(v) & ~ok))
    v = v[ok]
    _too_few(method, v.size, n_censored)
    if log10:
        bad = int(np.sum(v <= 0))
        if bad:
            raise JanjaInputError(
                f"The {method} threshold works on log10 values, but {bad} of the {v.size} values are zero or "
                "negative (below-detection codes?). Substitute censored values first (e.g. half the detection "
                "limit), or switch the log transform off."
            )
        v = np.log10(v)
    return v, n_censored


def _back(x, log10):
    return 10.0 ** np.asarray(x, float) if log10 else np.asarray(x, float)


def _make(method, centre, spread, ks, log10, centre_name, spread_name, n, n_censored=0):
    ks = sorted(float(k) for k in ks)
    t = _back([centre + k * spread for k in ks], log10)
    names = [f"{centre_name} + {k:g} {spread_name}" for k in ks]
    params = {"n": n, "centre": float(_back(centre, log10)), f"{spread_name}{' (log10)' if log10 else ''}": spread}
    if n_censored:
        params["n below detection (background)"] = n_censored
    return Thresholds(method, np.asarray(t), names, class_names(len(ks)), log10, params)


def mean_sd_thresholds(values, k=DEFAULT_K, log10=True, censored=None):
    """Mean + k·SD (sample SD), on log10 values by default: the classic 'background + 2 sigma' rule.
    `censored` marks below-detection rows, left out of the statistics (see the module note)."""
    v, nc = _valid(values, log10, "mean + k·SD", censored)
    return _make("mean_sd", float(v.mean()), float(v.std(ddof=1)), k, log10, "mean", "SD", v.size, nc)


def median_mad_thresholds(values, k=DEFAULT_K, log10=True, censored=None):
    """Median + k·MAD (MAD x 1.4826): robust, so the anomalies themselves do not inflate the spread."""
    v, nc = _valid(values, log10, "median + k·MAD", censored)
    med = float(np.median(v))
    mad = MAD_SCALE * float(np.median(np.abs(v - med)))
    return _make("median_mad", med, mad, k, log10, "median", "MAD", v.size, nc)


def tukey_thresholds(values, fences=(1.5,), log10=True, censored=None):
    """Tukey's upper fence Q3 + f·IQR (f = 1.5 by default; add 3.0 for the 'far out' fence)."""
    v, nc = _valid(values, log10, "Tukey fence", censored)
    q1, q3 = (float(q) for q in np.percentile(v, [25, 75]))
    iqr = q3 - q1
    fences = sorted(float(f) for f in fences)
    t = _back([q3 + f * iqr for f in fences], log10)
    names = [f"Q3 + {f:g} IQR" for f in fences]
    params = {"n": v.size, "Q1": float(_back(q1, log10)), "Q3": float(_back(q3, log10)),
              "IQR" + (" (log10)" if log10 else ""): iqr}
    if nc:
        params["n below detection (background)"] = nc
    return Thresholds("tukey", np.asarray(t), names, class_names(len(fences)), log10, params)


def percentile_thresholds(values, percentiles=DEFAULT_PERCENTILES, censored=None):
    """Percentiles of all samples (no transform needed: percentiles commute with log), numpy's
    linear rule; below-detection samples rank lowest, and a percentile among them is refused."""
    p = sorted(float(q) for q in percentiles)
    if p[0] <= 0 or p[-1] >= 100:
        raise JanjaInputError(f"Percentiles must lie strictly between 0 and 100, not {p}.")
    v = np.asarray(values, dtype=float).ravel()
    ok = measured_mask(values, censored)
    n_censored = int(np.sum(np.isfinite(v) & ~ok))
    m = np.sort(v[ok])
    _too_few("percentile", m.size, n_censored)
    n = m.size + n_censored
    pos = (n - 1) * np.asarray(p) / 100.0
    low = pos < n_censored
    if low.any():
        share = 100.0 * n_censored / n
        lowest = math.ceil(1000.0 * n_censored / (n - 1)) / 10.0  # smallest p whose rank is measured
        raise JanjaInputError(
            f"Percentile P{p[int(np.argmax(low))]:g} falls among the below-detection samples ({n_censored} of "
            f"{n}, {share:.1f} %, are below detection, so their order is unknown). Ask for percentiles of at "
            f"least {lowest:g}, or use median + k·MAD, which uses the measured values only."
        )
    t = np.interp(pos - n_censored, np.arange(m.size), m)
    names = [f"P{q:g}" for q in p]
    params = {"n": int(n)}
    if n_censored:
        params["n below detection (background)"] = n_censored
    return Thresholds("percentile", np.asarray(t, float), names, class_names(len(p)), False, params)


def all_thresholds(values, k=DEFAULT_K, percentiles=DEFAULT_PERCENTILES, log10=True, censored=None):
    """Every method on the same values, for a side-by-side table; log methods need positive values."""
    return {
        "mean_sd": mean_sd_thresholds(values, k, log10, censored),
        "median_mad": median_mad_thresholds(values, k, log10, censored),
        "tukey": tukey_thresholds(values, log10=log10, censored=censored),
        "percentile": percentile_thresholds(values, percentiles, censored),
    }


def report_title(element=""):
    """'Anomaly thresholds — Au (ppm)': the report's title, the one place that names it."""
    from ..reporting.units import element_label

    return f"Anomaly thresholds{f' — {element_label(element)}' if element else ''}"


def report_section(report, results, element="", values=None, censored=None):
    """Add a thresholds table (one row per threshold of every method) and a histogram-like chart;
    with `censored`, say how many samples were below detection and that they are background.
    No heading of its own: the report's title (report_title) names it once."""
    from ..reporting.svgplot import chart
    from ..reporting.units import element_and_unit, element_label

    unit = element_and_unit(element)[1] if element else None
    element = element_label(element) if element else element
    if values is not None and censored is not None:
        report.paragraph(censoring_note(values, censored), "note")
    measured = None if values is None else np.asarray(values, float).ravel()[measured_mask(values, censored)]
    rows = []
    for res in results.values():
        for name, t, label in zip(res.threshold_names, res.thresholds, res.labels[1:]):
            n_above = int(np.sum(measured >= t)) if measured is not None else ""
            rows.append((res.method, name + (" (log10)" if res.log10 else ""), float(t), label, n_above))
    report.table(["method", "threshold", f"value ({unit})" if unit else "value", "class from here", "n at or above"],
                 rows)
    if values is not None:
        v = np.sort(np.asarray(values, float).ravel())
        v = v[np.isfinite(v) & (v > 0)]
        if v.size:
            share = 100.0 * (1.0 - np.arange(v.size) / v.size)
            series = [{"x": v, "y": share, "label": "values", "style": "line"}]
            for i, res in enumerate(results.values()):
                for t in res.thresholds:
                    series.append({"x": [t, t], "y": [share.min(), 100], "style": "line",
                                   "label": res.method if t == res.thresholds[0] else "",
                                   "colour": ["#d7191c", "#1a9641", "#fdae61", "#7b3294"][i % 4]})
            report.charts([chart(series, title="Share of values at or above", xlabel=element or "value",
                                 ylabel="% of values", logx=True, logy=True)])
