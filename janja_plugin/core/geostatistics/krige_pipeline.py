"""The kriging job for several elements: parse censored values, merge duplicates, fit, krige, cross-validate.

Pure compute (no QGIS). The Processing algorithm reads the layer and writes the files; everything a
geologist needs to judge the result (counts, fit, cross-validation) is gathered here.
"""

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import JanjaInputError
from ..reporting import units
from ..reporting.classify import percentile_breaks
from ..reporting.report import HtmlReport
from ..reporting.svgplot import chart
from . import kriging, samples, survey_checks, variogram

GLOBAL_MAX_SAMPLES = 5000  # above this a global system is too slow/large: ask for a neighbourhood
MOSTLY_CENSORED = 0.8  # above this share of below-detection values a map is mostly substitutes: warn
OUT_OF_RANGE_SHARE = 0.01  # back-transformed cells beyond the sample range above this share: warn
AUTO = -1  # KrigeSettings.neighbours: choose by the number of samples (the default)
AUTO_GLOBAL_MAX = 500  # automatic: global kriging up to this many samples, AUTO_NEIGHBOURS nearest beyond
AUTO_NEIGHBOURS = 32  # measured (2 cores, 200 x 200 cells): global costs 2.5x this at 200 samples, 17x at 820


@dataclass
class KrigeSettings:
    transform: str = "log"  # "log" (lognormal OK, unbiased back-transform) or "none"
    model: str = "spherical"
    fit: str = "auto"  # "auto" (WLS, N/h^2) or "manual"
    nugget: float | None = None
    psill: float | None = None
    range: float | None = None
    n_lags: int = 15
    max_lag: float | None = None
    anisotropy_angle: float = 0.0
    anisotropy_ratio: float = 1.0
    neighbours: int = AUTO  # AUTO (-1) = by the number of samples (see neighbourhood), 0 = global
    search_radius: float | None = None
    substitution: str = "half_dl"
    dl_factor: float = 0.5
    duplicate_tolerance: float = 0.0
    # Censoring conventions of the survey: element -> stated detection limit (zeros, flag-only '<'),
    # and whether negative numbers are '<|v|' codes (None: only with the log transform; signed
    # variables such as clr scores are values).
    detection_limits: dict = field(default_factory=dict)
    negative_codes: bool | None = None

    def reads_negative_codes(self):
        return self.transform == "log" if self.negative_codes is None else bool(self.negative_codes)


@dataclass
class ElementResult:
    name: str
    counts: dict
    n_locations: int
    n_merged_groups: int
    stats: dict
    experimental: object  # variogram.ExperimentalVariogram; None when the model was given by hand
    fit: object
    prediction: np.ndarray
    variance: np.ndarray
    log_prediction: np.ndarray | None
    log_variance: np.ndarray | None
    cv: dict
    cv_summary: dict
    notes: list = field(default_factory=list)
    fit_se: dict | None = None  # standard errors of the fit from pair sampling (None: all pairs or manual)
    neighbourhood: str = ""  # the sentence the report gives
    # (breaks, labels) of the prediction and variance bands' percentile classes, from every finite cell
    # (MapStats: a pseudo-random sample beyond STYLE_SAMPLE_MAX cells); None when no map was made
    classes: dict | None = None


def default_cell_size(width, height, cells_across=200):
    """A round cell size giving about `cells_across` cells along the longer side."""
    raw = max(width, height) / cells_across
    if raw <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 2.5, 5, 10):
        if raw <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def neighbourhood(settings, n_samples):
    """(neighbours for kriging.ordinary_kriging, None = global; the sentence the report gives).

    Automatic (settings.neighbours == AUTO): all samples (global kriging) up to AUTO_GLOBAL_MAX
    samples, where it costs at most a few times a local neighbourhood; the AUTO_NEIGHBOURS nearest
    beyond, where the global system's cost grows with n per cell and gives practically the same map.
    """
    k = settings.neighbours
    radius = "" if settings.search_radius is None else f" within {settings.search_radius:g} m"
    if k == AUTO:
        if n_samples <= AUTO_GLOBAL_MAX and settings.search_radius is None:
            return None, (f"all samples (global kriging), chosen automatically for {n_samples:,} samples "
                          f"(global up to {AUTO_GLOBAL_MAX:,}, {AUTO_NEIGHBOURS} nearest beyond)")
        return AUTO_NEIGHBOURS, (f"{AUTO_NEIGHBOURS} nearest samples{radius}, chosen automatically for "
                                 f"{n_samples:,} samples (global up to {AUTO_GLOBAL_MAX:,})")
    if k is None or k < 0:
        raise JanjaInputError(f"The number of nearest samples per cell must be -1 (automatic), 0 (all "
                              f"samples) or a positive number (got {k}).")
    if k == 0:
        return None, f"all samples (global kriging){radius}, as set"
    return int(k), f"{k} nearest samples{radius}, as set"


