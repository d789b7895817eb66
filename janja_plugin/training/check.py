"""Training checks itself first: `python -m janja_plugin.training check --config ...` and the first step of `train`.

A run extracts features for tens of minutes before it learns anything, so everything that can be known
from the stack, the deposits and the samples alone is settled here, in seconds: the distances and block
size the run will use (scaled with the survey when the config leaves them out), the positive and negative
windows, the deposits in every fold of every split the run will make, and the negatives the sample protocol
would draw. A config that cannot work is refused naming the key and a value that does work, computed from
the survey (not guessed). The baselines the learned map has to beat are computed here too (baselines.py).
"""

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import JanjaInputError
from . import dataset as ds
from .logistic import DENSE_C_GRID, SMOOTH_SPACINGS

# Scaled defaults, in units of the survey's resolution r = max(cell size, sample spacing), rounded to two
# significant digits. A window centred within 1.5 sample spacings of a deposit has its signature at hand.
POSITIVE_WITHIN_R = 1.5
NEGATIVE_BEYOND_R = 6.0
BLOCK_SIZE_R = 20.0
BLOCK_MIN_WINDOWS = 2.0  # and a block spans at least two windows, so held-out windows barely touch training ones
# The protocol's minimum negative distance, as the benchmark's scripts set it per area (../shared/data/README.md).
PROTOCOL_KM_MAX, PROTOCOL_KM_MIN, PROTOCOL_KM_PER_SPACING = 5.0, 0.1, 8.0

MIN_NEGATIVE_CELLS = 50  # negative windows a run needs at the least (training and validation of every fold)
MIN_FOLD_NEGATIVES = 5  # negatives in each validation fold (an AUC needs both classes)
MIN_PROTOCOL_NEGATIVES = 10  # samples the protocol can draw negatives from


def sample_spacing(x, y):
    """Median distance from each distinct sample location to its nearest other one (map units), or None.

    Repeated rows at one location (duplicates, re-analyses) are one location: they would give distance 0.
    """
    from scipy.spatial import cKDTree

    xy = np.unique(np.column_stack([np.asarray(x, float), np.asarray(y, float)]), axis=0)
    xy = xy[np.isfinite(xy).all(axis=1)]
    if len(xy) < 2:
        return None
    d, _ = cKDTree(xy).query(xy, k=2)
    return float(np.median(d[:, 1]))


def protocol_distance_km(spacing_m):
    """The benchmark's per-area minimum distance: min(5 km, max(0.1 km, 8 x sample spacing))."""
    return float(min(PROTOCOL_KM_MAX, max(PROTOCOL_KM_MIN, PROTOCOL_KM_PER_SPACING * spacing_m / 1000.0)))


def nice_down(v):
    """v rounded down to two significant digits (a value a person can type and that stays on the safe side)."""
    if not v > 0 or not math.isfinite(v):
        return 0.0
    step = 10.0 ** (math.floor(math.log10(v)) - 1)
    return float(math.floor(v / step + 1e-9) * step)


def nice_round(v):
    """v to two significant digits (scaled defaults read as a person would write them)."""
    if not v > 0 or not math.isfinite(v):
        return 0.0
    step = 10.0 ** (math.floor(math.log10(v)) - 1)
    return float(round(v / step) * step)


def nice_up(v):
    if not v > 0 or not math.isfinite(v):
        return 0.0
    step = 10.0 ** (math.floor(math.log10(v)) - 1)
    return float(math.ceil(v / step - 1e-9) * step)


@dataclass
class Survey:
    """What the run reads, read once: the stack, deposits and samples in the stack's CRS."""

    stack: ds.Stack
    dep_x: np.ndarray
    dep_y: np.ndarray
    samples: dict | None  # x, y, cells, n_outside of the samples inside the stack
    spacing: float | None  # median nearest-neighbour distance between distinct sample locations (m)


