"""CNN variants of the study's configuration as rows of `make detect-bench` (run with .venv-train; torch).

Held out exactly as the reference row (bench/detect_reference.py): detect_bench's outer folds, labels and
repeats, the same WGAN-GP positives per outer training split (300 steps, <= 400, same seeds), the head
fixed at the bundled model's choice (1 layer, dropout 0.5, Adam 1e-3, 20 epochs), only the sample cells
scored, each by the model that never saw its fold, a fold's scores made percentiles among all sample
cells before the folds are merged. Variants (--variant):
  ref       the reference through the split trunk (cached Mixed_7a + torch tail): checks the cache path;
  d4        the 8 symmetries of the square: training windows x8 (GAN positives x8 too), test probability
            = mean over the 8 orientations;
  multiwin  windows of 9, 15 and 25 cells, each resized to 75 px, one head per size (the bundled head
            takes 2048 features), their probabilities averaged; the GAN learns 25-cell positives, its
            9/15-cell windows are their centres;
  finetune  the reference head, then Mixed_7b + Mixed_7c + head fine-tuned together (Adam 1e-4, 3
            epochs, batch 32, batch-norm frozen) on each outer training split's windows and GAN positives;
  d4-test   the reference's head, test probability averaged over the 8 orientations (no training x8);
  d4-finetune  d4 and finetune together.
Stem activations (adapter .. Mixed_7a) are cached per window size and orientation under
<out>/cnn_cache, keyed by the windows' bytes; GAN samples likewise, so reruns are cheap.

    .venv-train/bin/python bench/detect_cnn_variants.py --variant d4 [--repeats 2] [--out out/detect_bench]
writes cnn_<variant>_<survey>.npz (per repeat: the out-of-fold score of every sample, the row's label and
wall seconds) that detect_bench.py reads as one more row.
"""

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import detect_bench as db  # noqa: E402

INPUT = 75
GAN_MAX = 400
COMMON = ("ImageNet Inception-v3 on {el}, frozen up to Mixed_7a, head fixed at the bundled model's, WGAN-GP "
          "positives per training split")
VARIANTS = {
    "ref": dict(windows=(15,), d4=False, finetune=False,
                label="study configuration via the cached split trunk (Mixed_7a cache + torch tail)"),
    "d4": dict(windows=(15,), d4=True, finetune=False,
               label="CNN + the 8 symmetries of the square (training windows and GAN positives x8, test "
                     "probability averaged over the 8)"),
    "d4-test": dict(windows=(15,), d4=False, finetune=False, test_d4=True,
                    label="CNN + the 8 symmetries at test time only (head trained on unrotated windows, test "
                          "probability averaged over the 8)"),
    "multiwin": dict(windows=(9, 15, 25), d4=False, finetune=False,
                     label="CNN on windows of 9, 15 and 25 cells (each to 75 px, one head per size, "
                           "probabilities averaged)"),
    "finetune": dict(windows=(15,), d4=False, finetune=True,
                     label="CNN + Mixed_7b, Mixed_7c and head fine-tuned per training split (Adam 1e-4, 3 epochs)"),
    "d4-finetune": dict(windows=(15,), d4=True, finetune=True,
                        label="CNN + 8 symmetries + Mixed_7b, Mixed_7c and head fine-tuned per training split"),
}
SURVEY_ELEMENTS = {"wa": ["Au_ppm", "Ag_ppm", "Cu_ppm"],
                   # 3 of the 11 pathfinders, fixed a priori: Au and the two classic epithermal/orogenic Au
                   # pathfinders (the synthetic surveys' planted signature is the same triple)
                   "tianshan-pathfinders": ["Au", "As", "Sb"]}


def row_label(variant, survey):
    el = " ".join(e.split("_")[0] for e in SURVEY_ELEMENTS[survey])
    return (f"{VARIANTS[variant]['label']} ({COMMON.format(el=el)}; samples only; bench/detect_cnn_variants.py "
            f"--variant {variant})")