def _check_settings(settings, n_samples):
    if settings.transform not in ("log", "none"):
        raise JanjaInputError(f"Unknown transform '{settings.transform}': use 'log' or 'none'.")
    neighbourhood(settings, n_samples)
    if settings.neighbours == 0 and settings.search_radius is None and n_samples > GLOBAL_MAX_SAMPLES:
        raise JanjaInputError(
            f"Global kriging with {n_samples:,} samples would solve a {n_samples + 1:,}-square system "
            f"(over {GLOBAL_MAX_SAMPLES:,} samples it is too slow and too large). Set 'Nearest samples "
            "per cell' to 32 (a local neighbourhood), which gives practically the same map."
        )


def prepare_element(name, x, y, raw, settings, flags=None):
    """Parse censored values, drop unusable ones, merge duplicate locations; returns x, y, z (data units).

    A field with no measured value is refused: its map would be a map of detection limits."""
    parsed = samples.parse_censored(raw, substitution=settings.substitution, factor=settings.dl_factor,
                                    column=name, flags=flags, negative_codes=settings.reads_negative_codes(),
                                    detection_limit=settings.detection_limits.get(name))
    if parsed.counts[samples.MEASURED] == 0:
        below = parsed.counts[samples.BELOW_DL] + parsed.counts[samples.ZERO]
        limits = np.unique(parsed.detection_limits[np.isfinite(parsed.detection_limits)])
        raise JanjaInputError(
            f"Element '{name}' has no measured value: {below} sample(s) are below detection"
            + (f" (limits {', '.join(f'{v:g}' for v in limits[:5])})" if limits.size else "")
            + (f" and {parsed.counts[samples.ABOVE_DL]} above the upper limit" if parsed.counts[samples.ABOVE_DL]
               else "")
            + ", so its map would only show detection limits. Leave this element out of FIELDS."
        )
    values = np.asarray(parsed.values, dtype=float)
    ok = np.isfinite(values)
    if settings.transform == "log":
        nonpositive = ok & (values <= 0)
        if nonpositive.any():
            raise JanjaInputError(
                f"Element '{name}': {int(nonpositive.sum())} value(s) are still zero or negative after "
                "censoring, so the log transform is impossible. Use 'half the detection limit' for "
                "below-detection values, or choose no transform."
            )
    merged = samples.merge_duplicates(x[ok], y[ok], values[ok][:, None], settings.duplicate_tolerance)
    mx, my, mz = merged.x, merged.y, merged.values[:, 0]
    if mz.size < 3:
        raise JanjaInputError(
            f"Element '{name}' has only {mz.size} usable sample location(s) (of {len(raw)} rows): kriging "
            "needs at least 3. Check the field holds this element's values and the missing-value codes."
        )
    if np.all(mz == mz[0]):
        raise JanjaInputError(
            f"All usable values of element '{name}' are equal ({mz[0]:g}): there is nothing to krige. "
            "Check the field, or whether censoring replaced every value by the same detection limit."
        )
    return parsed, merged, mx, my, mz


