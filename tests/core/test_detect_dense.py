"""bench/detect_dense.py (the shared-trunk model's row of the detection benchmark): a held-out fold's cells never
reach the head fit, and detect_bench.py scores the cached out-of-fold maps as a row of its table. The trunk
features are stood in for by label-free survey features (no torch here); the fold logic is the same code."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import detect_bench as db  # noqa: E402
import detect_dense as dd  # noqa: E402

from janja_plugin.core.smoothing import smooth  # noqa: E402


@pytest.fixture(scope="module")
def small():
    survey = db.synthetic_survey(0, size=60, n_deposits=16)
    feats = db.Features(survey)
    scorer = db.Scorer(survey, feats)
    labels = db.training_labels(survey, feats, scorer, "cells", 0)
    return survey, feats, labels


def fit_lr(x, y, r, f):
    return db.fit_logistic(x, y, 0.3)


def test_no_heldout_cell_or_deposit_reaches_the_head(small):
    survey, feats, labels = small
    audit = db.Audit()
    seen = {}

    def fit(x, y, r, f):  # column 0 carries each cell's index: what the head really received
        seen[(survey.name, r, f)] = np.rint(x[:, 0]).astype(int)
        return fit_lr(x[:, 1:], y, r, f)

    x = np.column_stack([np.arange(feats.rows.size), feats.blocks["multiscale"]])
    maps = dd.out_of_fold(survey, feats, labels, x, fit, lambda m, z: db.predict_logistic(m, z[:, 1:]), 2, audit,
                          log=lambda *_: None)
    assert len(maps) == 2 and all(np.isfinite(m).all() for m in maps)
    lookup = np.full(survey.stack.shape, -1)
    lookup[feats.rows, feats.cols] = np.arange(feats.rows.size)
    cell_index = lookup[labels.rows, labels.cols]
    assert len(audit.heldout) == 2 * survey.folds
    for key, held in audit.heldout.items():
        used = audit.used[key]
        assert used and held["cells"] and held["deposits"]
        assert not used & held["cells"], f"{key}: a held-out cell informed the head"
        used_idx = np.fromiter(used, int)
        touched = set(labels.nearest_deposit[used_idx][labels.y[used_idx] == 1].tolist())
        assert not touched & held["deposits"], f"{key}: a held-out deposit's cells were used"
        # the rows the head actually got are the audited ones, and none is a held-out labelled cell
        assert set(seen[key].tolist()) == set(cell_index[used_idx].tolist())
        assert not set(seen[key].tolist()) & set(cell_index[np.fromiter(held["cells"], int)].tolist())


def test_the_folds_are_detect_bench_s_own(small):
    """Same labels and block seeds as detect_bench's outer folds (seed + 100 + repeat)."""
    survey, feats, labels = small
    audit = db.Audit()
    dd.out_of_fold(survey, feats, labels, feats.blocks["rank"], fit_lr, db.predict_logistic, 1, audit,
                   log=lambda *_: None)
    folds = db.ds.spatial_block_folds(survey.stack, labels, survey.dep_x, survey.dep_y, survey.block_size,
                                      survey.folds, 100)
    for f in range(survey.folds):
        assert audit.heldout[(survey.name, 0, f)]["cells"] == set(np.nonzero(folds == f)[0].tolist())


def test_detect_bench_scores_the_cached_maps_as_a_row(small, tmp_path):
    survey, feats, labels = small
    maps = dd.out_of_fold(survey, feats, labels, feats.blocks["multiscale"], fit_lr, db.predict_logistic, 2,
                          log=lambda *_: None)
    np.savez(tmp_path / "dense.npz", rows=feats.rows, cols=feats.cols, seconds=3.0, nested_seconds=4.0,
             nested_repeat0=maps[1], **{f"repeat{r}": m for r, m in enumerate(maps)})
    rows, _, _ = db.run_survey(survey, 1, variants=[db.VARIANTS[1]], log=lambda *_: None,
                               dense=np.load(tmp_path / "dense.npz"))
    row = rows[db.DENSE]
    assert len(row["protocol"]) == 2 and np.isfinite(row["cell_auc"]).all() and row["seconds"] == 3.0
    scorer = db.Scorer(survey, feats)
    assert row["cell_auc"][1] == scorer.score_map(maps[1])[2]
    nested = rows[db.DENSE_NESTED]
    assert len(nested["protocol"]) == 1 and nested["seconds"] == 4.0 and nested["cell_auc"][0] == row["cell_auc"][1]
    np.savez(tmp_path / "other.npz", rows=feats.rows[:-1], cols=feats.cols[:-1], seconds=3.0, repeat0=maps[0][:-1])
    with pytest.raises(SystemExit, match="other cells"):
        db.run_survey(survey, 1, variants=[db.VARIANTS[1]], log=lambda *_: None,
                      dense=np.load(tmp_path / "other.npz"))


def test_the_nested_head_choice_sees_no_heldout_cell_and_the_audit_reader_catches_a_leak(small):
    survey, feats, labels = small
    audit = db.Audit()
    block, kept = dd.pca_block(feats.blocks["multiscale"], feats.reference, dims=4)
    assert block.shape == (feats.rows.size, 4) and 0 < kept <= 1
    maps, choices = dd.nested_maps(survey, feats, labels, block, 1, audit, log=lambda *_: None)
    assert len(maps) == 1 and np.isfinite(maps[0]).all() and len(choices) == survey.folds
    assert all(c["c"] in dd.DENSE_C_GRID for c in choices)
    assert all(audit.deposits[k] for k in audit.heldout)  # inner choices were scored on deposits...
    assert dd.audit_leaks(audit) == []  # ...none of them held out
    key = next(iter(audit.heldout))
    audit.used[key].add(next(iter(audit.heldout[key]["cells"])))  # one held-out cell in a fit
    assert dd.audit_leaks(audit) == [key]


def test_the_smoothed_head_chooses_c_and_sigma_inside_and_its_map_is_the_smoothed_logit(small):
    """The smoothed row: C and sigma from the inner folds only, and its map equals the plain head's logit map
    smoothed (what janja:prospectivity runs from a card's dense.map_smoothing_cells)."""
    survey, feats, labels = small
    audit = db.Audit()
    block, _ = dd.pca_block(feats.blocks["multiscale"], feats.reference, dims=4)
    maps, choices = dd.nested_maps(survey, feats, labels, block, 1, audit, log=lambda *_: None, smoothed=True)
    assert len(maps) == 1 and np.isfinite(maps[0]).all() and len(choices) == survey.folds
    assert all(c["smooth"] in dd.SMOOTH_SCALES and c["c"] in dd.DENSE_C_GRID for c in choices)
    assert dd.audit_leaks(audit) == [] and all(audit.deposits[k] for k in audit.heldout)
    blocks = dd.smoothed_blocks(survey, feats, block, (0.0, 2.0))
    assert np.array_equal(blocks["dense@0"], block)
    y = np.isin(np.arange(feats.rows.size), feats.reference[:50]).astype(int)  # any labels: linearity only
    model = db.fit_logistic(blocks["dense@2"], y, 0.3)
    logit = np.full(survey.stack.shape, np.nan)
    w, b, mu, sd = model
    logit[feats.rows, feats.cols] = ((block - mu) / sd) @ w + b  # the same head on the unsmoothed components
    smoothed = smooth(logit, 2.0 * survey.spacing / survey.stack.cell)[feats.rows, feats.cols]
    np.testing.assert_allclose(db.predict_logistic(model, blocks["dense@2"]), smoothed, atol=1e-9)
