"""The shared-trunk ("dense") model held out on WA sed1: a row of `make detect-bench` (run with .venv-train; torch).

janja:prospectivity's shared-trunk mode runs the Inception-v3 trunk once over the whole stack and reads each
cell's features off the feature map (janja_plugin/core/inference/dense.py). Those features differ from a lone
window's, so a head fit on per-window features is meaningless there; a head fit on the dense features
themselves makes the fast mode the model. This script measures such a model held out, beside the study's
per-window configuration (bench/detect_reference.py):

- frozen ImageNet Inception-v3 trunk with the bundled model's elements (Au Ag Cu), window 15 cells -> 75 px,
  exported as the shared-trunk part (training/export_dense.py), features at EVERY valid cell of the WA 250 m
  stack by core.inference.dense.features_at (cached, float16, in out/detect_bench/);
- detect_bench's outer folds (same labels, block seeds 100 + repeat, same repeats), the head fit per outer
  training split on the labelled cells' dense features only, fixed at the bundled model's choice (1 layer,
  dropout 0.5, Adam 1e-3, 20 epochs); no WGAN positives (a GAN's lone windows have no dense features: their
  features would be per-window ones, the very mismatch this model removes);
- each fold's head maps every cell (cheap in dense mode); the map becomes survey percentiles and the held-out
  fold's cells take it, giving one out-of-fold map per repeat, which detect_bench.py scores by its protocol
  (sample protocol AUC, cell ROC AUC, P-A) from dense_wa.npz.

The wall time of the dense features of all cells is set beside the per-window trunk's rate measured in the
same run on a sample of the same cells.

    OMP_NUM_THREADS=1 nice -n 10 .venv-train/bin/python bench/detect_dense.py [--repeats 5] [--out out/detect_bench]
"""

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import detect_bench as db  # noqa: E402

ELEMENTS = ["Au_ppm", "Ag_ppm", "Cu_ppm"]
WINDOW, INPUT = 15, 75
CHUNK = 50000  # cells per head prediction (float16 cache -> float32 in chunks)
DENSE_C_GRID = (3e-5, 3e-4) + db.C_GRID  # inverse L2 strength of the nested head (chosen inside the training folds)
PCA_DIMS = 64  # label-free principal components of the dense features for the nested logistic regression
DENSE_NESTED = db.DENSE_NESTED
DENSE_SMOOTHED = db.DENSE_SMOOTHED
SMOOTH_SCALES = (0.0, 0.5, 1.0, 2.0, 4.0)  # Gaussian sigma of the smoothed head's map, in sample spacings (0: none)


def out_of_fold(survey, feats, labels, x, fit, predict, repeats, audit=None, seed=0, log=print):
    """One out-of-fold percentile map per repeat over feats' valid cells, from features `x` (n_valid, F).

    fit(x_train, y_train, repeat, fold) -> model; predict(model, x_chunk) -> scores. The folds are
    detect_bench's (spatial_block_folds with seed + 100 + repeat, cells by fold_of_points); a fold's head sees
    the labelled cells of the other folds only, and every labelled cell it touches is recorded in `audit`
    (a detect_bench.Audit) under detect_bench's keys (survey name, repeat, fold).
    """
    audit = audit if audit is not None else db.Audit()
    audit.labels[survey.name] = labels
    lookup = np.full(survey.stack.shape, -1)
    lookup[feats.rows, feats.cols] = np.arange(feats.rows.size)
    cell_index = lookup[labels.rows, labels.cols]
    if (cell_index < 0).any():
        raise ValueError("a labelled cell is not a valid cell of the features")
    maps = []
    for r, oof, folds, cell_fold in outer_repeats(survey, feats, labels, repeats, seed):
        for f, key in outer_folds(survey, labels, folds, r, audit):
            train = np.nonzero(folds != f)[0]
            audit.touch(key, train)
            model = fit(np.asarray(x[cell_index[train]], np.float32), labels.y[train], r, f)
            score = np.concatenate([predict(model, np.asarray(x[a:a + CHUNK], np.float32))
                                    for a in range(0, len(x), CHUNK)])
            p = db.Features._pct(score)
            oof[cell_fold == f] = p[cell_fold == f]
        maps.append(oof)
        log(f"repeat {r + 1}/{repeats} done")
    return maps