def fit_model(name, x, y, z_t, settings):
    """Experimental variogram and model (automatic WLS fit or the user's) on the transformed values.

    A model given by hand is used as it is: no experimental variogram is computed (ev is None), since
    at national-survey size that alone would cost more than the kriging.
    """
    if settings.fit == "manual":
        missing = [k for k in ("nugget", "psill", "range") if getattr(settings, k) is None]
        if missing:
            raise JanjaInputError(
                f"The manual variogram needs nugget, partial sill and range; {', '.join(missing)} "
                "not given. Give them (in the transformed units), or choose the automatic fit."
            )
        model = variogram.manual_variogram(settings.model, settings.nugget, settings.psill, settings.range,
                                           settings.anisotropy_angle, settings.anisotropy_ratio)
        return None, model
    ev = variogram.experimental_variogram(x, y, z_t, n_lags=settings.n_lags, max_lag=settings.max_lag,
                                          anisotropy_angle=settings.anisotropy_angle,
                                          anisotropy_ratio=settings.anisotropy_ratio)
    try:
        model = variogram.fit_variogram(ev, settings.model, settings.anisotropy_angle,
                                        settings.anisotropy_ratio)
    except JanjaInputError as exc:
        raise JanjaInputError(f"Element '{name}': {exc}") from exc
    return ev, model


def parse_element_map(text, what, elements):
    """'Zr_ppm=1, Th_ppm=0.5' -> {'Zr_ppm': '1', 'Th_ppm': '0.5'}; every name must be a chosen element."""
    out = {}
    for part in str(text or "").replace(";", ",").split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise JanjaInputError(
                f"The {what} must be written as field=value pairs separated by commas (e.g. Zr_ppm=1, "
                f"Th_ppm=0.5); '{part.strip()}' has no '='.")
        key, value = (t.strip() for t in part.split("=", 1))
        if key not in elements:
            raise JanjaInputError(
                f"'{key}' in the {what} is not one of the element fields being kriged "
                f"({', '.join(elements)}): use the element field names exactly.")
        out[key] = value
    return out


def detection_limits_from(text, elements):
    """Stated detection limits per element, from 'field=limit' pairs; each must be a positive number."""
    limits = {}
    for key, value in parse_element_map(text, "detection limits", elements).items():
        try:
            limit = float(value)
        except ValueError:
            limit = math.nan
        if not (math.isfinite(limit) and limit > 0):
            raise JanjaInputError(
                f"The stated detection limit of '{key}' must be a positive number in the field's units, "
                f"not '{value}'.")
        limits[key] = limit
    return limits


def flag_fields_for(text, elements, available):
    """Flag field of each element: 'value=flag' pairs, or a pattern with {field} (the whole field
    name) or {element} (its part before the first '_'), e.g. '{element}_511P_T' for GTK's tables."""
    text = str(text or "").strip()
    if not text:
        return {}
    if "{" in text:
        try:
            flags = {f: text.format(field=f, element=f.split("_")[0]) for f in elements}
        except (KeyError, IndexError, ValueError) as exc:
            raise JanjaInputError(
                f"The flag-field pattern '{text}' can only use {{field}} or {{element}} (e.g. "
                "'{element}_511P_T').") from exc
    else:
        flags = parse_element_map(text, "flag fields", elements)
    missing = [f"{e} -> {f}" for e, f in flags.items() if f not in available]
    if missing:
        raise JanjaInputError(
            f"The sample layer has no flag field for {', '.join(missing)}. Check the flag-field pattern or "
            "pairs against the layer's field names.")
    same = [e for e, f in flags.items() if e == f]
    if same:
        raise JanjaInputError(
            f"The flag field of '{same[0]}' is the element field itself; name the column that holds the "
            "'<' / '>' flags.")
    return flags


def censoring_warning(name, counts):
    """A sentence when more than MOSTLY_CENSORED of a field's values are below detection, else None."""
    n = sum(v for k, v in counts.items() if k not in (samples.MISSING, samples.UNPARSEABLE))
    below = counts[samples.BELOW_DL] + counts[samples.ZERO]
    if not n or below <= MOSTLY_CENSORED * n:
        return None
    return (f"Element '{name}' is {100.0 * below / n:.1f} % censored ({below} of {n} samples below detection): "
            "the map mostly interpolates substituted values; read it as detected / not detected, not as "
            "concentrations.")


def range_warning(name, prediction, z):
    """A sentence when more than OUT_OF_RANGE_SHARE of the back-transformed cells lie above the largest
    or below the smallest sample value (the sign of an inflated log variance), else None."""
    p = np.asarray(prediction, float)
    p = p[np.isfinite(p)]
    lo, hi = float(np.min(z)), float(np.max(z))
    return range_warning_from_counts(name, p.size, int(np.sum(p > hi)), int(np.sum(p < lo)), lo, hi)


