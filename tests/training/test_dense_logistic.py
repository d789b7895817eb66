"""dense_head "logistic": bench/detect_dense.py's smoothed logistic model built by the training script.

The composed linear head equals standardise -> components -> logistic; the exported model run by janja:prospectivity's
engine (head logits, map smoothed) equals the logistic logit map smoothed in numpy; the protocol's C and sigma are
chosen without the held-out fold; the config is refused with sentences.
"""

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from janja_plugin.core.errors import JanjaInputError  # noqa: E402
from janja_plugin.training import dense_logistic as dl  # noqa: E402
from janja_plugin.training.check import check  # noqa: E402
from janja_plugin.training.logistic import fit_logistic, predict_logistic  # noqa: E402
from janja_plugin.training.smoke import smoke_config, synthetic_survey  # noqa: E402


def samples_layer(folder, size, cell=100.0, step=3, x0=500000.0, y0=7000000.0):
    """Sample points every `step` cells over the synthetic survey (a sample spacing of step x cell)."""
    csv = folder / "samples.csv"
    pts = [(x0 + (c + 0.5) * cell, y0 - (r + 0.5) * cell) for r in range(1, size, step) for c in range(1, size, step)]
    csv.write_text("id,x,y\n" + "".join(f"{i},{x},{y}\n" for i, (x, y) in enumerate(pts)))
    vrt = folder / "samples.vrt"
    vrt.write_text(f"""<OGRVRTDataSource><OGRVRTLayer name="samples">
<SrcDataSource>{csv}</SrcDataSource><GeometryType>wkbPoint</GeometryType><LayerSRS>EPSG:32750</LayerSRS>
<GeometryField encoding="PointFromColumns" x="x" y="y"/></OGRVRTLayer></OGRVRTDataSource>""")
    return vrt


def logistic_config(stack, deposits, samples, **overrides):
    settings = dict(head_features="dense", dense_head="logistic", variants_gan=[False], name="dense_logistic",
                    window_pixels=15, samples=str(samples), map_smoothing_spacings=[0, 1], logistic_c=[0.003, 0.3])
    settings.update(overrides)
    return smoke_config(stack, deposits, **settings)


# ------------------------------------------------------------------ the composed head


def test_composed_linear_head_equals_standardise_components_logistic():
    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, 1.0, (600, 40)) * rng.uniform(0.1, 10, 40)  # features of very different scales
    y = (x[:, :3].sum(axis=1) + rng.normal(0, 2, 600) > np.median(x[:, :3].sum(axis=1))).astype(np.int64)
    mu, sd, basis, kept = dl.fit_pca(x, dims=8, sample=400, seed=1)
    p = dl.project(x, mu, sd, basis)
    assert basis.shape == (40, 8) and 0 < kept < 1
    model = fit_logistic(p, y, 0.3)
    expected = predict_logistic(model, p)
    big_w, big_b = dl.compose(mu, sd, basis, model)
    np.testing.assert_allclose(x @ big_w + big_b, expected, rtol=1e-5, atol=1e-5)
    head = dl.linear_head(big_w, big_b)
    with torch.no_grad():
        out = head(torch.as_tensor(x, dtype=torch.float32)).numpy()
    np.testing.assert_array_equal(out[:, 0], 0.0)  # [0, z]: the log-odds of the second class are z itself
    np.testing.assert_allclose(out[:, 1], expected, rtol=1e-5, atol=1e-4)


# ------------------------------------------------------------------ nested choice: no held-out label informs it


def nested_problem(seed=0, n=400, k=4):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, 6))
    y = (p[:, 0] + 0.8 * p[:, 1] + rng.normal(0, 1.2, n) > 0.8).astype(np.int64)
    blocks = {0.0: p, 1.0: p + rng.normal(0, 0.7, p.shape), 2.0: 0.5 * p + rng.normal(0, 1.0, p.shape)}
    folds = rng.integers(0, k, n)
    return blocks, y, folds, k


def inner_by_position(train):
    return train % 3, 3  # a fixed inner split of the training positions only


