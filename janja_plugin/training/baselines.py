"""What the learned map has to beat, measured on the user's own survey: the target element itself.

- log target: the samples' own measured target element, scored by the sample protocol;
- kriged target: the stack's target band read at the sample cells, by the sample protocol (the same samples,
  deposits, minimum distance and draws as the learned map's out-of-fold protocol AUC);
- kriged target on the windows: the target band at the labelled cells of each validation fold of the search
  split, the same cells and folds as the learned head's window CV AUC.
No survey's numbers are written into the code: every figure here comes from the run's own data.
"""

import numpy as np

from ..core.errors import JanjaInputError
from . import dataset as ds


def protocol_auc(cfg, stack, sx, sy, scores, dep_x, dep_y):
    """The OpenGADBench sample protocol on projected samples and deposits (great-circle, as the benchmark)."""
    from rasterio.warp import transform as warp

    from ..core.evaluation.evaluate import sample_protocol_auc

    lon, lat = warp(stack.crs_wkt, "EPSG:4326", list(sx), list(sy))
    dlon, dlat = warp(stack.crs_wkt, "EPSG:4326", list(dep_x), list(dep_y))
    return sample_protocol_auc(np.array(lon), np.array(lat), scores, np.array(dlon), np.array(dlat),
                               min_distance_km=cfg.protocol_min_distance_km, geographic=True)


def window_fold_auc(values, labels, folds, k):
    """Per-fold AUC of `values` (one per labelled cell) on that fold's positives against its negatives."""
    from ..core.evaluation.evaluate import auc_mann_whitney

    out = []
    for f in range(k):
        sel = (folds == f) & np.isfinite(values)
        pos, neg = values[sel & (labels.y == 1)], values[sel & (labels.y == 0)]
        out.append(auc_mann_whitney(pos, neg) if pos.size and neg.size else np.nan)
    return out


def compute_baselines(cfg, chk):
    """{name: {"auc": mean, "sd": sd, "how": sentence}} for the target element on this survey."""
    from ..core.geostatistics.samples import parse_censored

    stack, labels, survey = chk.survey.stack, chk.labels, chk.survey
    target = cfg.target_element
    band = stack.data[stack.names.index(target)]
    out = {}
    fold_aucs = window_fold_auc(band[labels.rows, labels.cols].astype(float), labels, chk.folds, cfg.folds)
    out["kriged_target_window_auc_blocks"] = {
        "auc": float(np.nanmean(fold_aucs)), "sd": float(np.nanstd(fold_aucs)), "folds": fold_aucs,
        "how": (f"the stack's {target} band at the labelled cells of each validation fold of the search split "
                f"({cfg.folds} folds of {cfg.block_size:g} m blocks): the same cells and folds as the learned "
                "head's window CV AUC")}
    if survey.samples is None:
        return out
    s = survey.samples
    sr, sc = s["cells"]
    kriged = band[sr, sc].astype(float)
    res = protocol_auc(cfg, stack, s["x"], s["y"], kriged, survey.dep_x, survey.dep_y)
    how = (f"by the sample protocol ({res.n_draws} draws, negatives at least {cfg.protocol_min_distance_km:g} km "
           f"from every deposit, {res.n_deposits_scored} deposits, {len(s['x'])} samples)")
    out["kriged_target_protocol_auc"] = {"auc": res.auc_mean, "sd": res.auc_sd,
                                         "how": f"the stack's {target} band read at the sample cells, {how}"}
    raw = ds.read_point_field(cfg.samples, target, cfg.samples_layer)
    if raw is None:
        out["log_target_protocol_auc"] = {"auc": None, "sd": None, "how": (
            f"not computed: the samples layer has no field '{target}' (the stack band's name)")}
        return out
    try:
        parsed = parse_censored(raw, column=target).values
    except JanjaInputError as exc:
        out["log_target_protocol_auc"] = {"auc": None, "sd": None, "how": f"not computed: {exc}"}
        return out
    vals = np.asarray(parsed, float)[s["inside"]]
    with np.errstate(divide="ignore", invalid="ignore"):
        logv = np.where(vals > 0, np.log10(np.where(vals > 0, vals, 1)), np.nan)
    res = protocol_auc(cfg, stack, s["x"], s["y"], logv, survey.dep_x, survey.dep_y)
    out["log_target_protocol_auc"] = {"auc": res.auc_mean, "sd": res.auc_sd,
                                      "how": f"log10 of the samples' own {target} values, {how}"}
    return out


def describe(baselines):
    lines = ["baselines on this survey (what the learned map has to beat):"]
    for k, b in baselines.items():
        auc = "n/a" if b["auc"] is None else f"{b['auc']:.3f} ± {b['sd']:.3f}"
        lines.append(f"  {k}: {auc}  ({b['how']})")
    return lines


def verdict(learned_auc, learned_sd, baselines, protocol):
    """One sentence: the learned held-out AUC against the kriged target on the same survey, by the same method."""
    key = "kriged_target_protocol_auc" if protocol else "kriged_target_window_auc_blocks"
    what = ("by the sample protocol, each sample scored by a model trained without its block" if protocol else
            "on the windows of held-out spatial blocks (the best head of the search: slightly optimistic)")
    b = baselines.get(key)
    head = f" Held-out AUC {what}: {learned_auc:.3f} ± {learned_sd:.3f}"
    if not b or b["auc"] is None or not np.isfinite(b["auc"]):
        return head + " (no kriged-target baseline could be computed)."
    better = learned_auc > b["auc"]
    return (head + f"; the kriged target element of the same survey scores {b['auc']:.3f} ± {b['sd']:.3f} by the "
            "same method, so the learned map is "
            + ("better than the kriged target." if better else
               "NOT better than the kriged target: prefer the kriged target element's map on this survey."))