def outer_repeats(survey, feats, labels, repeats, seed):
    """detect_bench's outer splits, one per repeat: (repeat, an empty out-of-fold map over feats' cells, the
    labelled cells' folds, every cell's fold); folds by spatial_block_folds with seed + 100 + repeat and cells by
    fold_of_points, as every other row of the table."""
    cx, cy = survey.stack.cell_centres(feats.rows, feats.cols)
    for r in range(repeats):
        folds = db.ds.spatial_block_folds(survey.stack, labels, survey.dep_x, survey.dep_y, survey.block_size,
                                          survey.folds, seed + 100 + r)
        yield r, np.full(feats.rows.size, np.nan), folds, db.fold_of_points(survey, labels, folds, cx, cy)


def outer_folds(survey, labels, folds, r, audit):
    """(fold, audit key) per outer fold, its held-out labelled cells and deposits recorded in `audit` first."""
    for f in range(survey.folds):
        key = (survey.name, r, f)
        audit.used.setdefault(key, set())
        audit.heldout[key] = {"cells": set(np.nonzero(folds == f)[0].tolist()),
                              "deposits": set(np.unique(labels.nearest_deposit[(folds == f) & (labels.y == 1)])
                                              .tolist())}
        yield f, key


def pca_block(x, reference, dims=PCA_DIMS):
    """Label-free: the leading principal components of the standardised features (fit on the `reference` cells,
    every cell projected); returns (n, dims) and the share of the variance they keep."""
    xr = np.asarray(x[reference], np.float64)
    mu, sd = xr.mean(axis=0), xr.std(axis=0) + 1e-6
    z = (xr - mu) / sd
    w, v = np.linalg.eigh(z.T @ z / len(z))
    order = np.argsort(w)[::-1][:dims]
    basis = v[:, order]
    out = np.concatenate([((np.asarray(x[a:a + CHUNK], np.float64) - mu) / sd) @ basis
                          for a in range(0, len(x), CHUNK)])
    return out, float(w[order].sum() / w.sum())


class DenseLearner(db.Learner):
    """detect_bench's Learner with the L2 strength searched over DENSE_C_GRID (the bench's grid plus weaker C:
    on 64 components the bench's strongest, 0.003, was chosen in every outer fold)."""

    def choose_and_fit(self, variant, idx, key, seed):
        grid = [{"c": c, "pu": 0.0, "w": 1.0, "scale": 0.0} for c in DENSE_C_GRID]
        best_score, best = max((self.inner_score(variant, idx, p, key, seed), i) for i, p in enumerate(grid))
        params = grid[best]
        model = self._fit(variant, idx, params["c"], 0.0, key)
        return self._map(variant, model, params), best_score, params


class SmoothedDenseLearner(DenseLearner):
    """The nested logistic head with the smoothing of its map chosen too: grid over C x SMOOTH_SCALES.

    A logistic regression is linear, and a NaN-aware Gaussian mean over the same valid cells commutes with a
    linear map (it keeps constants), so a head fit on the components smoothed at sigma maps exactly what the plain
    head's logit map smoothed at sigma gives: the smoothing is a fixed step after the head, not a new feature set.
    """

    def choose_and_fit(self, variant, idx, key, seed):
        grid = [({"c": c, "pu": 0.0, "w": 1.0, "scale": 0.0}, sc) for sc in SMOOTH_SCALES for c in DENSE_C_GRID]
        scored = [(self.inner_score(db.Variant(variant.name, f"dense@{sc:g}"), idx, p, key, seed), i)
                  for i, (p, sc) in enumerate(grid)]
        best_score, best = max(scored)
        params, sc = grid[best]
        v = db.Variant(variant.name, f"dense@{sc:g}")
        model = self._fit(v, idx, params["c"], 0.0, key)
        return self._map(v, model, params), best_score, {**params, "smooth": sc}


def smoothed_blocks(survey, feats, block, scales=SMOOTH_SCALES):
    """{"dense@s": block smoothed at s sample spacings}: each component as a grid, NaN-aware Gaussian mean."""
    from janja_plugin.core.smoothing import smooth

    out = {}
    shape = survey.stack.shape
    for sc in scales:
        if sc == 0:
            out["dense@0"] = block
            continue
        sm = np.empty_like(block)
        for k in range(block.shape[1]):
            g = np.full(shape, np.nan)
            g[feats.rows, feats.cols] = block[:, k]
            sm[:, k] = smooth(g, sc * survey.spacing / survey.stack.cell)[feats.rows, feats.cols]
        out[f"dense@{sc:g}"] = sm
    return out


