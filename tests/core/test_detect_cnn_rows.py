"""detect_bench reads the CNN variants' cached out-of-fold scores (bench/detect_cnn_variants.py) as rows."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import detect_bench as db  # noqa: E402


def test_a_cached_cnn_variant_becomes_a_row_scored_by_the_bench_protocol(tmp_path):
    survey = db.synthetic_survey(0, size=60, n_deposits=16)
    scorer = db.Scorer(survey, db.Features(survey))
    rng = np.random.default_rng(0)
    reps = [rng.uniform(size=len(survey.sample_x)) for _ in range(2)]
    np.savez(tmp_path / "cnn_x_synthetic.npz", seconds=12.5, label="CNN test variant", repeat0=reps[0],
             repeat1=reps[1])
    with np.load(tmp_path / "cnn_x_synthetic.npz") as z:
        rows, _, _ = db.run_survey(survey, 1, variants=[db.VARIANTS[0]], cached=[z])
    row = rows["CNN test variant"]
    assert row["protocol"] == [scorer.protocol(r)[0] for r in reps]
    assert row["seconds"] == 12.5 and len(row["cell_auc"]) == 2