class Context:
    """Everything a fold's fit may read. Labelled windows pass through one gate that records, in the
    audit, every labelled cell a fit touched; the map cells' activations are label-free."""

    def __init__(self, t, labels, map_rows, map_cols, extractor, tail, folder, audit):
        self.t, self.labels, self.map_rows, self.map_cols = t, labels, map_rows, map_cols
        self.extractor, self.tail, self.folder, self.audit = extractor, tail, Path(folder), audit
        self._acts, self._feats = {}, {}
        self.wait_gan = 0.0

    def windows(self, idx, w, key):
        self.audit.touch(key, idx)
        return db.ds.cut_windows(self.t, self.labels.rows[idx], self.labels.cols[idx], w)

    def _all_acts(self, which, w, k):
        from janja_plugin.training.cnn_variants import cached_stem, d4

        if (which, w, k) not in self._acts:
            rows, cols = (self.labels.rows, self.labels.cols) if which == "label" else (self.map_rows, self.map_cols)
            win = d4(db.ds.cut_windows(self.t, rows, cols, w), k)
            self._acts[which, w, k] = cached_stem(self.extractor, win, self.folder, f"{which}_o{k}")
        return self._acts[which, w, k]

    def _all_feats(self, which, w, k):
        from janja_plugin.training.cnn_variants import tail_features

        if (which, w, k) not in self._feats:
            self._feats[which, w, k] = tail_features(self.tail, self._all_acts(which, w, k))
        return self._feats[which, w, k]

    def label_acts(self, idx, w, k, key):
        self.audit.touch(key, idx)
        return self._all_acts("label", w, k)[idx]

    def label_feats(self, idx, w, k, key):
        self.audit.touch(key, idx)
        return self._all_feats("label", w, k)[idx]

    def map_acts(self, w, k):
        return self._all_acts("map", w, k)

    def map_feats(self, w, k):
        return self._all_feats("map", w, k)

    def gan_windows(self, pos_idx, w, n, seed, steps, key):
        """n GAN positives learnt from the labelled positives pos_idx (cached by their bytes and settings)."""
        from janja_plugin.training.gan import GanSettings, train_wgan_gp

        pos = self.windows(pos_idx, w, key)
        h = hashlib.sha1(pos.tobytes() + repr((pos.shape, n, seed, steps)).encode()).hexdigest()
        path = self.folder / f"gan_w{w}_{h[:20]}.npz"
        waited = time.perf_counter()
        while not path.is_file() and time.perf_counter() - waited < self.wait_gan:
            time.sleep(10)  # another run with the same outer folds is training this very GAN
        if path.is_file():
            with np.load(path) as z:
                if str(z["key"]) == h:
                    return z["windows"], 0.0
        gan = train_wgan_gp(pos, GanSettings(steps=steps, seed=seed))
        out = gan.sample(n, seed=seed) if n else np.zeros((0, *pos.shape[1:]), np.float32)
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, windows=out, key=h)
        os.replace(tmp, path)
        return out, gan.seconds


def fit_fold(ctx, spec, train, key, seed, gan_seed, gan_steps, head_params, ft_epochs=3, ft_lr=1e-4):
    """Fit one variant on the labelled cells `train` only; returns (probability at every map cell, GAN s)."""
    from janja_plugin.training.cnn_variants import cached_stem, d4, finetune_tail, tail_features
    from janja_plugin.training.head import predict, train_head

    y = ctx.labels.y
    pos = train[y[train] == 1]
    n_new = int(min(GAN_MAX, max(0, (y[train] == 0).sum() - len(pos))))
    wmax = max(spec["windows"])
    gan, gan_s = ctx.gan_windows(pos, wmax, n_new, gan_seed, gan_steps, key)
    orients = range(8) if spec["d4"] else [0]

    def gan_at(w, k):
        c = (wmax - w) // 2
        return cached_stem(ctx.extractor, d4(gan[..., c:c + w, c:c + w], k), ctx.folder, f"gan_o{k}")

    yy = np.concatenate([np.r_[y[train], np.ones(n_new, np.int64)]] * len(orients))
    probs = []
    for w in spec["windows"]:  # one head per window size; their probabilities are averaged
        x = np.concatenate([np.concatenate([ctx.label_feats(train, w, k, key), tail_features(ctx.tail, gan_at(w, k))])
                            for k in orients])
        fit = train_head(x, yy, head_params, seed=seed, class_balance=True)
        tail = ctx.tail
        if spec["finetune"]:
            acts = np.concatenate([np.concatenate([ctx.label_acts(train, w, k, key), gan_at(w, k)]) for k in orients])
            tail, fit = finetune_tail(ctx.tail, fit, acts, yy, epochs=ft_epochs, lr=ft_lr, seed=seed)
        for k in range(8) if spec.get("test_d4") else orients:  # test time: mean over the orientations
            f = tail_features(tail, ctx.map_acts(w, k)) if spec["finetune"] else ctx.map_feats(w, k)
            probs.append(predict(fit, f))
    return np.mean(probs, axis=0), gan_s