def test_protocol_choice_of_a_fold_cannot_see_its_held_out_labels():
    blocks, y, folds, k = nested_problem()
    lab_at = np.arange(y.size)
    grid = [1e-3, 0.03, 1.0, 30.0]
    score_at = {f: np.nonzero(folds == f)[0] for f in range(k)}
    choices, _, scores, audit = dl.nested_out_of_fold(blocks, lab_at, y, folds, k, grid, inner_by_position, score_at)
    for f in range(k):
        assert not audit[f] & set(np.nonzero(folds == f)[0].tolist())
        y2 = y.copy()
        held = folds == f
        y2[held] = np.random.default_rng(f).permutation(1 - y[held])  # the held-out labels moved
        choices2, _, scores2, _ = dl.nested_out_of_fold(blocks, lab_at, y2, folds, k, grid, inner_by_position,
                                                        score_at)
        assert (choices2[f]["c"], choices2[f]["sigma"]) == (choices[f]["c"], choices[f]["sigma"])
        np.testing.assert_array_equal(scores2[f], scores[f])


def test_the_label_move_does_change_a_choice_that_sees_all_folds():
    """The test above has power: the same label moves change the (leaky) choice made on all folds' labels."""
    blocks, y, folds, k = nested_problem()
    grid = [1e-3, 0.03, 1.0, 30.0]
    full = dl.best(dl.grid_table(blocks, np.arange(y.size), y, folds, k, grid))
    changed = 0
    for f in range(k):
        y2 = y.copy()
        held = folds == f
        y2[held] = np.random.default_rng(f).permutation(1 - y[held])
        moved = dl.best(dl.grid_table(blocks, np.arange(y.size), y2, folds, k, grid))
        changed += (moved["c"], moved["sigma"], moved["mean"]) != (full["c"], full["sigma"], full["mean"])
    assert changed == k


# ------------------------------------------------------------------ the whole run, exported, read by the engine


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from janja_plugin.training.pipeline import run

    out = tmp_path_factory.mktemp("dense_logistic")
    stack, deposits, rows, cols = synthetic_survey(out / "data")
    cfg = logistic_config(stack, deposits, samples_layer(out / "data", 64), map_smoothing_spacings=[0.5, 1],
                          repeats=2)
    summary = run(cfg, out)
    return summary, stack, out


def test_the_card_carries_a_logit_head_its_smoothing_and_the_held_out_choice(trained):
    from janja_plugin.core.inference import model_card as mc

    summary, _, out = trained
    card = json.loads(mc.card_path_for(summary["export"]["onnx"]).read_text())
    info = summary["dense_logistic"]
    spec = card["dense"]
    assert spec["head_output"] == "logits" and spec["head_trained_on"] == "dense_features"
    assert info["map_smoothing_spacings"] in (0.5, 1.0) and info["c"] in (0.003, 0.3)
    sigma_cells = info["map_smoothing_spacings"] * summary["sample_spacing"] / 100  # 100 m cells
    assert spec["map_smoothing_cells"] == pytest.approx(sigma_cells) and sigma_cells > 0
    metrics = card["validation"]["metrics"]
    assert metrics["dense_logistic"]["c"] == info["c"] and len(metrics["dense_logistic"]["cv_table"]) == 4
    assert metrics["protocol_auc_held_out_blocks"] == pytest.approx(summary["protocol"]["auc_mean"], abs=1e-4)
    assert "kriged_target_protocol_auc" in metrics["baselines"]  # the learned score beside the kriged target's
    proto = summary["protocol"]  # two block splits: one split is luck, the verdict reads their mean
    assert proto["splits"] == 2 and len(proto["nested_choices"]) == 2 * 3 and len(proto["auc_per_split"]) == 2
    assert proto["auc_mean"] == pytest.approx(np.mean(proto["auc_per_split"]))
    assert {c["split"] for c in proto["nested_choices"]} == {0, 1}
    report = (out / "training_report.html").read_text()
    assert "kriged target" in report and "C x smoothing" in report and "mean over 2 block split(s)" in report