def nested_maps(survey, feats, labels, block, repeats, audit=None, seed=0, log=print, smoothed=False):
    """Out-of-fold maps of an L2 logistic regression on `block` (n_valid, k), its C chosen by detect_bench's inner
    block CV on the outer training folds only (detect_bench.Learner, audited the same way); (maps, choices)."""
    audit = audit if audit is not None else db.Audit()
    audit.labels[survey.name] = labels
    if smoothed:
        feats.blocks.update(smoothed_blocks(survey, feats, block))
        variant = db.Variant(DENSE_SMOOTHED, "dense@0")
    else:
        feats.blocks["dense"] = block
        variant = db.Variant(DENSE_NESTED, "dense")
    lookup = np.full(survey.stack.shape, -1)
    lookup[feats.rows, feats.cols] = np.arange(feats.rows.size)
    learner = (SmoothedDenseLearner if smoothed else DenseLearner)(survey, feats, labels,
                                                                    lookup[labels.rows, labels.cols], audit)
    maps, choices = [], []
    for r, oof, folds, cell_fold in outer_repeats(survey, feats, labels, repeats, seed):
        for f, key in outer_folds(survey, labels, folds, r, audit):
            m, inner, params = learner.choose_and_fit(variant, np.nonzero(folds != f)[0], key, seed + 1000 * r + f)
            oof[cell_fold == f] = m[cell_fold == f]
            choices.append({"repeat": r, "fold": f, "inner_auc": inner, "c": params["c"],
                            **({"smooth": params["smooth"]} if smoothed else {})})
        maps.append(oof)
        log(f"nested repeat {r + 1}/{repeats} done")
    return maps, choices


def audit_leaks(audit):
    """detect_bench's audit read back: the keys where a held-out cell or deposit informed a fit or a choice."""
    bad = []
    for key, held in audit.heldout.items():
        used = audit.used.get(key, set())
        labels = audit.labels[key[0]]
        idx = np.fromiter(used, int) if used else np.zeros(0, int)
        deps = set(labels.nearest_deposit[idx][labels.y[idx] == 1].tolist())
        if used & held["cells"] or deps & held["deposits"] or audit.deposits.get(key, set()) & held["deposits"]:
            bad.append(key)
    return bad


def dense_model(folder, survey, seed=0):
    """The frozen trunk as shared-trunk parts + a card: (model-like object for features_at, parts, classifier)."""
    import torch

    from janja_plugin.core.inference import dense
    from janja_plugin.core.inference import model_card as mc
    from janja_plugin.training.classifier import ProspectivityClassifier
    from janja_plugin.training.export_dense import export_dense_parts

    torch.manual_seed(seed)
    clf = ProspectivityClassifier(len(ELEMENTS), pretrained=True).eval()
    card = json.loads((db.REPO / "models" / "wa_au_inception.json").read_text())
    card["elements"] = db.ds.element_specs(survey.stack.select(ELEMENTS))  # the survey's own, as the reference
    card = export_dense_parts(clf, Path(folder) / "wa_dense.onnx", card)
    model = SimpleNamespace(card=mc.card_from_dict(card, "the benchmark's card"), path=Path(folder) / "wa_dense.onnx",
                            threads=1)
    return model, dense.load_parts(model), clf


def dense_features(model, parts, survey, feats, log=print):
    """float16 (n_valid, 2048) shared-trunk features in feats' cell order, computed in row bands; seconds."""
    from janja_plugin.core.inference import dense
    from janja_plugin.core.inference.windows import ArrayStack

    st = survey.stack
    stack = ArrayStack(st.data, st.names)
    bands = [st.names.index(e) for e in ELEMENTS]
    lookup = np.full(st.shape, -1)
    lookup[feats.rows, feats.cols] = np.arange(feats.rows.size)
    out = np.zeros((feats.rows.size, 2048), np.float16)
    done = np.zeros(feats.rows.size, bool)
    band = 4 * dense.DEFAULT_TILE[0]
    t0 = time.perf_counter()
    for r0 in range(0, st.shape[0], band):
        mask = np.zeros(st.shape, bool)
        mask[r0:r0 + band] = feats.valid[r0:r0 + band]
        if not mask.any():
            continue
        rows, cols, x = dense.features_at(model, parts, stack, bands, mask)
        idx = lookup[rows, cols]
        out[idx] = x
        done[idx] = True
        log(f"  dense features: rows {r0}-{min(r0 + band, st.shape[0])} ({time.perf_counter() - t0:.0f} s)")
    if not done.all():
        raise RuntimeError(f"{(~done).sum()} valid cells got no dense features")
    return out, time.perf_counter() - t0


