"""Is this stack what the model was trained on? The out-of-distribution guard of every learned map.

A model only knows the value ranges it was trained on. Run on a survey of another sample medium
(soils, rock chips, a different laboratory) its inputs can lie many standard deviations away, and
the network then answers one constant value everywhere (measured: probability 1 in every cell of a
soil survey, 2.3e-6 in every cell of a rock-chip survey). So, before inference, each element's
card-transformed values (e.g. log10 ppm, before standardisation) are compared with the training
survey's, recorded on the card as percentiles (`training_data.input_quantiles`); and, after
inference, a map with no spread is flagged as constant.

Rules, written down once:
- A stack cell is *outside* for an element when its transformed value lies below the training 1st
  or above the 99th percentile. On the training survey itself that is 2 % of the cells.
- WARN_OUTSIDE (10 %) of the cells outside for any element: the run warns.
- MAX_OUTSIDE (25 %) outside for any element: the run is refused unless the user asks for
  extrapolation, and then every output is marked as extrapolation.
- Cards without recorded percentiles (exported before this field existed) are checked against
  the per-element mean and standard deviation they always carried, taking mean ± 2.326 SD as the
  1–99 % range of a normal distribution, with a warning that the check is approximate.
- A map is constant when its 0.1st and 99.9th percentiles differ by less than CONSTANT_SPREAD:
  such a map ranks nothing, so it yields no classes and no target areas.
"""

from dataclasses import dataclass, field

import numpy as np

from ..errors import JanjaInputError

QUANTILE_PERCENT = (0, 1, 5, 25, 50, 75, 95, 99, 100)
WARN_OUTSIDE = 0.10
MAX_OUTSIDE = 0.25
CONSTANT_SPREAD = 0.01
NORMAL_Z99 = 2.326  # the 99th percentile of a standard normal
MAX_CELLS_READ = 1_000_000  # a systematic subsample of rows keeps the check fast on national grids


def transformed(values, element):
    """The card transform without standardisation: f(value + offset); NaN where missing or not loggable."""
    v = np.asarray(values, dtype=np.float64) + element.offset
    with np.errstate(divide="ignore", invalid="ignore"):
        if element.transform == "log10":
            return np.where(v > 0, np.log10(np.where(v > 0, v, 1)), np.nan)
        if element.transform == "ln":
            return np.where(v > 0, np.log(np.where(v > 0, v, 1)), np.nan)
    return np.where(np.isfinite(v), v, np.nan)


def input_quantiles(columns, elements):
    """The card field `training_data.input_quantiles` for `columns` (one array of raw values per element)."""
    values = {}
    for col, e in zip(columns, elements):
        t = transformed(col, e)
        t = t[np.isfinite(t)]
        if t.size == 0:
            raise JanjaInputError(f"The training stack has no valid value of {e.name}: its percentiles are undefined.")
        values[e.name] = [float(q) for q in np.percentile(t, QUANTILE_PERCENT)]
    return {"percent": list(QUANTILE_PERCENT), "values": values}


def read_columns(stack, bands, mask=None):
    """Raw values of `bands` over the stack's cells (rows subsampled beyond MAX_CELLS_READ), NaN = nodata."""
    step = max(1, int(np.ceil(stack.nrows * stack.ncols / MAX_CELLS_READ)))
    rows = range(0, stack.nrows, step)
    out = [[] for _ in bands]
    for r in rows:
        block = stack.read(r, r + 1, bands)[:, 0, :]
        if mask is not None:
            block = block[:, np.asarray(mask[r], bool)]
        for i in range(len(bands)):
            out[i].append(block[i])
    return [np.concatenate(c) if c else np.empty(0) for c in out]


@dataclass
class ElementCheck:
    name: str
    unit: str
    transform: str
    n_cells: int
    fraction_outside: float  # share of the stack's cells outside the training 1-99 % range
    training_range: tuple  # (p1, p99) of the training survey, transformed units
    stack_range: tuple  # (p1, p99) of this stack, transformed units
    training_median: float
    stack_median: float
    shift_sd: float  # (stack median - training median) / training SD


@dataclass
class DistributionCheck:
    elements: list
    source: str  # "percentiles" (card training_data) or "mean_sd" (older card: normal approximation)
    warn_outside: float = WARN_OUTSIDE
    max_outside: float = MAX_OUTSIDE
    notes: list = field(default_factory=list)

    @property
    def worst(self):
        return max(self.elements, key=lambda e: e.fraction_outside)

    @property
    def out_of_distribution(self):
        return self.worst.fraction_outside > self.max_outside

    @property
    def warning(self):
        return self.worst.fraction_outside > self.warn_outside

    def element_sentences(self, only_flagged=True):
        out = []
        for e in self.elements:
            if only_flagged and e.fraction_outside <= self.warn_outside:
                continue
            unit = f"{e.transform} {e.unit}" if e.transform != "none" else e.unit
            out.append(
                f"{e.name}: {100 * e.fraction_outside:.0f} % of the cells lie outside the training 1–99 % range "
                f"{e.training_range[0]:.3g} to {e.training_range[1]:.3g} ({unit}); this stack spans "
                f"{e.stack_range[0]:.3g} to {e.stack_range[1]:.3g}, median {e.stack_median:.3g} against the "
                f"training median {e.training_median:.3g} ({e.shift_sd:+.1f} SD)"
            )
        return out

    def refusal(self, model_name):
        flagged = [e.name for e in self.elements if e.fraction_outside > self.max_outside]
        return (
            f"This stack lies outside what the model '{model_name}' was trained on, in {', '.join(flagged)} "
            f"(more than {100 * self.max_outside:.0f} % of the cells outside the training 1–99 % range): "
            + "; ".join(self.element_sentences()) + ". A model run this far from its training data gives "
            "maps that mean nothing (often one value everywhere). Retrain a model on this survey "
            "(python -m janja_plugin.training, see the README), or run anyway with the option 'Extrapolate "
            "beyond the training data', which marks every output as extrapolation."
        )

    def table_rows(self):
        return [[e.name, f"{100 * e.fraction_outside:.1f} %", f"{e.training_range[0]:.3g} – {e.training_range[1]:.3g}",
                 f"{e.stack_range[0]:.3g} – {e.stack_range[1]:.3g}", f"{e.shift_sd:+.1f}"] for e in self.elements]