@dataclass
class CheckResult:
    cfg: object  # the config with every scaled default filled in
    survey: Survey
    used: dict  # key -> {"value": ..., "why": "..."}
    labels: ds.Labels
    centre_ok: np.ndarray
    folds: np.ndarray  # the hyperparameter-search split (seed cfg.seed)
    fold_deposits: list  # per split: deposits per fold
    fold_negatives: list
    protocol: dict | None  # eligible negatives, minimum distance, draws
    lines: list = field(default_factory=list)
    baselines: dict = field(default_factory=dict)

    def text(self):
        return "\n".join(self.lines)


def read_survey(cfg):
    from pathlib import Path

    for key in ("stack", "deposits", "samples"):
        path = getattr(cfg, key)
        if path and not Path(path).exists():
            raise JanjaInputError(f"The config's '{key}' file {path} does not exist (paths in a config are relative to "
                                  "the config file itself): fix the path or make the file first.")
    stack = ds.read_stack(cfg.stack)
    if stack.crs_wkt:
        from rasterio.crs import CRS

        if CRS.from_wkt(stack.crs_wkt).is_geographic:
            raise JanjaInputError(f"The stack {cfg.stack} is in longitude/latitude degrees; training measures "
                                  "distances in metres: krige it in a projected CRS (janja:krige's CRS parameter).")
    dep_x, dep_y = ds.read_points(cfg.deposits, stack.crs_wkt, cfg.deposits_layer)
    samples, spacing = None, None
    if cfg.samples and not stack.crs_wkt:
        raise JanjaInputError(f"The stack {cfg.stack} has no CRS, so the samples cannot be placed on it for the "
                              "sample protocol: assign the stack its CRS (janja:krige writes it) or leave 'samples' "
                              "out.")
    if cfg.samples:
        sx, sy = ds.read_points(cfg.samples, stack.crs_wkt, cfg.samples_layer)
        sr, sc = stack.cell_of(sx, sy)
        inside = (sr >= 0) & (sr < stack.shape[0]) & (sc >= 0) & (sc < stack.shape[1])
        if not inside.any():
            raise JanjaInputError(
                f"None of the {len(sx)} samples in {cfg.samples} falls inside the stack {cfg.stack}: check that "
                "both cover the same area and that the sample layer's CRS is right (config key 'samples').")
        samples = {"x": sx[inside], "y": sy[inside], "cells": (sr[inside], sc[inside]),
                   "n_outside": int((~inside).sum()), "inside": inside}
        spacing = sample_spacing(samples["x"], samples["y"])
    return Survey(stack, dep_x, dep_y, samples, spacing)


def scaled_defaults(cfg, cell, spacing):
    """{key: (value, why)} for the distance keys the config leaves out (None)."""
    r = max(cell, spacing or 0.0)
    basis = (f"the survey's resolution r = {r:.0f} m (" +
             (f"sample spacing {spacing:.0f} m, cell size {cell:g} m; the coarser of the two" if spacing
              else "the cell size; no samples given") + ")")
    out = {}
    if cfg.positive_within is None:
        out["positive_within"] = (nice_round(POSITIVE_WITHIN_R * r), f"{POSITIVE_WITHIN_R:g} x {basis}")
    if cfg.negative_beyond is None:
        out["negative_beyond"] = (nice_round(NEGATIVE_BEYOND_R * r), f"{NEGATIVE_BEYOND_R:g} x r")
    if cfg.block_size is None:
        by_r = BLOCK_SIZE_R * r
        by_w = BLOCK_MIN_WINDOWS * cfg.window_pixels * cell
        out["block_size"] = (nice_round(max(by_r, by_w)), f"{BLOCK_SIZE_R:g} x r" if by_r >= by_w else
                             f"{BLOCK_MIN_WINDOWS:g} windows of {cfg.window_pixels} cells of {cell:g} m "
                             f"(more than {BLOCK_SIZE_R:g} x r = {by_r:g} m)")
    if cfg.protocol_min_distance_km is None:
        if spacing:
            out["protocol_min_distance_km"] = (protocol_distance_km(spacing), (
                f"the benchmark's per-area rule min(5 km, max(0.1 km, 8 x sample spacing {spacing:.0f} m))"))
        else:
            out["protocol_min_distance_km"] = (None, "no samples given: the sample protocol is not run")
    return out