def per_window_rate(clf, survey, feats, n, seed=0):
    """Windows per second of the per-window trunk (detect_reference's FeatureExtractor, 1 thread) on n valid cells."""
    from janja_plugin.training.features import FeatureExtractor

    sub = survey.stack.select(ELEMENTS)
    t, _ = db.ds.transformed_stack(sub, db.ds.element_specs(sub))
    cells = np.random.default_rng(seed).choice(feats.rows.size, n, replace=False)
    extractor = FeatureExtractor(clf, INPUT, threads=1)
    t0 = time.perf_counter()
    extractor(db.ds.cut_windows(t, feats.rows[cells], feats.cols[cells], WINDOW))  # cutting counted, as a map would
    return n / (time.perf_counter() - t0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--timing-windows", type=int, default=2000,
                        help="valid cells classified window by window to measure the per-window rate")
    parser.add_argument("--out", default=str(db.REPO / "out" / "detect_bench"))
    parser.add_argument("--nested-only", action="store_true",
                        help="redo only the nested row; the fixed head's maps are taken from dense_wa.npz")
    parser.add_argument("--smoothed-only", action="store_true",
                        help="add only the smoothed nested row; the other rows' maps are kept from dense_wa.npz")
    args = parser.parse_args(argv)
    import torch

    from janja_plugin.training.head import HeadParams, predict, train_head

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    survey = db.wa_survey()
    feats = db.Features(survey)
    scorer = db.Scorer(survey, feats)
    labels = db.training_labels(survey, feats, scorer, "cells", 0)
    parts_dir = folder / "dense_parts"
    parts_dir.mkdir(exist_ok=True)
    model, parts, clf = dense_model(parts_dir, survey)
    cache = folder / "dense_features_wa.npy"
    meta_path = folder / "dense_features_wa.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if cache.is_file() and meta.get("trunk_sha256") == model.card.dense["trunk_sha256"] and \
            meta.get("n_cells") == int(feats.rows.size):
        x = np.load(cache, mmap_mode="r")
        print(f"dense features from the cache {cache} ({meta['seconds']:.0f} s when computed)", flush=True)
    else:
        x, seconds = dense_features(model, parts, survey, feats)
        np.save(cache, x)
        meta = {"trunk_sha256": model.card.dense["trunk_sha256"], "n_cells": int(feats.rows.size),
                "seconds": seconds}
        meta_path.write_text(json.dumps(meta, indent=1))
        print(f"dense features: {feats.rows.size:,} cells in {seconds:.0f} s", flush=True)
    if "window_rate" not in meta:
        meta["window_rate"] = per_window_rate(clf, survey, feats, args.timing_windows)
        meta["timing_windows"] = args.timing_windows
        meta_path.write_text(json.dumps(meta, indent=1))
    window_seconds = feats.rows.size / meta["window_rate"]
    print(f"per-window trunk: {meta['window_rate']:.0f} windows/s on {meta['timing_windows']} cells -> "
          f"{window_seconds:.0f} s for the same {feats.rows.size:,} cells; dense {meta['seconds']:.0f} s "
          f"({window_seconds / meta['seconds']:.1f}x faster)", flush=True)
    params = HeadParams(layers=1, dropout=0.5, lr=1e-3, optimizer="adam", activation="relu", batch=32, epochs=20)
    t_fit = time.perf_counter()
    if args.smoothed_only:
        return smoothed_only(folder, survey, feats, scorer, labels, x, args.repeats)
    if args.nested_only:
        old = np.load(folder / "dense_wa.npz")
        if not (np.array_equal(old["rows"], feats.rows) and old["repeat0"].size == feats.rows.size):
            raise SystemExit("dense_wa.npz was made for other cells: run without --nested-only.")
        maps = [old[f"repeat{r}"] for r in range(args.repeats)]
        fit_seconds = float(old["fit_seconds"])
    else:
        maps = out_of_fold(survey, feats, labels, x, lambda xt, yt, r, f: train_head(xt, yt, params, seed=r),
                           predict, args.repeats)
        fit_seconds = time.perf_counter() - t_fit
    audit = db.Audit()
    t_nested = time.perf_counter()
    block, kept = pca_block(x, feats.reference)
    print(f"dense features -> {PCA_DIMS} principal components ({100 * kept:.0f} % of the variance)", flush=True)
    nested, choices = nested_maps(survey, feats, labels, block, args.repeats, audit)
    nested_seconds = time.perf_counter() - t_nested
    leaks = audit_leaks(audit)
    if leaks:
        raise SystemExit(f"held-out cells informed the nested choice in {leaks}")
    print(f"nested L2 strength chosen inside: {[c['c'] for c in choices]}", flush=True)
    for r, m in enumerate(nested):
        pm, psd, roc, pa, we = scorer.score_map(m)
        print(f"nested repeat {r + 1}: protocol AUC {pm:.3f} ± {psd:.3f}, cell ROC {roc:.3f}, P-A {pa:.0f} % "
              f"(We {we:.2f})", flush=True)
    out = {f"repeat{r}": m.astype(np.float32) for r, m in enumerate(maps)}
    out.update({f"nested_repeat{r}": m.astype(np.float32) for r, m in enumerate(nested)})
    for r, m in enumerate(maps):
        pm, psd, roc, pa, we = scorer.score_map(m)
        print(f"repeat {r + 1}: protocol AUC {pm:.3f} ± {psd:.3f}, cell ROC {roc:.3f}, P-A {pa:.0f} % (We {we:.2f})",
              flush=True)
    np.savez(folder / "dense_wa.npz", rows=feats.rows, cols=feats.cols, seconds=meta["seconds"] + fit_seconds,
             feature_seconds=meta["seconds"], fit_seconds=fit_seconds, window_rate=meta["window_rate"],
             window_seconds=window_seconds, nested_seconds=meta["seconds"] + nested_seconds,
             nested_choices=json.dumps(choices), **out)
    print(f"written {folder / 'dense_wa.npz'} (heads and maps {fit_seconds:.0f} s; total "
          f"{time.perf_counter() - t0:.0f} s)")
    return 0