def table(survey_name, folder):
    """Markdown rows of the cached reference and CNN variants, scored by detect_bench's protocol (no torch)."""
    survey = db.wa_survey() if survey_name == "wa" else db.tianshan_survey(db.PATHFINDERS)
    scorer = db.Scorer(survey, db.Features(survey))
    files = sorted(Path(folder).glob(f"cnn_*_{survey_name}.npz"))
    if survey_name == "wa" and (Path(folder) / "reference_wa.npz").is_file():
        files.insert(0, Path(folder) / "reference_wa.npz")
    lines = []
    for path in files:
        with np.load(path) as z:
            res = [scorer.protocol(z[k]) for k in sorted(k for k in z.files if k.startswith("repeat"))]
            label = str(z["label"]) if "label" in z.files else db.REFERENCE
            seconds = float(z["seconds"])
        m = [a for a, _ in res]
        lines.append(f"| {survey.name} | {label} | {np.mean(m):.3f} ± {np.mean([b for _, b in res]):.3f} | "
                     f"{np.std(m):.3f} | {' / '.join(f'{a:.3f}' for a in m)} | {seconds:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS))
    parser.add_argument("--table", action="store_true", help="print the cached rows (protocol per repeat) and exit")
    parser.add_argument("--survey", choices=sorted(SURVEY_ELEMENTS), default="wa")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--gan-steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--wait-gan", type=float, default=0.0,
                        help="seconds to wait for another run (same folds, same window) to cache a fold's GAN")
    parser.add_argument("--out", default=str(db.REPO / "out" / "detect_bench"))
    args = parser.parse_args(argv)
    if args.table:
        print(table(args.survey, args.out))
        return 0
    if args.variant is None:
        parser.error("choose a --variant (or --table)")
    import torch

    from janja_plugin.training.backbone import WEIGHTS_SHA1
    from janja_plugin.training.classifier import ProspectivityClassifier
    from janja_plugin.training.cnn_variants import StemExtractor, Tail
    from janja_plugin.training.head import HeadParams

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    spec = VARIANTS[args.variant]
    elements = SURVEY_ELEMENTS[args.survey]
    survey = db.wa_survey() if args.survey == "wa" else db.tianshan_survey(db.PATHFINDERS)
    feats = db.Features(survey)
    scorer = db.Scorer(survey, feats)
    labels = db.training_labels(survey, feats, scorer, "cells", 0)
    sub = survey.stack.select(elements)
    t, _ = db.ds.transformed_stack(sub, db.ds.element_specs(sub))
    cells = np.unique(scorer.sample_cell[scorer.sample_cell >= 0])
    torch.manual_seed(0)
    clf = ProspectivityClassifier(3, pretrained=True).eval()
    extractor = StemExtractor(clf, INPUT, threads=args.threads, tag=f"inception-{WEIGHTS_SHA1[:12]}-{INPUT}px")
    audit = db.Audit()
    ctx = Context(t, labels, feats.rows[cells], feats.cols[cells], extractor, Tail(clf), Path(args.out) / "cnn_cache",
                  audit)
    ctx.wait_gan = args.wait_gan
    params = HeadParams(layers=1, dropout=0.5, lr=1e-3, optimizer="adam", activation="relu", batch=32, epochs=20)
    cx, cy = survey.stack.cell_centres(feats.rows, feats.cols)
    out, gan_seconds = {}, 0.0
    for r in range(args.repeats):
        folds = db.ds.spatial_block_folds(survey.stack, labels, survey.dep_x, survey.dep_y, survey.block_size,
                                          survey.folds, 100 + r)  # detect_bench's outer folds, repeat r
        cell_fold = db.fold_of_points(survey, labels, folds, cx, cy)
        score_at_cell = np.full(feats.rows.size, np.nan)
        for f in range(survey.folds):
            key = (survey.name, r, f)
            audit.used.setdefault(key, set())
            audit.heldout[key] = {"cells": set(np.nonzero(folds == f)[0].tolist())}
            p, gs = fit_fold(ctx, spec, np.nonzero(folds != f)[0], key, seed=r, gan_seed=100 + r + f,
                             gan_steps=args.gan_steps, head_params=params)
            gan_seconds += gs
            assert not audit.used[key] & audit.heldout[key]["cells"], "a held-out labelled cell reached a fit"
            p = db.Features._pct(p)  # percentiles among all sample cells
            mine = cell_fold[cells] == f
            score_at_cell[cells[mine]] = p[mine]
            print(f"repeat {r + 1} fold {f + 1}: {time.perf_counter() - t0:.0f} s (stem {extractor.count} windows "
                  f"in {extractor.seconds:.0f} s)", flush=True)
        at_samples = np.where(scorer.sample_cell >= 0, score_at_cell[np.maximum(scorer.sample_cell, 0)], np.nan)
        out[f"repeat{r}"] = at_samples
        print(f"repeat {r + 1}: protocol AUC {scorer.protocol(at_samples)[0]:.3f}", flush=True)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    seconds = time.perf_counter() - t0
    label = row_label(args.variant, args.survey)
    path = folder / f"cnn_{args.variant}_{args.survey}.npz"
    np.savez(path, seconds=seconds, gan_seconds=gan_seconds, label=label, **out)
    print(f"written {path} ({seconds:.0f} s, of which GAN training {gan_seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