def split_seeds(cfg):
    """Seeds of every block split the run makes: the search split, then one per repeat."""
    return [cfg.seed] + [cfg.seed + 100 + r for r in range(cfg.repeats)]


def fold_tally(stack, labels, dep_x, dep_y, block, k, seeds):
    """(deposits per fold, negatives per fold) for each seed, or the JanjaInputError text of a failed split."""
    deposits, negatives = [], []
    for s in seeds:
        try:
            folds = ds.spatial_block_folds(stack, labels, dep_x, dep_y, block, k, s)
        except JanjaInputError as exc:
            return None, None, str(exc)
        pos = labels.y == 1
        deposits.append([int(np.unique(labels.nearest_deposit[pos & (folds == f)]).size) for f in range(k)])
        negatives.append([int((~pos & (folds == f)).sum()) for f in range(k)])
    return deposits, negatives, None


def folds_fit(deposits, negatives):
    return deposits is not None and all(min(d) >= 1 for d in deposits) and all(
        min(n) >= MIN_FOLD_NEGATIVES for n in negatives)


def working_block_size(stack, labels, dep_x, dep_y, start, k, seeds, floor):
    """The largest block size (two significant digits) from `start` down to `floor` (one window: smaller blocks
    would let a held-out window overlap training windows) that leaves deposits and negatives in every fold of
    every split, or None."""
    v = nice_down(start)
    floor = max(floor, 1.0)
    while v >= floor:
        d, n, _ = fold_tally(stack, labels, dep_x, dep_y, v, k, seeds)
        if folds_fit(d, n):
            return v
        v = nice_down(v * 0.85)
    return None


def protocol_distances_km(stack, sx, sy, dep_x, dep_y):
    """Great-circle distance (km) of every sample to its nearest deposit, as the protocol measures it."""
    from rasterio.warp import transform as warp

    from ..core.evaluation.evaluate import distances_km

    lon, lat = warp(stack.crs_wkt, "EPSG:4326", list(sx), list(sy))
    dlon, dlat = warp(stack.crs_wkt, "EPSG:4326", list(dep_x), list(dep_y))
    return distances_km(dlon, dlat, lon, lat, True).min(axis=0)


def check_head_features(cfg):
    """A head fit on shared-trunk features needs what only the window path has to be left out, said up front."""
    if cfg.head_features not in ("window", "dense"):
        raise JanjaInputError(f"head_features must be \"window\" or \"dense\", not {cfg.head_features!r}.")
    if cfg.head_features != "dense":
        return
    if True in cfg.variants_gan:
        raise JanjaInputError("head_features \"dense\" cannot use GAN positives: a GAN makes lone windows, whose "
                              "features are per-window ones, not the shared-trunk features the head must read. Set "
                              "variants_gan to [false].")
    if cfg.finetune_blocks > 0:
        raise JanjaInputError("head_features \"dense\" keeps the trunk frozen (its feature map is computed once): "
                              "set finetune_blocks to 0.")
    if cfg.input_size % cfg.window_pixels:
        raise JanjaInputError(f"head_features \"dense\" needs input_size to be a whole multiple of window_pixels "
                              f"(the stack is resized as one image): {cfg.input_size} is not a multiple of "
                              f"{cfg.window_pixels}; e.g. set input_size to "
                              f"{-(-cfg.input_size // cfg.window_pixels) * cfg.window_pixels}.")


def _numbers(key, values, positive):
    """The config list `key` as floats, or a sentence refusing it (empty, not numbers, negative or zero)."""
    what = "positive numbers" if positive else "numbers >= 0"
    if not isinstance(values, (list, tuple)) or not values:
        raise JanjaInputError(f"{key} must be a non-empty list of {what}, not {values!r}.")
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
           or (v <= 0 if positive else v < 0)]
    if bad:
        raise JanjaInputError(f"{key} must hold {what} only; {bad} cannot be used: e.g. "
                              f"{list(SMOOTH_SPACINGS) if key == 'map_smoothing_spacings' else list(DENSE_C_GRID)}.")
    return [float(v) for v in values]