def range_warning_from_counts(name, n, above, below, lo, hi):
    """range_warning from counts of finite cells (n), cells above hi and below lo: a streamed map's verdict."""
    if not n or above + below <= OUT_OF_RANGE_SHARE * n:
        return None
    return (f"Element '{name}': {above} of {n} cells ({100.0 * above / n:.1f} %) are above the largest "
            f"sample value ({hi:g}) and {below} ({100.0 * below / n:.1f} %) below the smallest ({lo:g}) after "
            "the lognormal back-transform. Check the below-detection values (zeros or '<' flags substituted by a "
            "tiny value inflate the log variance): give the flag field or the stated detection limit, or "
            "krige without the log transform.")


STYLE_SAMPLE_MAX = 1_000_000  # finite cells per band kept for the class breaks (16 MB); beyond, a hashed sample


@dataclass
class PreparedElement:
    """One element parsed, merged and fitted, ready to krige: what both kriging paths share."""

    name: str
    parsed: object
    merged: object
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray  # data units
    z_t: np.ndarray  # the kriged scale (ln z for the log transform)
    experimental: object
    fit: object
    fit_se: dict | None
    fit_notes: list  # the Gaussian nugget and range-at-the-bound notes, for the report
    warnings: list  # the censoring warning, given with the other notes after kriging
    neighbourhood: str


@dataclass
class PreparedRun:
    neighbours: int | None  # for kriging.ordinary_kriging (None = global)
    neighbourhood: str
    elements: list


def prepare_run(x, y, raw_columns, settings, grid, flags=None, log=print, warn=None):
    """Every check, parse and variogram fit of a kriging run, before any cell is kriged (a refusal comes at
    once, not after the first element's map); shared by krige_elements and the streamed kriging."""
    warn = warn or log
    flags = flags or {}
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    _check_settings(settings, x.size)
    survey_checks.check_extent_near_samples(x, y, grid)
    survey_checks.check_search_radius(x, y, settings.search_radius)
    k, how = neighbourhood(settings, x.size)
    log(f"Neighbourhood: {how}.")
    names = list(raw_columns)
    # every field is parsed and checked before the first is fitted: a refusal comes at once, not late
    parsed_all = {name: prepare_element(name, x, y, raw_columns[name], settings, flags.get(name)) for name in names}
    elements = []
    for name in names:
        parsed, merged, mx, my, mz = parsed_all[name]
        z_t = np.log(mz) if settings.transform == "log" else mz
        ev, model = fit_model(name, mx, my, z_t, settings)
        model, nugget_note = survey_checks.gaussian_nugget(model, log)
        bound_note = None if ev is None else survey_checks.range_bound_note(name, model, ev)
        if bound_note:
            warn(bound_note)
        fit_se = None if ev is None else variogram.fit_standard_errors(
            ev, settings.model, settings.anisotropy_angle, settings.anisotropy_ratio)
        log(f"{name}: experimental variogram: "
            f"{'not computed (variogram given by hand)' if ev is None else ev.describe()}.")
        elements.append(PreparedElement(
            name=name, parsed=parsed, merged=merged, x=mx, y=my, z=mz, z_t=z_t, experimental=ev, fit=model,
            fit_se=fit_se, fit_notes=[n for n in (nugget_note, bound_note) if n],
            warnings=[w for w in [censoring_warning(name, parsed.counts)] if w], neighbourhood=how))
    return PreparedRun(k, how, elements)


