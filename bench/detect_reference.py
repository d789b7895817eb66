"""The study's configuration as the reference row of `make detect-bench` (run with .venv-train; torch).

Frozen ImageNet Inception-v3 trunk (features cached once per window, onnxruntime, 1 thread), a new head,
WGAN-GP positives made from each outer training split's positive windows only, on WA sed1 with the bundled
model's elements (Au Ag Cu), window 15 cells -> 75 px. The outer folds are detect_bench's own (same labels,
same block seeds), so the row sits beside the others. Reduced, to fit 2 shared cores, and said so in the
row: the head is fixed at the bundled model's choice (1 layer, dropout 0.5, Adam 1e-3, 20 epochs) instead
of searched inside each training split (that choice was made on all blocks, so it flatters this row a
little), GAN 300 steps and 400 synthetic positives per split, and only the sample cells are scored (an
Inception map of all 385k cells is hours here), each sample by the model that never saw its fold; a
fold's scores become percentiles among all sample cells before the folds are merged.

    .venv-train/bin/python bench/detect_reference.py [--repeats 2] [--out out/detect_bench]
writes reference_wa.npz (per repeat: the out-of-fold score of every sample) that detect_bench.py reads.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import detect_bench as db  # noqa: E402

ELEMENTS = ["Au_ppm", "Ag_ppm", "Cu_ppm"]
WINDOW, INPUT = 15, 75


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--gan-steps", type=int, default=300)
    parser.add_argument("--out", default=str(db.REPO / "out" / "detect_bench"))
    args = parser.parse_args(argv)
    import torch

    from janja_plugin.training.classifier import ProspectivityClassifier
    from janja_plugin.training.features import FeatureExtractor
    from janja_plugin.training.gan import GanSettings, train_wgan_gp
    from janja_plugin.training.head import HeadParams, predict, train_head

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    survey = db.wa_survey()
    feats = db.Features(survey)
    scorer = db.Scorer(survey, feats)
    labels = db.training_labels(survey, feats, scorer, "cells", 0)
    sub = survey.stack.select(ELEMENTS)
    t, _ = db.ds.transformed_stack(sub, db.ds.element_specs(sub))
    windows = db.ds.cut_windows(t, labels.rows, labels.cols, WINDOW)
    cells = np.unique(scorer.sample_cell[scorer.sample_cell >= 0])
    sample_windows = db.ds.cut_windows(t, feats.rows[cells], feats.cols[cells], WINDOW)
    torch.manual_seed(0)
    extractor = FeatureExtractor(ProspectivityClassifier(3, pretrained=True).eval(), INPUT, threads=1)
    fx, fs = extractor(windows), extractor(sample_windows)
    print(f"features: {extractor.count} windows in {extractor.seconds:.0f} s", flush=True)
    params = HeadParams(layers=1, dropout=0.5, lr=1e-3, optimizer="adam", activation="relu", batch=32, epochs=20)
    cx, cy = survey.stack.cell_centres(feats.rows, feats.cols)
    out = {}
    for r in range(args.repeats):
        folds = db.ds.spatial_block_folds(survey.stack, labels, survey.dep_x, survey.dep_y, survey.block_size,
                                          survey.folds, 100 + r)  # detect_bench's outer folds, repeat r
        cell_fold = db.fold_of_points(survey, labels, folds, cx, cy)
        score_at_cell = np.full(feats.rows.size, np.nan)
        for f in range(survey.folds):
            train = folds != f
            pos = windows[train & (labels.y == 1)]
            n_new = int(min(400, max(0, (train & (labels.y == 0)).sum() - len(pos))))
            gan = train_wgan_gp(pos, GanSettings(steps=args.gan_steps, seed=100 + r + f))
            synth = extractor(gan.sample(n_new, seed=100 + r + f))
            x = np.concatenate([fx[train], synth])
            y = np.concatenate([labels.y[train], np.ones(len(synth), np.int64)])
            fit = train_head(x, y, params, seed=r, class_balance=True)
            p = db.Features._pct(predict(fit, fs))  # percentiles among all sample cells
            mine = cell_fold[cells] == f
            score_at_cell[cells[mine]] = p[mine]
            print(f"repeat {r + 1} fold {f + 1}: GAN {gan.seconds:.0f} s ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
        at_samples = np.where(scorer.sample_cell >= 0, score_at_cell[np.maximum(scorer.sample_cell, 0)], np.nan)
        out[f"repeat{r}"] = at_samples
        print(f"repeat {r + 1}: protocol AUC {scorer.protocol(at_samples)[0]:.3f}", flush=True)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "reference_wa.npz", seconds=time.perf_counter() - t0, **out)
    print(f"written {folder / 'reference_wa.npz'} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