def check_dense_head(cfg):
    """dense_head "logistic" needs the shared-trunk features and one subset; its grids must be usable numbers."""
    if cfg.dense_head not in ("mlp", "logistic"):
        raise JanjaInputError(f"dense_head must be \"mlp\" or \"logistic\", not {cfg.dense_head!r}.")
    spacings = _numbers("map_smoothing_spacings", cfg.map_smoothing_spacings, positive=False)
    c_grid = _numbers("logistic_c", cfg.logistic_c, positive=True)
    if cfg.dense_head != "logistic":
        return cfg
    if cfg.head_features != "dense":
        raise JanjaInputError("dense_head \"logistic\" is fit on the shared-trunk features over the whole stack: set "
                              "head_features to \"dense\" as well (or dense_head to \"mlp\").")
    if cfg.folds < 3:
        raise JanjaInputError(f"dense_head \"logistic\" chooses C and the smoothing inside each fold's training folds "
                              f"by a split of at least 2 folds, so it needs folds of at least 3, not {cfg.folds}.")
    if len(cfg.subsets) > 1 and not cfg.bundle_subset:
        raise JanjaInputError(f"dense_head \"logistic\" trains one model on one element subset, and the config "
                              f"lists {len(cfg.subsets)}: name it in bundle_subset (e.g. {cfg.subsets[0]}) or list "
                              "only that subset.")
    if cfg.bundle_subset and list(cfg.bundle_subset) not in [list(s) for s in cfg.subsets]:
        raise JanjaInputError(f"bundle_subset {cfg.bundle_subset} is not one of the config's subsets "
                              f"{cfg.subsets}: name one of them.")
    return dataclasses.replace(cfg, map_smoothing_spacings=spacings, logistic_c=c_grid)