class _Decimated:
    """The finite values in arrival order whose hashed position has its top `level` bits zero, the level
    rising whenever more than `cap` are kept: all values (exact percentiles) up to cap, beyond it a
    pseudo-random half, quarter... (cap/2 to cap values; no aliasing with the grid's rows, unlike every
    s-th cell), the same whatever pieces the values come in. A sample also holds the exact smallest and
    largest value, so the outer class breaks (P0, P100) still enclose every cell."""

    def __init__(self, cap):
        self.cap, self.level, self.seen, self.kept = int(cap), 0, 0, 0
        self.lo, self.hi = np.inf, -np.inf
        self.parts = []  # (values, hashes)

    @staticmethod
    def _hash(positions):
        """splitmix64 of the positions (uint64 arithmetic wraps, as the algorithm needs)."""
        z = positions.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))

    def _keep(self, h):
        return h >> np.uint64(64 - self.level) == 0 if self.level else np.ones(h.size, bool)

    def add(self, values):
        v = np.asarray(values, float).ravel()
        v = v[np.isfinite(v)]
        if v.size:
            self.lo, self.hi = min(self.lo, float(v.min())), max(self.hi, float(v.max()))
        h = self._hash(self.seen + np.arange(v.size, dtype=np.int64))
        self.seen += v.size
        keep = self._keep(h)
        self.parts.append((v[keep], h[keep]))
        self.kept += int(np.count_nonzero(keep))
        while self.kept > self.cap:
            self.level += 1
            v, h = (np.concatenate(p) for p in zip(*self.parts))
            keep = self._keep(h)
            self.parts = [(v[keep], h[keep])]
            self.kept = int(np.count_nonzero(keep))

    def values(self):
        kept = [p[0] for p in self.parts] + ([np.array([self.lo, self.hi])] if self.level else [])
        return np.concatenate(kept) if kept else np.empty(0)


class MapStats:
    """Running counts over one element's kriged cells (inside the mask), fed at once or tile by tile: the
    whole-map verdicts (all nodata, values far outside the data, lognormal overflow, cells beyond the
    sample range, nodata count) and the class breaks then agree for a held and a streamed map."""

    def __init__(self, element, lognormal):
        self.element = element
        self.lognormal = lognormal
        self.lo, self.hi = float(np.min(element.z)), float(np.max(element.z))
        self.cells = self.missing = self.outside = self.overflow = 0
        self.finite = self.above = self.below = 0
        self.worst = None
        self.samples = {"prediction": _Decimated(STYLE_SAMPLE_MAX), "variance": _Decimated(STYLE_SAMPLE_MAX)}

    def add(self, prediction, variance, log_prediction=None):
        """Cells inside the mask: prediction (data units), variance (of the kriged scale), ln prediction."""
        p = np.asarray(prediction, float).ravel()
        t = p if not self.lognormal else np.asarray(log_prediction, float).ravel()
        self.cells += t.size
        self.missing += int(np.count_nonzero(np.isnan(t)))
        n_bad, worst = survey_checks.outside_data_range(self.element.z_t, t)
        self.outside += n_bad
        if n_bad and (self.worst is None or _magnitude(worst) > _magnitude(self.worst)):
            self.worst = worst  # the first of the largest, as over the whole map at once
        if self.lognormal:
            self.overflow += int(np.count_nonzero(~np.isfinite(p[np.isfinite(t)])))
        finite = p[np.isfinite(p)]
        self.finite += finite.size
        self.above += int(np.count_nonzero(finite > self.hi))
        self.below += int(np.count_nonzero(finite < self.lo))
        self.samples["prediction"].add(p)
        self.samples["variance"].add(variance)

    def refuse_unusable(self, settings):
        """The refusals of a finished map, in the order a geologist should fix them."""
        name = self.element.name
        if self.cells and self.missing >= self.cells:
            raise JanjaInputError(
                f"Element '{name}': no cell has a sample within the search radius of {settings.search_radius:g} m, "
                "so the map would be all nodata. Give a larger search radius, or 0 for no limit.")
        survey_checks.refuse_outside_range(
            name, self.element.z_t, self.outside, self.worst,
            "natural log of the values" if self.lognormal else "data units")
        if self.overflow:
            raise JanjaInputError(
                f"Element '{name}': the lognormal back-transform overflowed (kriging variances too large for "
                "exp()): the variogram does not suit these data. Add a nugget, use the spherical or exponential "
                "model, or choose no transform.")

    def warnings(self):
        """The cells-beyond-the-sample-range sentence (lognormal maps), as range_warning gives it."""
        if not self.lognormal:
            return []
        w = range_warning_from_counts(self.element.name, self.finite, self.above, self.below, self.lo, self.hi)
        return [w] if w else []

    def classes(self, transform):
        """Percentile class breaks and labels of the prediction and variance bands (style_classes)."""
        label, unit, var_label, var_unit = layer_names(self.element.name, transform)
        return {"prediction": style_classes(self.samples["prediction"].values(), unit),
                "variance": style_classes(self.samples["variance"].values(), var_unit)}


def _magnitude(v):
    return abs(float(np.nan_to_num(v, posinf=1e308, neginf=-1e308)))