def test_exported_head_with_engine_smoothing_is_the_smoothed_logistic_logit_map(trained):
    """The engine (janja:prospectivity's core) on the exported card equals, in numpy: features_at -> standardise ->
    components -> logistic logit -> NaN-aware Gaussian of map_smoothing_cells over the valid cells."""
    from janja_plugin.core.inference import dense
    from janja_plugin.core.inference import model_card as mc
    from janja_plugin.core.inference import prospectivity as pr
    from janja_plugin.core.inference.windows import RasterStack

    summary, stack_path, _ = trained
    model = mc.load_model(summary["export"]["onnx"], threads=1)
    sigma = model.card.dense["map_smoothing_cells"]
    assert sigma >= 1.5  # 0.5 or 1 sample spacing of 3 cells: the engine's smoothing is exercised
    parts = dense.load_parts(model)
    with RasterStack(str(stack_path)) as stack:
        bands = mc.match_stack(model.card, stack.names)
        r, c, f = dense.features_at(model, parts, stack, bands, np.ones((stack.nrows, stack.ncols), bool))
    z = parts.head.run(None, {parts.head_input: f})[0]
    logit = np.full((64, 64), np.nan)
    logit[r, c] = z[:, 1] - z[:, 0]
    expected = dl.smooth(logit, sigma)
    result = pr.run_prospectivity(str(stack_path), model, pr.ProspectivitySettings(threads=1))
    prob = result.probability.astype(np.float64)
    ok = np.isfinite(expected)
    np.testing.assert_array_equal(np.isfinite(prob), ok)
    np.testing.assert_allclose(prob[ok], 1 / (1 + np.exp(-expected[ok])), atol=1e-5)


def test_smoothing_the_logit_map_is_fitting_on_smoothed_components():
    """Why one linear head + the engine's smoothing is the bench's model: smoothing commutes with the linear head."""
    rng = np.random.default_rng(5)
    shape = (30, 40)
    valid = rng.random(shape) > 0.2
    rows, cols = np.nonzero(valid)
    p = rng.normal(size=(rows.size, 5))
    w, b = rng.normal(size=5), 0.7
    s = dl.smoothed_components(p, rows, cols, shape, 2.5)
    grid = np.full(shape, np.nan)
    grid[rows, cols] = p @ w + b
    np.testing.assert_allclose(dl.smooth(grid, 2.5)[rows, cols], s @ w + b, rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------ refusals


def test_logistic_config_refusals_are_sentences(tmp_path):
    stack, deposits, _, _ = synthetic_survey(tmp_path / "data", size=32, n_deposits=6)
    samples = samples_layer(tmp_path / "data", 32)
    base = logistic_config(stack, deposits, samples, folds=3, positive_within=150.0, negative_beyond=400.0,
                           block_size=800.0)
    cases = [({"dense_head": "ridge"}, 'dense_head must be "mlp" or "logistic"'),
             ({"head_features": "window"}, 'set head_features to "dense"'),
             ({"map_smoothing_spacings": []}, "map_smoothing_spacings must be a non-empty list"),
             ({"map_smoothing_spacings": [0, -1]}, r"map_smoothing_spacings must hold numbers >= 0 only; \[-1\]"),
             ({"map_smoothing_spacings": ["2"]}, "map_smoothing_spacings must hold numbers"),
             ({"logistic_c": [0.3, 0]}, r"logistic_c must hold positive numbers only; \[0\]"),
             ({"logistic_c": "0.3"}, "logistic_c must be a non-empty list"),
             ({"logistic_c": [float("nan")]}, "logistic_c must hold positive numbers"),
             ({"subsets": [["Au_ppb"], ["Au_ppb", "Ag_ppm", "Cu_ppm"]]}, "name it in bundle_subset"),
             ({"subsets": [["Au_ppb"]], "bundle_subset": ["Cu_ppm"]}, "is not one of the config's subsets"),
             ({"folds": 2}, "needs folds of at least 3"),
             ({"samples": None}, r"no sample spacing is known .* set map_smoothing_spacings to \[0\]")]
    for change, words in cases:
        with pytest.raises(JanjaInputError, match=words):
            check(dataclasses.replace(base, **change))
    # the mlp head ignores the logistic keys' values but still refuses nonsense in them; valid ones pass
    assert check(dataclasses.replace(base, subsets=[["Au_ppb"], ["Au_ppb", "Ag_ppm", "Cu_ppm"]],
                                     bundle_subset=["Au_ppb"])).cfg.dense_head == "logistic"
    assert check(dataclasses.replace(base, samples=None, map_smoothing_spacings=[0])).cfg.logistic_c == [0.003, 0.3]