def smoothed_only(folder, survey, feats, scorer, labels, x, repeats):
    """The smoothed nested row (C and smoothing chosen inside the training folds), added to dense_wa.npz."""
    path = folder / "dense_wa.npz"
    old = dict(np.load(path))
    if not (np.array_equal(old["rows"], feats.rows) and old["repeat0"].size == feats.rows.size):
        raise SystemExit("dense_wa.npz was made for other cells: run without --smoothed-only first.")
    t0 = time.perf_counter()
    block, kept = pca_block(x, feats.reference)
    print(f"dense features -> {PCA_DIMS} principal components ({100 * kept:.0f} % of the variance)", flush=True)
    audit = db.Audit()
    maps, choices = nested_maps(survey, feats, labels, block, repeats, audit, smoothed=True)
    seconds = time.perf_counter() - t0
    leaks = audit_leaks(audit)
    if leaks:
        raise SystemExit(f"held-out cells informed the nested choice in {leaks}")
    print(f"smoothed nested choices (C, sigma in sample spacings): {[(c['c'], c['smooth']) for c in choices]}",
          flush=True)
    for r, m in enumerate(maps):
        pm, psd, roc, pa, we = scorer.score_map(m)
        print(f"smoothed repeat {r + 1}: protocol AUC {pm:.3f} ± {psd:.3f}, cell ROC {roc:.3f}, P-A {pa:.0f} % "
              f"(We {we:.2f})", flush=True)
    old = {k: v for k, v in old.items() if not k.startswith("smoothed_")}
    old.update({f"smoothed_repeat{r}": m.astype(np.float32) for r, m in enumerate(maps)})
    np.savez(path, **old, smoothed_seconds=float(old["feature_seconds"]) + seconds,
             smoothed_choices=json.dumps(choices))
    print(f"written {path} (smoothed row {seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