def element_result(el, stats, cv, settings, warn, **maps):
    """The ElementResult of a kriged element and its notes (warned as they are made); `maps` are the
    whole-grid arrays (prediction, variance, log_prediction, log_variance) or nothing when streamed."""
    notes = [f"{el.name}: {w}" for w in el.parsed.warnings] + el.warnings + stats.warnings()
    for note in notes:
        warn(note)
    notes += el.fit_notes
    if stats.missing:
        notes.append(f"WARNING: {el.name}: {stats.missing} of {stats.cells} cell(s) "
                     f"({100.0 * stats.missing / stats.cells:.3g} %) had too few samples within the search "
                     "radius and are nodata; a larger radius fills them.")
        warn(notes[-1])
    arrays = {k: maps.get(k) for k in ("prediction", "variance", "log_prediction", "log_variance")}
    return ElementResult(
        name=el.name, counts=dict(el.parsed.counts), n_locations=int(el.z.size),
        n_merged_groups=int(el.merged.n_merged_groups), stats=samples.summary_statistics(el.parsed.values),
        experimental=el.experimental, fit=el.fit, **arrays,
        cv={"x": cv.x, "y": cv.y, "observed": cv.observed, "predicted": cv.predicted,
            "variance": cv.variance, "residual": cv.residual, "zscore": cv.zscore,
            "n_merged": np.asarray(el.merged.group_sizes, float)},
        cv_summary=cv.summary(), notes=notes, fit_se=el.fit_se, neighbourhood=el.neighbourhood,
        classes=stats.classes(settings.transform),
    )


def krige_elements(x, y, raw_columns, settings, grid, inside=None, progress=None, log=print, flags=None,
                   warn=None, scheduler=None):
    """Krige every element of `raw_columns` (name -> raw values) onto `grid`, holding the whole grids.

    inside: optional boolean (nrows, ncols) mask; cells outside are NaN. progress(fraction) -> True
    cancels (kriging.KrigingCancelled). flags: optional name -> flag column ('<', '>'). warn: where
    warnings go (default: log); they are also kept in each result's notes for the report.
    janja:krige streams instead (tiled_kriging.krige_elements_to_files, the same checks and values).
    scheduler: a Dask scheduler address (or Client) whose workers solve the same chunks (distributed_kriging).
    """
    warn = warn or log
    run = prepare_run(x, y, raw_columns, settings, grid, flags, log, warn)
    engine = kriging
    if scheduler is not None and not (isinstance(scheduler, str) and not scheduler.strip()):
        from .distributed_kriging import RemoteKriging

        engine = RemoteKriging(scheduler)
    cx, cy = grid.cell_centres()
    cells = np.ones(cx.size, bool) if inside is None else np.asarray(inside, bool).ravel()
    kwargs = {"neighbours": run.neighbours, "search_radius": settings.search_radius}
    lognormal = settings.transform == "log"
    results = []
    for i, el in enumerate(run.elements):
        def part(fraction, i=i):
            return progress((i + fraction) / len(run.elements)) if progress else False

        pred = np.full(cx.size, np.nan)
        var = np.full(cx.size, np.nan)
        log_pred = log_var = None
        stats = MapStats(el, lognormal)
        if lognormal:
            r = engine.lognormal_kriging(el.x, el.y, el.z, cx[cells], cy[cells], el.fit, progress=part, **kwargs)
            log_pred, log_var = pred.copy(), var.copy()
            pred[cells], log_pred[cells], log_var[cells] = r.prediction, r.log_prediction, r.log_variance
            var = log_var
            stats.add(r.prediction, r.log_variance, r.log_prediction)
            log_pred = log_pred.reshape(grid.nrows, grid.ncols)
            log_var = log_var.reshape(grid.nrows, grid.ncols)
        else:
            r = engine.ordinary_kriging(el.x, el.y, el.z, cx[cells], cy[cells], el.fit, progress=part, **kwargs)
            pred[cells], var[cells] = r.prediction, r.variance
            stats.add(r.prediction, r.variance)
        stats.refuse_unusable(settings)
        cv = kriging.cross_validate(el.x, el.y, el.z_t, el.fit, neighbours=run.neighbours,
                                    search_radius=settings.search_radius)
        result = element_result(el, stats, cv, settings, warn, prediction=pred.reshape(grid.nrows, grid.ncols),
                                variance=var.reshape(grid.nrows, grid.ncols), log_prediction=log_pred,
                                log_variance=log_var)
        log(summary_line(result))
        results.append(result)
    return results


