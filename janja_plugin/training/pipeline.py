"""The training run: dataset -> frozen-trunk features -> GAN balance -> head search -> study experiment -> export.

Honest validation throughout: folds are spatial blocks (a deposit's windows never straddle a split),
GAN windows come only from and go only into training folds, hyperparameters are chosen by K-fold CV
over blocks, and the AUC by the published sample protocol is computed on out-of-fold predictions
(each sample scored by a model that never saw its block).
"""

import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import dataset as ds
from .classifier import ProspectivityClassifier
from .config import Config  # noqa: F401  (re-exported: pipeline.Config is the config of a run)
from .features import FeatureExtractor
from .gan import GanSettings, train_wgan_gp
from .head import HeadParams, metrics, predict, train_head
from .training_data import training_data

DEFAULT_GRID = {"layers": [1, 2], "dropout": [0.3, 0.5], "lr": [1e-3, 1e-2], "optimizer": ["adam"],
                "activation": ["relu"], "batch": [32]}
FULL_GRID = {"layers": [1, 2, 3], "dropout": [0.3, 0.5, 0.7], "lr": [1e-4, 1e-3, 1e-2], "optimizer": ["adam", "sgd"],
             "activation": ["relu", "tanh", "sigmoid", "leaky_relu", "elu"], "batch": [16, 32, 64]}


@dataclass
class Prepared:
    """Windows and features of one element subset."""

    elements: list
    specs: list
    windows: np.ndarray  # (n, E, w, w)
    sample_windows: np.ndarray | None
    features: dict = field(default_factory=dict)  # pretrained flag -> (n, 2048)
    sample_features: dict = field(default_factory=dict)
    extractors: dict = field(default_factory=dict)
    components: np.ndarray | None = None
    channels: list = field(default_factory=list)  # indices into the union of elements


def log_to(path):
    fh = open(path, "a", encoding="utf-8")

    def log(msg):
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        fh.write(line + "\n")
        fh.flush()
    return log


def principal_components(t, centre_ok):
    """(3, E) leading principal directions of the standardised elements (zero rows beyond E)."""
    v = t[:, centre_ok].T.astype(np.float64)
    cov = np.cov(v, rowvar=False).reshape(v.shape[1], v.shape[1])
    w, vec = np.linalg.eigh(cov)
    comp = vec[:, np.argsort(w)[::-1]].T[:3]
    out = np.zeros((3, t.shape[0]))
    out[:comp.shape[0]] = comp
    return out


def make_classifier(n_elements, pretrained, components, seed):
    torch.manual_seed(seed)
    clf = ProspectivityClassifier(n_elements, pretrained=pretrained)
    if components is not None:
        clf.adapter.init_from_components(components)
    return clf.eval()


def prepare_subset(cfg, union, elements, log):
    """Windows of a subset are channel slices of the union's (per-element standardisation is the same)."""
    idx = [union.elements.index(e) for e in elements]
    specs = [union.specs[i] for i in idx]
    sub_t = union.t[idx]
    comps = principal_components(sub_t, union.centre_ok) if len(elements) not in (1, 3) else None
    sw = union.sample_windows[:, idx] if union.sample_windows is not None else None
    prep = Prepared(list(elements), specs, union.windows[:, idx], sw, components=comps, channels=idx)
    for pretrained in cfg.variants_pretrained:
        clf = make_classifier(len(elements), pretrained, comps, cfg.seed)
        if cfg.head_features == "dense":  # the features janja:prospectivity's shared trunk gives the head
            from .dense_head import DenseFeatures

            ext = DenseFeatures(clf, cfg, specs, union.stack.select(list(elements)))
            prep.features[pretrained] = ext.labelled(*union.label_cells)
            if union.sample_cells is not None:
                prep.sample_features[pretrained] = ext(*union.sample_cells)
            ext.close()
            log(f"  shared-trunk features {elements} pretrained={pretrained}: {ext.count} cells in "
                f"{ext.seconds:.0f} s")
            continue
        ext = FeatureExtractor(clf, cfg.input_size, cfg.threads)
        prep.extractors[pretrained] = ext
        prep.features[pretrained] = ext(prep.windows)
        if sw is not None:
            prep.sample_features[pretrained] = ext(sw)
        log(f"  features {elements} pretrained={pretrained}: {ext.count} windows, "
            f"{ext.count / max(ext.seconds, 1e-9):.0f} windows/s")
    return prep


