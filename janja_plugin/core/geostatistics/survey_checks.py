"""Checks that stop a kriging run from producing a plausible-looking but meaningless map.

Each one catches a case seen on real surveys where the numbers were computed correctly but the
result was nonsense: a map of a place 1000 km from the samples, a search radius that finds no
sample, a Gaussian model that extrapolates to 1e38, a fitted range that is only the search's limit.
"""

import math

import numpy as np

from ..errors import JanjaInputError

# The usual jitter for a Gaussian model without nugget: a nugget of this fraction of the sill makes
# the system well conditioned (condition number below n / fraction) and changes the map negligibly.
GAUSSIAN_MIN_NUGGET_FRACTION = 1e-4
# A kriged value outside [min - k * spread, max + k * spread] of the data is numerical breakdown,
# not extrapolation (ordinary kriging weights sum to 1, so predictions stay near the data range).
OUTSIDE_RANGE_SPREADS = 1.0


def central_longitude(lons):
    """Centre of a set of longitudes that may straddle ±180° (circular mean), in [-180, 180)."""
    rad = np.radians(np.asarray(lons, float))
    rad = rad[np.isfinite(rad)]
    if rad.size == 0:
        raise JanjaInputError("The sample layer has no point with usable coordinates.")
    centre = math.degrees(math.atan2(np.sin(rad).mean(), np.cos(rad).mean()))
    return ((centre + 180.0) % 360.0) - 180.0


def nearest_spacing(x, y):
    """Median distance from each sample to its nearest other sample (metres)."""
    from scipy.spatial import cKDTree

    pts = np.column_stack([x, y])
    if len(pts) < 2:
        return 0.0
    d, _ = cKDTree(pts).query(pts, k=2)
    return float(np.median(d[:, 1]))


def check_extent_near_samples(x, y, grid):
    """Refuse an output extent that lies farther from every sample than the survey is wide."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    sx0, sx1, sy0, sy1 = x.min(), x.max(), y.min(), y.max()
    dx = max(grid.xmin - sx1, sx0 - grid.xmax, 0.0)
    dy = max(grid.ymin - sy1, sy0 - grid.ymax, 0.0)
    gap = math.hypot(dx, dy)
    size = max(math.hypot(sx1 - sx0, sy1 - sy0), grid.cell)
    if gap > size:
        raise JanjaInputError(
            f"The output extent lies {gap / 1000:.3g} km from the nearest sample, farther than the survey "
            f"is wide ({size / 1000:.3g} km): every cell would get the same value. Check the extent and its "
            "CRS, or leave the extent empty to map the samples' area.")


def check_search_radius(x, y, radius):
    """Refuse a search radius smaller than the typical distance between neighbouring samples."""
    if radius is None:
        return
    spacing = nearest_spacing(x, y)
    if radius < spacing:
        raise JanjaInputError(
            f"The search radius ({radius:g} m) is smaller than the typical distance between neighbouring "
            f"samples ({spacing:.4g} m, the median nearest-sample distance): most cells would find no "
            f"sample and be nodata. Give a radius of at least {3 * spacing:.3g} m, or 0 for no limit.")


def gaussian_nugget(model, log):
    """A Gaussian model without (enough) nugget gets the usual tiny one, and the log says so."""
    if model.model != "gaussian":
        return model, None
    floor = GAUSSIAN_MIN_NUGGET_FRACTION * (model.nugget + model.psill)
    if model.nugget >= floor:
        return model, None
    from dataclasses import replace

    note = (f"The Gaussian model had nugget {model.nugget:.3g}, which makes the kriging system numerically "
            f"singular (predictions explode far from the data); a nugget of {floor:.3g} "
            f"({GAUSSIAN_MIN_NUGGET_FRACTION:g} of the sill) was added, as is usual. Give a larger nugget "
            "yourself, or use the spherical or exponential model, to choose otherwise.")
    log(note)
    return replace(model, nugget=floor), note


def range_bound_note(name, model, ev):
    """A warning when the automatic fit put the range at the edge of its search (not a real optimum)."""
    if model.method == "manual" or not model.bounded or model.model == "power" or model.range <= 0:
        return None
    lo, hi = ev.cutoff / 100.0, 3.0 * ev.cutoff
    if model.range >= hi * (1 - 1e-3):
        return (f"WARNING: {name}: the fitted range ({model.range:.4g} m) is the largest the automatic fit "
                f"searches (3 × the maximum lag of {ev.cutoff:.4g} m): the variogram does not level off "
                "within the data, so the range is not determined. Look at the variogram plot; try a larger "
                "maximum lag, a linear or power model, or give the model by hand.")
    if model.range <= lo * (1 + 1e-3):
        return (f"WARNING: {name}: the fitted range ({model.range:.4g} m) is the smallest the automatic fit "
                f"searches (1/100 of the maximum lag of {ev.cutoff:.4g} m): the values look spatially random "
                "at this sample spacing. Look at the variogram plot, or give the model by hand.")
    return None


def outside_data_range(z, pred):
    """(cells far outside the data z, the farthest of them or None): NaN (nodata) is not counted.

    Counted per tile by the streamed kriging, so the refusal below is the same for a held or a
    streamed map."""
    z = np.asarray(z, float)
    pred = np.asarray(pred, float)
    lo, hi = float(np.min(z)), float(np.max(z))
    spread = hi - lo
    bad = ~np.isfinite(pred) | (pred < lo - OUTSIDE_RANGE_SPREADS * spread) | \
        (pred > hi + OUTSIDE_RANGE_SPREADS * spread)
    bad &= ~np.isnan(pred)  # NaN = nodata (outside mask or search radius), counted elsewhere
    if not bad.any():
        return 0, None
    worst = pred[bad][np.argmax(np.abs(np.nan_to_num(pred[bad], posinf=1e308, neginf=-1e308)))]
    return int(bad.sum()), float(worst)


def refuse_outside_range(name, z, n_bad, worst, scale):
    """Refuse a map with n_bad cells far outside the data (numerical breakdown, never extrapolation)."""
    if not n_bad:
        return
    lo, hi = float(np.min(z)), float(np.max(z))
    raise JanjaInputError(
        f"Element '{name}': {n_bad} cell(s) were kriged to values far outside the data "
        f"(up to {worst:.3g} against data from {lo:.4g} to {hi:.4g}, {scale}): the kriging system is "
        "numerically unstable. Nothing was written. Add a nugget to the variogram, use the spherical or "
        "exponential model, or merge near-duplicate samples.")


def check_prediction_range(name, z, pred, scale):
    """Refuse a map whose values lie far outside the data (numerical breakdown, never extrapolation)."""
    refuse_outside_range(name, z, *outside_data_range(z, pred), scale)