def summary_line(r):
    c = ", ".join(f"{k} {v}" for k, v in r.counts.items() if v)
    f = r.fit
    return (f"{r.name}: {r.n_locations} locations ({c}); {f.model} nugget {units.number(f.nugget, 4)}, partial "
            f"sill {units.number(f.psill, 4)}, range {units.distance(f.range)}; LOO RMSE "
            f"{units.number(r.cv_summary['rmse'], 4)}, MSSE {units.number(r.cv_summary['mean_squared_zscore'], 3)}")


def style_classes(band, unit=None):
    """Percentile class breaks and legend labels with the unit ('P90–P95: 12.5–31 ppb') for a band."""
    breaks, pcts = percentile_breaks(band)
    suffix = f" {unit}" if unit else ""
    labels = [f"P{pcts[i]}–P{pcts[i + 1]}: {units.number(breaks[i])}–{units.number(breaks[i + 1])}{suffix}"
              for i in range(len(breaks) - 1)]
    return breaks, labels


def layer_names(name, transform):
    """Map layer names for an element's prediction and variance bands: 'Au (ppb)', 'Au variance (ln ppb)²'."""
    element, unit = units.element_and_unit(name)
    label = units.element_label(name)
    if transform == "log":
        variance = f"{element} kriging variance (of ln values, unitless)"
        variance_unit = "(ln units)²"
    else:
        variance = f"{element} kriging variance ({unit}²)" if unit else f"{element} kriging variance"
        variance_unit = f"{unit}²" if unit else None
    return label, unit, variance, variance_unit


def stack_tags(results, settings):
    """GeoTIFF metadata recording how each band was made (for provenance and the classifier)."""
    tags = {"JANJA_SETTINGS": str(asdict(settings))}
    if results and results[0].neighbourhood:
        tags["JANJA_NEIGHBOURHOOD"] = results[0].neighbourhood  # what 'automatic' resolved to
    for r in results:
        tags[f"JANJA_VARIOGRAM_{r.name}"] = str(r.fit.to_dict())
    return tags