def check(cfg, survey=None):
    """Settle the run's settings and refuse, before any feature extraction, a config that cannot work.

    Returns a CheckResult (its `cfg` has every scaled default filled in; `used` says what and why).
    """
    if cfg.window_pixels % 2 == 0:
        raise JanjaInputError(f"window_pixels must be odd, not {cfg.window_pixels}: set it to "
                              f"{cfg.window_pixels + 1}.")
    if cfg.input_size < 75:
        raise JanjaInputError(f"Inception-v3 needs an input of at least 75 x 75 pixels: set input_size to 75, "
                              f"not {cfg.input_size}.")
    if cfg.folds < 2:
        raise JanjaInputError(f"folds must be at least 2 (one to train, one to validate), not {cfg.folds}.")
    check_head_features(cfg)
    cfg = check_dense_head(cfg)
    survey = survey or read_survey(cfg)
    if cfg.dense_head == "logistic" and survey.spacing is None and any(s > 0 for s in cfg.map_smoothing_spacings):
        raise JanjaInputError("map_smoothing_spacings are in sample spacings, and no sample spacing is known (no "
                              "'samples' layer, or fewer than two sample locations): give the samples or set "
                              "map_smoothing_spacings to [0].")
    stack, dep_x, dep_y = survey.stack, survey.dep_x, survey.dep_y
    if len(dep_x) == 0:
        raise JanjaInputError(f"No deposit points were read from {cfg.deposits} (config key 'deposits'"
                              + (f", layer '{cfg.deposits_layer}'" if cfg.deposits_layer else "")
                              + "): supervised training needs known deposits.")
    auto = scaled_defaults(cfg, stack.cell, survey.spacing)
    rule = {k: v for k, (v, _) in scaled_defaults(dataclasses.replace(
        cfg, positive_within=None, negative_beyond=None, block_size=None, protocol_min_distance_km=None),
        stack.cell, survey.spacing).items()}  # what the scaled defaults would be: tried first as a fix
    window_m = cfg.window_pixels * stack.cell
    target_given = bool(cfg.target_element)
    target = cfg.target_element or cfg.subsets[0][0]
    if target not in stack.names:
        raise JanjaInputError(f"target_element '{target}' is not a band of {cfg.stack}; its bands are {stack.names}: "
                              "set target_element to one of them.")
    cfg = dataclasses.replace(cfg, target_element=target, **{k: v for k, (v, _) in auto.items()})
    used = {k: {"value": getattr(cfg, k), "why": "set in the config"} for k in
            ("positive_within", "negative_beyond", "block_size", "protocol_min_distance_km", "folds")}
    for k, (v, why) in auto.items():
        used[k] = {"value": v, "why": "not in the config: " + why}
    used["target_element"] = {"value": target, "why": "set in the config" if target_given else
                              "not in the config: the first element of the first subset"}
    problems = []  # (key, sentence with a working value, value): refused together

    def settle(key, sentence, value):
        """A value the config gave is refused with a working one; a scaled default is replaced by it, and said."""
        if key in auto:
            used[key] = {"value": value, "why": used[key]["why"] + f"; then set to {value:g} because "
                                                                   f"{sentence.split('; ')[0].split(' = ', 1)[-1]}"}
        else:
            problems.append((key, sentence, value))

    all_elements = []
    for subset in cfg.subsets:
        all_elements += [e for e in subset if e not in all_elements]
    sub = stack.select(all_elements)  # a clear error if a band is missing
    specs = ds.element_specs(sub, cfg.units)
    _, centre_ok = ds.transformed_stack(sub, specs)
    rows, cols = np.nonzero(centre_ok)
    if rows.size == 0:
        raise JanjaInputError(f"No cell of {cfg.stack} has every element of {all_elements}: nothing to train on.")
    from scipy.spatial import cKDTree

    cx, cy = stack.cell_centres(rows, cols)
    dist_cell, _ = cKDTree(np.column_stack([dep_x, dep_y])).query(np.column_stack([cx, cy]))
    dist_dep, _ = cKDTree(np.column_stack([cx, cy])).query(np.column_stack([dep_x, dep_y]))

    # positives: a positive window near at least `folds` deposits (every fold needs one)
    pw, nb = cfg.positive_within, cfg.negative_beyond
    reached = np.sort(dist_dep)
    if (dist_dep <= pw).sum() < cfg.folds:
        if reached.size < cfg.folds or not np.isfinite(reached[cfg.folds - 1]):
            raise JanjaInputError(f"Only {reached.size} deposits: {cfg.folds} folds need at least one each; "
                                  f"set folds to {max(2, reached.size)} or give more deposits.")
        need = nice_up(max(reached[cfg.folds - 1], stack.cell / 2))
        if reached[cfg.folds - 1] > 3 * stack.cell * cfg.window_pixels:
            raise JanjaInputError(
                f"Only {(dist_dep <= 3 * stack.cell * cfg.window_pixels).sum()} of the {len(dep_x)} deposits lie "
                f"on or near cells with data in {cfg.stack}: check that the deposits ({cfg.deposits}) cover the "
                "stack and that their CRS is right.")
        settle("positive_within", f"positive_within = {pw:g} m leaves only {(dist_dep <= pw).sum()} "
                                  f"deposit(s) with a positive window, fewer than the {cfg.folds} folds; "
                                  f"{need:g} m reaches {(dist_dep <= need).sum()}", need)
        pw = need
    if nb < pw:
        settle("negative_beyond", f"negative_beyond = {nb:g} m is below positive_within = {pw:g} m; "
                                  f"it must be at least that, e.g. {4 * pw:g} m", 4 * pw)
        nb = 4 * pw
    n_neg = int((dist_cell > nb).sum())
    want_neg = max(MIN_NEGATIVE_CELLS, cfg.folds * MIN_FOLD_NEGATIVES)
    if n_neg < want_neg:
        far = np.sort(dist_cell)[::-1]
        rpw, rnb = rule["positive_within"], rule["negative_beyond"]
        if rnb < nb and (dist_cell > rnb).sum() >= want_neg and (
                rnb >= pw or (rpw <= pw and (dist_dep <= rpw).sum() >= cfg.folds)):
            # the scaled defaults work: the safest fix (negatives all over the survey, not in one far corner)
            ok = rnb
            if rnb < pw:
                settle("positive_within", f"positive_within = {pw:g} m leaves no room for negatives on this "
                                          f"survey; {rpw:g} m (the scaled default) does", rpw)
                pw = rpw
        else:
            ok = nice_down(far[want_neg - 1]) if far.size >= want_neg else 0.0
            if ok > 0 and (dist_cell > ok).sum() < want_neg:  # rounding met a tie; step below it
                ok = nice_down(ok * 0.99)
        if ok >= pw:
            settle("negative_beyond", f"negative_beyond = {nb:g} m leaves {n_neg} negative cells (too few "
                                      f"cells with data lie that far from every deposit); {ok:g} m leaves "
                                      f"{(dist_cell > ok).sum()}", ok)
            nb = ok
        else:
            pw2 = nice_down(ok / 4) if ok > 0 else 0.0
            raise JanjaInputError(
                f"negative_beyond = {cfg.negative_beyond:g} m leaves {n_neg} negative cells and the survey is too "
                f"small for any negative beyond positive_within = {pw:g} m: set positive_within to {pw2:g} and "
                f"negative_beyond to {ok:g} (m), or train on a larger stack.")
    # the labels and the blocks with the distances that work
    labels = ds.label_cells(stack, centre_ok, dep_x, dep_y, pw, nb, cfg.max_negatives, cfg.target_element,
                            cfg.negative_percentile, cfg.seed)
    if labels.counts["negative_used"] < want_neg:
        raise JanjaInputError(
            f"Only {labels.counts['negative_used']} negative cells are left"
            + (f" after the negative_percentile rule ({cfg.negative_percentile:g} % of {cfg.target_element})"
               if cfg.negative_percentile is not None else "")
            + f"; a run needs {want_neg}: raise negative_percentile, lower negative_beyond or raise max_negatives.")
    seeds = split_seeds(cfg)
    fd, fn, err = fold_tally(stack, labels, dep_x, dep_y, cfg.block_size, cfg.folds, seeds)
    if not folds_fit(fd, fn):
        what = err or ("a fold with no deposit" if fd and any(min(d) < 1 for d in fd) else
                       f"a fold with fewer than {MIN_FOLD_NEGATIVES} negative cells")
        ok = working_block_size(stack, labels, dep_x, dep_y, cfg.block_size, cfg.folds, seeds, window_m)
        if ok is not None:
            settle("block_size", f"block_size = {cfg.block_size:g} m gives {what} in one of the "
                                 f"{len(seeds)} splits (the survey is {stack.shape[1] * stack.cell:g} x "
                                 f"{stack.shape[0] * stack.cell:g} m); {ok:g} m fills every fold", ok)
            fd, fn, _ = fold_tally(stack, labels, dep_x, dep_y, ok, cfg.folds, seeds)
        else:
            k_ok = next((k for k in range(cfg.folds - 1, 1, -1) if working_block_size(
                stack, labels, dep_x, dep_y, cfg.block_size, k, seeds, window_m) is not None), None)
            if k_ok is None:
                raise JanjaInputError(
                    f"The {labels.counts['deposits_with_positive_cells']} deposits with positive windows cannot be "
                    f"spread over even 2 folds of spatial blocks with deposits and negatives in each: give more "
                    "deposits or a larger stack.")
            b_ok = working_block_size(stack, labels, dep_x, dep_y, cfg.block_size, k_ok, seeds, window_m)
            problems.append(("folds", f"folds = {cfg.folds} cannot be filled with deposits by any block size; "
                                      f"folds = {k_ok} can (with block_size {b_ok:g} m)", k_ok))
            fd = fn = None
    # the protocol's negatives
    protocol = None
    if survey.samples is not None:
        dkm = protocol_distances_km(stack, survey.samples["x"], survey.samples["y"], dep_x, dep_y)
        md = cfg.protocol_min_distance_km
        eligible = int((dkm >= md).sum())
        want = min(MIN_PROTOCOL_NEGATIVES, dkm.size)
        if eligible < want:
            far = np.sort(dkm)[::-1]
            rule_km = rule["protocol_min_distance_km"]
            if rule_km is not None and rule_km < md and (dkm >= rule_km).sum() >= want:
                ok = rule_km  # the benchmark's per-area rule works
            else:
                ok = nice_down(far[want - 1])
                if (dkm >= ok).sum() < want:
                    ok = nice_down(ok * 0.99)
            settle("protocol_min_distance_km", f"protocol_min_distance_km = {md:g} leaves {eligible} samples "
                                               f"that far from every deposit to draw negatives from (the farthest "
                                               f"lies {far[0]:.2f} km from a deposit); {ok:g} leaves "
                                               f"{(dkm >= ok).sum()}", ok)
            md, eligible = ok, int((dkm >= ok).sum())
        protocol = {"min_distance_km": md, "eligible_negatives": eligible, "samples": int(dkm.size),
                    "samples_outside_stack": survey.samples["n_outside"], "deposits": int(len(dep_x)),
                    "draws": 20, "negatives_per_draw": int(len(dep_x))}
    if problems:
        raise JanjaInputError(
            "The training config cannot work on this survey, found before any feature extraction: "
            + "; ".join(p[1] for p in problems) + ". Set " + ", ".join(f"\"{k}\": {v:g}" for k, _, v in problems)
            + " in the config (or leave the distance keys out to have them scaled with the survey).")
    cfg = dataclasses.replace(cfg, positive_within=pw, negative_beyond=nb, block_size=used["block_size"]["value"],
                              protocol_min_distance_km=used["protocol_min_distance_km"]["value"])
    folds = ds.spatial_block_folds(stack, labels, dep_x, dep_y, cfg.block_size, cfg.folds, cfg.seed)
    result = CheckResult(cfg, survey, used, labels, centre_ok, folds, fd, fn, protocol)
    result.lines = describe(cfg, survey, used, labels, fd, fn, protocol)
    return result