def training_quantiles(card):
    """{element: (percent array, value array)} from the card, or None when the card does not record them."""
    data = (card.raw.get("training_data") or {}).get("input_quantiles")
    if not data:
        return None
    pct = np.asarray(data["percent"], float)
    return {name: (pct, np.asarray(v, float)) for name, v in data["values"].items()}


def check_distribution(card, columns):
    """Compare the stack's columns (raw values, card element order) with the card's training distribution."""
    recorded = training_quantiles(card)
    source = "percentiles" if recorded and all(e.name in recorded for e in card.elements) else "mean_sd"
    checks = []
    for col, e in zip(columns, card.elements):
        t = transformed(col, e)
        t = t[np.isfinite(t)]
        if source == "percentiles":
            pct, q = recorded[e.name]
            lo, hi, med = (float(np.interp(p, pct, q)) for p in (1.0, 99.0, 50.0))
        else:
            lo, hi, med = e.mean - NORMAL_Z99 * e.std, e.mean + NORMAL_Z99 * e.std, e.mean
        if t.size == 0:
            checks.append(ElementCheck(e.name, e.unit, e.transform, 0, 0.0, (lo, hi), (np.nan, np.nan), med,
                                       np.nan, 0.0))
            continue
        outside = float(np.mean((t < lo) | (t > hi)))
        s_lo, s_med, s_hi = (float(v) for v in np.percentile(t, (1, 50, 99)))
        checks.append(ElementCheck(e.name, e.unit, e.transform, int(t.size), outside, (lo, hi), (s_lo, s_hi), med,
                                   s_med, (s_med - med) / e.std))
    result = DistributionCheck(checks, source)
    if source == "mean_sd":
        result.notes.append(
            f"The card of '{card.name}' does not record its training percentiles (card field "
            "training_data.input_quantiles); the stack was checked against the training mean ± 2.3 SD "
            "of each element instead, which assumes a normal distribution. Re-export the model to record them."
        )
    return result


def guard(card, columns, extrapolate=False):
    """The check, refusing (JanjaInputError) an out-of-distribution stack unless `extrapolate`."""
    check = check_distribution(card, columns)
    if check.out_of_distribution and not extrapolate:
        raise JanjaInputError(check.refusal(card.name))
    if check.out_of_distribution:
        check.notes.insert(0, "EXTRAPOLATION: " + "; ".join(check.element_sentences())
                           + ". Run with 'Extrapolate beyond the training data': every output is marked as "
                           "extrapolation and should not be used to choose targets.")
    elif check.warning:
        check.notes.insert(0, "Warning, partly outside the training data: " + "; ".join(check.element_sentences())
                           + ". Read the map with care where these values occur.")
    return check


def constant_map(values):
    """(is_constant, spread): True when the map's 0.1st–99.9th percentile spread is below CONSTANT_SPREAD."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return True, 0.0
    lo, hi = np.percentile(v, (0.1, 99.9))
    spread = float(hi - lo)
    return spread < CONSTANT_SPREAD, spread


def constant_note(spread, low, high):
    return (
        f"CONSTANT MAP: the output barely varies (0.1–99.9 % spread {spread:.2g}, from {low:.3g} to {high:.3g}), so "
        "it ranks no area above another. No classes and no target areas were made. This usually means the stack "
        "is far from the model's training data; use the kriged target element's map instead, or retrain."
    )


WARNING_PREFIXES = ("CONSTANT MAP", "EXTRAPOLATION", "Warning")


def is_warning(note):
    return note.startswith(WARNING_PREFIXES)


def report_heading(report, title, result):
    """A learned map's report section opens with what must be read first: extrapolation, a constant map."""
    report.heading(title + (" — EXTRAPOLATION" if result.extrapolated else "")
                   + (" — CONSTANT MAP" if result.constant else ""))
    for note in result.notes:
        if is_warning(note):
            report.paragraph(note, css_class="warning")


def report_table(report, check):
    if check is not None:
        report.table(["Element", "Cells outside training 1–99 %", "Training 1–99 % (transformed)",
                      "This stack 1–99 %", "Median shift (training SD)"], check.table_rows())