def write_report(results, settings, path, crs_name, grid):
    """The HTML kriging report: per element counts, statistics, variogram, fit and cross-validation."""
    scale = "natural log of the values" if settings.transform == "log" else "data units"
    rep = HtmlReport("Kriging report")
    rep.paragraph(
        f"Ordinary kriging ({'lognormal, unbiased back-transform' if settings.transform == 'log' else 'no transform'}) "
        f"in {crs_name}; grid {grid.ncols} × {grid.nrows} cells of {grid.cell:g} m; neighbourhood: "
        f"{results[0].neighbourhood if results else ''}; below-detection "
        f"values: {settings.substitution.replace('_', ' ')}"
        f"{f' (factor {settings.dl_factor:g})' if settings.substitution == 'dl_factor' else ''}; negative numbers "
        f"{'are below-detection codes' if settings.reads_negative_codes() else 'and zeros are values (signed)'}"
        + "".join(f"; {k}: stated detection limit {v:g}" for k, v in settings.detection_limits.items()) + "."
    )
    rep.heading("Summary")
    rep.table(
        ["element", "locations", "merged groups", "model", "nugget", "partial sill", "range",
         "LOO mean error", "LOO RMSE", "LOO MSSE"],
        [[units.element_label(r.name), r.n_locations, r.n_merged_groups, r.fit.model, r.fit.nugget, r.fit.psill,
          units.distance(r.fit.range), r.cv_summary["mean_error"], r.cv_summary["rmse"],
          r.cv_summary["mean_squared_zscore"]]
         for r in results],
    )
    rep.paragraph(f"Variogram and cross-validation figures are on the {scale}. MSSE (mean squared "
                  "standardised error) near 1 means the kriging variance describes the errors well.", "note")
    for r in results:
        rep.heading(units.element_label(r.name))
        rep.table(["value kind", "count"], [[k, v] for k, v in r.counts.items()])
        unit = units.element_and_unit(r.name)[1]
        no_unit = ("n", "n_measured", "mean_log10", "sd_log10")
        rep.table(["statistic", "value"],
                  [[k, v if k in no_unit or not isinstance(v, float) else units.concentration(v, unit, 4)]
                   for k, v in r.stats.items()])
        ev, f = r.experimental, r.fit
        h = np.linspace(0, ev.cutoff if ev is not None else 2.0 * max(f.range, 1.0), 100)
        curves = [] if ev is None else [{"x": ev.dist, "y": ev.gamma, "label": "experimental"}]
        vario = chart(
            curves + [{"x": h[1:], "y": f(h[1:]), "style": "line", "label": f"{f.model} model"}],
            title=f"{r.name} variogram", xlabel="lag distance (m)", ylabel=f"semivariance ({scale})")
        cv = r.cv
        lo = float(np.nanmin([cv["observed"].min(), cv["predicted"].min()]))
        hi = float(np.nanmax([cv["observed"].max(), cv["predicted"].max()]))
        scatter = chart(
            [{"x": cv["observed"], "y": cv["predicted"], "label": "samples"},
             {"x": [lo, hi], "y": [lo, hi], "style": "line", "label": "1:1", "colour": "#777777"}],
            title=f"{r.name} leave-one-out", xlabel=f"observed ({scale})", ylabel=f"predicted ({scale})")
        rep.charts([vario, scatter])
        fit_rows = [["method", f.method], ["model", f.model], ["nugget", f.nugget], ["partial sill", f.psill],
                    ["range", units.distance(f.range)], ["anisotropy angle (° from north)", f.anisotropy_angle],
                    ["anisotropy ratio", f.anisotropy_ratio],
                    ["weighted SSE (N/h²)", f.weighted_sse if f.weighted_sse is not None else "n/a"]]
        rep.table(["variogram", ""], fit_rows)
        if f.method != "manual":
            rep.paragraph(
                "How this fit differs from gstat's fit.variogram: the same weighted least squares "
                "(weights N_j/h_j²), but nugget and partial sill are solved exactly for each range and the "
                "range is searched globally, so no starting values are needed; gstat iterates from starting "
                "values and may stop at a local minimum. On Meuse log(zinc) both give nugget 0.0507, partial "
                "sill 0.5906, range 897 m (ours 897.006, weighted SSE lower by 1.5 × 10⁻⁹).", "note")
        if ev is None:
            rep.paragraph("Experimental variogram: not computed, because the variogram was given by hand.",
                          "note")
        else:
            rep.paragraph(f"Experimental variogram: {ev.describe()}.", "note")
            if ev.sampled:
                rep.paragraph(
                    "Beyond about 4,000 locations the all-pairs table costs over a second and grows with the "
                    "square of the number of samples, so it is estimated from uniformly random pairs (the "
                    "same pairs for every run with this seed). Each lag's value is an unbiased estimate of "
                    "the all-pairs one; its standard error (SE) is in the table below. Pair sampling moves "
                    "the fitted model by about one SE: "
                    + (f"range SE {r.fit_se['range']:.4g} m ({100 * r.fit_se['range'] / f.range:.2g} %), sill "
                       f"SE {r.fit_se['sill']:.4g} ({100 * r.fit_se['sill'] / f.sill:.2g} %), nugget SE "
                       f"{r.fit_se['nugget']:.4g}, from {r.fit_se['batches']} independent batches of the pairs."
                       if r.fit_se else "its standard errors could not be estimated (batch fits failed).")
                    + " The estimator's stated tolerance is 2 % on the fitted range and sill against the all-"
                    "pairs fit (measured at 50,000 samples: range 0.6-0.9 %, sill 0.01-0.3 %).",
                    "note")
                rep.table(["experimental variogram: sampled pairs", "distance (m)", "semivariance", "SE"],
                          [[int(n), float(d), float(g), float(e)]
                           for n, d, g, e in zip(ev.np, ev.dist, ev.gamma, ev.gamma_se)])
            else:
                rep.table(["experimental variogram: pairs", "distance (m)", "semivariance"],
                          [[int(n), float(d), float(g)] for n, d, g in zip(ev.np, ev.dist, ev.gamma)])
        rep.table(["cross-validation", ""], [[k, v] for k, v in r.cv_summary.items()])
        for note in r.notes:
            rep.paragraph(note, "note")
    rep.write(path)
    return path