@dataclass
class Union:
    """Standardised stack and windows of every element any subset uses."""

    elements: list
    specs: list
    t: np.ndarray
    centre_ok: np.ndarray
    windows: np.ndarray
    sample_windows: np.ndarray | None
    stack: object = None  # dataset.Stack of these elements (head_features "dense" reads it whole)
    label_cells: tuple = ()  # (rows, cols) of the labelled cells, in label order
    sample_cells: tuple | None = None  # (rows, cols) of the samples' cells


class GanCache:
    """One GAN per training split, on the union of elements; subsets take channel slices of its windows."""

    def __init__(self, cfg, union, labels, log):
        self.cfg, self.union, self.labels, self.log = cfg, union, labels, log
        self.cache = {}
        self.gans = []

    def windows(self, key, train_mask, seed):
        if key not in self.cache:
            self.cache[key] = synthetic_positives(self.cfg, self.union.windows, self.labels, train_mask, seed,
                                                  self.log)
            self.gans.append(self.cache[key][1])
        return self.cache[key][0]

    def features(self, key, train_mask, seed, prep, pretrained):
        w = self.windows(key, train_mask, seed)
        return prep.extractors[pretrained](w[:, prep.channels]) if len(w) else None


def synthetic_positives(cfg, windows, labels, train_mask, seed, log=None):
    """GAN trained on the training folds' positive windows; returns (windows, GanResult) to balance classes."""
    pos = windows[train_mask & (labels.y == 1)]
    n_neg = int((train_mask & (labels.y == 0)).sum())
    n_new = int(min(cfg.max_synthetic, max(0, n_neg - len(pos))))
    gan = train_wgan_gp(pos, GanSettings(steps=cfg.gan_steps, seed=seed))
    gan.real_examples = pos[:8]
    if log:
        log(f"    GAN on {len(pos)} positive windows: {gan.seconds:.1f} s, {n_new} synthetic windows")
    return gan.sample(n_new, seed=seed), gan


def fit_variant(cfg, prep, labels, train_mask, val_mask, params, pretrained, synth_features, seed,
                sample_val=None):
    """Train one head; returns (metrics on validation, fit)."""
    x = prep.features[pretrained][train_mask]
    y = labels.y[train_mask]
    if synth_features is not None and len(synth_features):
        x = np.concatenate([x, synth_features])
        y = np.concatenate([y, np.ones(len(synth_features), np.int64)])
    xv, yv = prep.features[pretrained][val_mask], labels.y[val_mask]
    fit = train_head(x, y, params, xv, yv, seed=seed, class_balance=True)
    return metrics(predict(fit, xv), yv), fit


def head_grid(name):
    grid = FULL_GRID if name == "full" else DEFAULT_GRID
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def search_hyperparameters(cfg, prep, labels, folds, gans, pretrained, log):
    """K-fold CV over spatial blocks (GAN on when enabled), mean validation AUC per grid point."""
    use_gan = True in cfg.variants_gan
    synth = {f: gans.features(("fold", f), folds != f, cfg.seed + f, prep, pretrained) if use_gan else None
             for f in range(cfg.folds)}
    rows = []
    for combo in head_grid(cfg.grid):
        params = HeadParams(epochs=cfg.head_epochs, **combo)
        aucs = []
        for f in range(cfg.folds):
            m, _ = fit_variant(cfg, prep, labels, folds != f, folds == f, params, pretrained, synth[f], cfg.seed)
            aucs.append(m["auc"])
        rows.append((combo, float(np.mean(aucs)), float(np.std(aucs))))
    rows.sort(key=lambda r: -r[1])
    log(f"  best head {rows[0][0]}: CV AUC {rows[0][1]:.3f} ± {rows[0][2]:.3f} ({len(rows)} grid points)")
    return rows


