"""The detection benchmark (bench/detect_bench.py): its reduced mode runs, its nested CV never lets a held-out
deposit's block into a choice, and a planted multi-element signature is found better by the learned map than by
any single element."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import detect_bench as db  # noqa: E402


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("detect_bench")
    results, audit, folder = db.run(["--quick", "--out", str(out)])
    return results, audit, folder


def _protocol(rows, name):
    return float(np.mean(rows[name]["protocol"]))


def _cell(rows, name):
    v = np.asarray(rows[name]["cell_auc"], float)
    return float(np.mean(v)) if np.isfinite(v).all() else float("nan")


def test_quick_mode_writes_one_table_with_every_contender(quick):
    results, _, folder = quick
    md = (folder / "detect_bench.md").read_text()
    csv = (folder / "detect_bench.csv").read_text().strip().splitlines()
    (rows, choices, _), = results.values()
    for name in ["log target (sample values)", "kriged target", "robust Mahalanobis (ilr, MCD) of all elements",
                 db.NESTED, *[v.name for v in db.VARIANTS], db.UNSUP_MCD, db.UNSUP_SIGNED, db.UNSUP_TARGET,
                 db.UNSUP_PCA]:
        assert name in rows and name in md
    assert any("smoothed at 2 sample spacings" in n for n in rows)
    assert len(csv) == 1 + len(rows)
    assert len(choices) == 2 * 4  # 2 repeats x 4 outer folds, each with its own nested choice
    assert all(len(rows[v.name]["protocol"]) == 2 for v in db.VARIANTS)


def test_nested_cv_never_lets_a_heldout_deposit_block_into_any_choice(quick):
    _, audit, _ = quick
    assert audit.heldout, "the benchmark recorded no outer folds"
    for key, held in audit.heldout.items():
        used = audit.used[key]
        labels = audit.labels[key[0]]
        assert used and held["cells"] and held["deposits"]
        assert not used & held["cells"], f"{key}: a held-out cell informed a fit or a choice"
        used_idx = np.fromiter(used, int)
        touched = set(labels.nearest_deposit[used_idx][labels.y[used_idx] == 1].tolist())
        assert not touched & held["deposits"], f"{key}: a held-out deposit's cells were used"
        scored = audit.deposits[key]  # deposits whose nearest sample scored an inner choice
        assert scored and not scored & held["deposits"], f"{key}: a held-out deposit scored an inner choice"


def test_the_audit_catches_a_leak():
    """The instrument itself can fail: fitting on every labelled cell shows up as a leak into each fold."""
    survey = db.synthetic_survey(0, size=60, n_deposits=16)
    feats = db.Features(survey)
    labels = db.ds.label_cells(survey.stack, feats.valid, survey.dep_x, survey.dep_y, survey.positive_within,
                               survey.negative_beyond, survey.max_negatives)
    lookup = np.full(survey.stack.shape, -1)
    lookup[feats.rows, feats.cols] = np.arange(feats.rows.size)
    audit = db.Audit()
    learner = db.Learner(survey, feats, labels, lookup[labels.rows, labels.cols], audit)
    folds = db.ds.spatial_block_folds(survey.stack, labels, survey.dep_x, survey.dep_y, survey.block_size, 4, 0)
    learner.choose_and_fit(db.VARIANTS[0], np.arange(labels.y.size), "leaky", 0)  # no fold left out
    assert audit.used["leaky"] & set(np.nonzero(folds == 0)[0].tolist())


def test_planted_signature_is_found_better_by_the_learned_map_than_by_any_single_element(quick):
    results, _, _ = quick
    (rows, _, _), = results.values()
    singles = ["log target (sample values)", "kriged target"] + [n for n in rows if n.startswith("single element")]
    assert len(singles) == 6  # log target, and the five elements' maps
    best_single = max(_protocol(rows, n) for n in singles)
    assert _protocol(rows, db.NESTED) > best_single + 0.05
    best_single_cells = max(_cell(rows, n) for n in singles if np.isfinite(_cell(rows, n)))
    assert _cell(rows, db.NESTED) > best_single_cells + 0.03


def test_an_unknown_survey_name_is_refused_with_the_choices():
    with pytest.raises(SystemExit):
        db.run(["--surveys", "mars"])


def test_the_protocol_keeps_duplicate_samples_as_the_published_benchmark_does():
    """The 0.922 yardstick (kriged Au on WA) is the benchmark's protocol, duplicates kept; janja:evaluate's default
    merge reorders the samples and so changes the draws (WA kriged Au 0.907). The bench scores like the yardstick."""
    from janja_plugin.core.evaluation.evaluate import sample_protocol_auc

    survey = db.synthetic_survey(0)
    xy = np.column_stack([survey.sample_x, survey.sample_y])
    assert len(np.unique(xy, axis=0)) < len(xy)  # the synthetic samples repeat some locations
    feats = db.Features(survey)
    scorer = db.Scorer(survey, feats)
    m = feats.kriged[feats.valid]
    at = np.where(scorer.sample_cell >= 0, m[np.maximum(scorer.sample_cell, 0)], np.nan)
    sx, sy, dx, dy = survey.protocol_xy
    kept = sample_protocol_auc(sx, sy, at, dx, dy, min_distance_km=survey.protocol_km, geographic=False,
                               merge_duplicates=False)
    merged = sample_protocol_auc(sx, sy, at, dx, dy, min_distance_km=survey.protocol_km, geographic=False)
    assert kept.auc_mean != merged.auc_mean
    assert scorer.protocol(at) == (kept.auc_mean, kept.auc_sd)


def test_named_variants_and_a_fresh_seed_give_a_confirmation_run_its_own_folds_and_candidates():
    """A confirmation run names its candidates before it runs (--variants) and draws fresh outer folds (--seed):
    the nested row may choose only among the named ones, and another seed holds out other cells."""
    survey = db.synthetic_survey(0, size=60, n_deposits=16)
    named = [db.VARIANTS[db.VARIANT_KEYS.index(k)] for k in ("logz", "rank")]
    heldout = {}
    for seed in (0, 7):
        audit = db.Audit()
        rows, choices, _ = db.run_survey(survey, 1, log=lambda *_: None, audit=audit, variants=named, seed=seed)
        assert {c["chosen"] for c in choices} <= {v.name for v in named}
        assert not [v.name for v in db.VARIANTS if v not in named and v.name in rows]
        heldout[seed] = [frozenset(h["cells"]) for h in audit.heldout.values()]
    assert heldout[0] != heldout[7]


def test_an_unknown_variant_name_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit):
        db.run(["--surveys", "synthetic", "--variants", "logz,cnn"])
    assert "gbm" in capsys.readouterr().err


def test_the_command_line_passes_the_named_variants_and_seed_to_every_survey(monkeypatch, tmp_path):
    seen = []

    def fake_run_survey(survey, repeats, **kw):
        seen.append((survey.name, repeats, [v.name for v in kw["variants"]], kw["seed"]))
        return {}, [], 0.0

    monkeypatch.setattr(db, "run_survey", fake_run_survey)
    db.run(["--surveys", "synthetic", "--synthetic", "2", "--repeats", "3", "--seed", "7", "--variants", "gbm,rank",
            "--out", str(tmp_path)])
    want = [db.VARIANTS[db.VARIANT_KEYS.index("gbm")].name, db.VARIANTS[db.VARIANT_KEYS.index("rank")].name]
    assert [s[1:] for s in seen] == [(3, want, 7)] * 2