def describe(cfg, survey, used, labels, fd, fn, protocol):
    st = survey.stack
    c = labels.counts
    lines = [f"stack {cfg.stack}: {st.shape[0]} x {st.shape[1]} cells of {st.cell:g} m "
             f"({st.shape[1] * st.cell / 1000:g} x {st.shape[0] * st.cell / 1000:g} km); {len(survey.dep_x)} deposits"]
    if survey.samples is not None:
        lines.append(f"samples: {len(survey.samples['x'])} inside the stack ({survey.samples['n_outside']} outside), "
                     f"sample spacing {survey.spacing:.0f} m (median distance to the nearest other sample location)"
                     if survey.spacing else "samples: fewer than two distinct locations")
    else:
        lines.append("samples: none given (the sample protocol is not run; the sample spacing is unknown)")
    lines.append("settings used:")
    for k, u in used.items():
        v = u["value"]
        lines.append(f"  {k} = {v:g}" if isinstance(v, (int, float)) else f"  {k} = {v}")
        lines[-1] += f"  ({u['why']})"
    lines.append(f"windows: {c['positive']} positive (centre within {cfg.positive_within:g} m of "
                 f"{c['deposits_with_positive_cells']} deposits), {c['negative_available']} negative cells beyond "
                 f"{cfg.negative_beyond:g} m of which {c['negative_used']} used, {c['between_unused']} in between "
                 "unused")
    lines.append(f"folds: {len(fd)} block splits of {cfg.folds} folds ({cfg.block_size:g} m blocks); deposits per "
                 f"fold, search split {fd[0]}, fewest in any split {min(min(d) for d in fd)}; negative cells per "
                 f"fold, search split {fn[0]}")
    if protocol:
        lines.append(f"sample protocol: {protocol['eligible_negatives']} of {protocol['samples']} samples lie at least "
                     f"{protocol['min_distance_km']:g} km from every deposit; each of {protocol['draws']} draws takes "
                     f"{protocol['negatives_per_draw']} negatives from them")
    return lines