def run(cfg, out_dir):
    """The whole training run; writes the model, its card and the report into out_dir. Returns a summary."""
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = log_to(out_dir / "training.log")
    # The GAN and the heads are small networks: one torch thread is fastest and does not fight onnxruntime
    # (which extracts the trunk features with its own threads).
    torch.set_num_threads(1)
    from .baselines import compute_baselines
    from .baselines import describe as describe_baselines
    from .check import check

    chk = check(cfg)  # everything that can fail without features fails here, in seconds
    cfg = chk.cfg  # with the scaled defaults filled in
    for line in chk.lines:
        log(line)
    baselines = compute_baselines(cfg, chk)
    for line in describe_baselines(baselines):
        log(line)
    stack, dep_x, dep_y, samples = chk.survey.stack, chk.survey.dep_x, chk.survey.dep_y, chk.survey.samples
    all_elements = []
    for subset in cfg.subsets:
        all_elements += [e for e in subset if e not in all_elements]
    sub = stack.select(all_elements)
    specs = ds.element_specs(sub, cfg.units)
    t, centre_ok = ds.transformed_stack(sub, specs)
    labels = chk.labels
    log(f"dataset: {json.dumps(labels.counts)}")
    union = Union(all_elements, specs, t, centre_ok, ds.cut_windows(t, labels.rows, labels.cols, cfg.window_pixels),
                  ds.cut_windows(t, *samples["cells"], cfg.window_pixels) if samples else None, sub,
                  (labels.rows, labels.cols), tuple(samples["cells"]) if samples else None)
    folds = chk.folds
    gans = GanCache(cfg, union, labels, log)
    use_gan = True in cfg.variants_gan
    main_pre = True in cfg.variants_pretrained or cfg.variants_pretrained[0]
    summary = {"config": cfg.__dict__, "counts": labels.counts, "subsets": {}, "experiment": [],
               "fold_positives": [int((labels.y[folds == f] == 1).sum()) for f in range(cfg.folds)],
               "fold_deposits": chk.fold_deposits[0], "settings_used": chk.used, "check": chk.lines,
               "baselines": baselines, "sample_spacing": chk.survey.spacing,
               "training_data": training_data(sub.data, specs, stack.cell, chk.survey.spacing, dep_x, dep_y,
                                              stack.crs_wkt)}
    if cfg.dense_head == "logistic":  # bench/detect_dense.py's smoothed logistic model: no MLP search or experiment
        from .dense_logistic import run_logistic

        summary = run_logistic(cfg, chk, union, summary, out_dir, log, t_start)
        (out_dir / "training_summary.json").write_text(json.dumps(summary, indent=1, default=_json_default))
        log(f"done in {summary['seconds']:.0f} s: {summary['export']['onnx']}")
        return summary
    preps, searches = {}, {}
    for elements in cfg.subsets:
        key = "+".join(elements)
        log(f"subset {key}")
        prep = prepare_subset(cfg, union, elements, log)
        preps[key] = prep
        searches[key] = search_hyperparameters(cfg, prep, labels, folds, gans, main_pre, log)
        summary["subsets"][key] = {"search": [(c, m, sd) for c, m, sd in searches[key][:10]],
                                   "cv_auc": searches[key][0][1], "cv_auc_sd": searches[key][0][2]}
    # the study's experiment: repeats x subsets x (GAN on/off) x (pretrained/random)
    for r in range(cfg.repeats):
        rfolds = ds.spatial_block_folds(stack, labels, dep_x, dep_y, cfg.block_size, cfg.folds, cfg.seed + 100 + r)
        val = rfolds == 0
        for key, prep in preps.items():
            params = HeadParams(epochs=cfg.head_epochs, **searches[key][0][0])
            for pretrained in cfg.variants_pretrained:
                synth = gans.features(("repeat", r), ~val, cfg.seed + 100 + r, prep, pretrained) if use_gan else None
                for with_gan in cfg.variants_gan:
                    m, fit = fit_variant(cfg, prep, labels, ~val, val, params, pretrained,
                                         synth if with_gan else None, cfg.seed + r)
                    row = {"repeat": r, "subset": key, "pretrained": pretrained, "gan": with_gan, "split": "blocks",
                           **m}
                    if r == 0:
                        row["curves"] = fit.curves
                    summary["experiment"].append(row)
            if cfg.random_split_comparison:
                rnd = ds.random_folds(labels, cfg.folds, cfg.seed + 100 + r) == 0
                m, _ = fit_variant(cfg, prep, labels, ~rnd, rnd, params, main_pre, None, cfg.seed + r)
                summary["experiment"].append({"repeat": r, "subset": key, "pretrained": main_pre, "gan": False,
                                              "split": "random", **m})
        log(f"repeat {r + 1}/{cfg.repeats} done ({time.perf_counter() - t_start:.0f} s)")
    summary["experiment_means"] = experiment_means(summary["experiment"])
    key = "+".join(cfg.bundle_subset) if cfg.bundle_subset else pick_subset(summary["experiment_means"], cfg)
    summary["bundled_subset"] = key
    log(f"bundled subset: {key}")
    prep = preps[key]
    params = HeadParams(epochs=cfg.head_epochs, **searches[key][0][0])
    if samples is not None:  # out-of-fold scores at the samples for the published protocol
        summary["protocol"] = protocol_out_of_fold(cfg, stack, prep, labels, samples, dep_x, dep_y, params,
                                                   main_pre, gans if use_gan else None, folds, log)
    everything = np.ones(len(labels.y), bool)  # the final model: all windows, GAN on all positives
    synth = gans.features(("all",), everything, cfg.seed + 999, prep, main_pre) if use_gan else None
    _, final_fit = fit_variant(cfg, prep, labels, everything, everything, params, main_pre, synth, cfg.seed)
    from .export import export_model

    clf = None
    if cfg.finetune_blocks > 0:
        clf = finetuned_classifier(cfg, prep, labels, final_fit, main_pre, gans if use_gan else None, log)
        summary["finetune"] = {"blocks": cfg.finetune_blocks, "epochs": cfg.finetune_epochs, "lr": cfg.finetune_lr,
                               "losses": clf.finetune_losses}
    summary["export"] = export_model(cfg, prep, final_fit, main_pre, stack, summary, out_dir, log, clf=clf)
    summary["seconds"] = time.perf_counter() - t_start
    summary["gan_seconds"] = float(sum(g.seconds for g in gans.gans))
    from .baselines import verdict
    from .report import write_training_report

    if "protocol" in summary:
        summary["verdict"] = verdict(summary["protocol"]["auc_mean"], summary["protocol"]["auc_sd"], baselines, True)
    else:
        s = summary["subsets"][key]
        summary["verdict"] = verdict(s["cv_auc"], s["cv_auc_sd"], baselines, False)
    log("verdict:" + summary["verdict"])

    write_training_report(out_dir / "training_report.html", cfg, summary, gans.gans[:1], stack, all_elements)
    (out_dir / "training_summary.json").write_text(json.dumps(summary, indent=1, default=_json_default))
    log(f"done in {summary['seconds']:.0f} s: {summary['export']['onnx']}")
    return summary


def finetuned_classifier(cfg, prep, labels, fit, pretrained, gans, log):
    """The final classifier with its last blocks trained too, on all windows (+ the final GAN's positives)."""
    from .finetune import finetune
    from .head import exportable_head

    clf = make_classifier(len(prep.elements), pretrained, prep.components, cfg.seed)
    clf.head = exportable_head(fit)
    windows, y = prep.windows, labels.y
    if gans is not None:
        synth = gans.windows(("all",), np.ones(len(labels.y), bool), cfg.seed + 999)[:, prep.channels]
        windows = np.concatenate([windows, synth])
        y = np.concatenate([y, np.ones(len(synth), np.int64)])
    clf.finetune_losses = finetune(clf, windows, y, cfg.finetune_blocks, cfg.finetune_epochs, cfg.finetune_lr,
                                   input_size=cfg.input_size, seed=cfg.seed, log=log)
    return clf


def _json_default(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


def experiment_means(rows):
    groups = {}
    for r in rows:
        groups.setdefault((r["subset"], r["pretrained"], r["gan"], r["split"]), []).append(r)
    out = []
    for (subset, pre, gan, split), rs in groups.items():
        entry = {"subset": subset, "pretrained": pre, "gan": gan, "split": split, "n": len(rs)}
        for k in ("accuracy", "cross_entropy", "auc"):
            v = np.array([r[k] for r in rs], float)
            entry[k] = float(np.nanmean(v))
            entry[k + "_sd"] = float(np.nanstd(v))
        out.append(entry)
    return out


def pick_subset(means, cfg):
    pre = True in cfg.variants_pretrained
    gan = True in cfg.variants_gan
    cands = [m for m in means if m["pretrained"] == pre and m["gan"] == gan and m["split"] == "blocks"]
    return max(cands, key=lambda m: m["auc"])["subset"]


def sample_folds(cfg, stack, labels, samples, dep_x, dep_y, folds):
    """The fold of every sample for out-of-fold protocol scores: its nearest deposit's fold when within
    negative_beyond of one, else the fold of its block (that of the nearest labelled cell, which carries it)."""
    from scipy.spatial import cKDTree

    sx, sy = samples["x"], samples["y"]
    lx, ly = stack.cell_centres(labels.rows, labels.cols)
    _, nearest_cell = cKDTree(np.column_stack([lx, ly])).query(np.column_stack([sx, sy]))
    sample_fold = folds[nearest_cell]
    dd, nd = cKDTree(np.column_stack([dep_x, dep_y])).query(np.column_stack([sx, sy]))
    pos_cells = labels.y == 1
    dep_fold = {int(labels.nearest_deposit[i]): int(folds[i]) for i in np.nonzero(pos_cells)[0]}
    near = dd <= cfg.negative_beyond
    for i in np.nonzero(near)[0]:
        if int(nd[i]) in dep_fold:
            sample_fold[i] = dep_fold[int(nd[i])]
    return sample_fold


def protocol_out_of_fold(cfg, stack, prep, labels, samples, dep_x, dep_y, params, pretrained, gans, folds, log):
    """Each sample scored by the model trained without its spatial block; then the published protocol."""
    from .baselines import protocol_auc

    sx, sy = samples["x"], samples["y"]
    sample_fold = sample_folds(cfg, stack, labels, samples, dep_x, dep_y, folds)
    scores = np.full(len(sx), np.nan)
    fold_aucs = []
    for f in range(cfg.folds):
        train = folds != f
        synth = gans.features(("fold", f), train, cfg.seed + f, prep, pretrained) if gans else None
        m, fit = fit_variant(cfg, prep, labels, train, folds == f, params, pretrained, synth, cfg.seed + f)
        fold_aucs.append(m["auc"])
        sel = sample_fold == f
        scores[sel] = predict(fit, prep.sample_features[pretrained][sel])
    res = protocol_auc(cfg, stack, sx, sy, scores, dep_x, dep_y)
    log(f"  protocol AUC (out-of-fold, spatial blocks): {res.auc_mean:.3f} ± {res.auc_sd:.3f}; "
        f"window-level fold AUCs {np.round(fold_aucs, 3).tolist()}")
    return {"auc_mean": res.auc_mean, "auc_sd": res.auc_sd, "fold_window_auc": fold_aucs,
            "window_cv_auc": float(np.mean(fold_aucs)), "window_cv_auc_sd": float(np.std(fold_aucs)),
            "n_samples": int(len(sx)), "n_deposits": int(res.n_deposits_scored),
            "min_distance_km": cfg.protocol_min_distance_km}
