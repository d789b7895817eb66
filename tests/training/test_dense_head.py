"""Config "head_features": "dense": the head is fit on shared-trunk features and exported with the trunk/head parts,
so janja:prospectivity's fast mode is the model (card round trip, default engine, planted deposits found)."""

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from janja_plugin.core.errors import JanjaInputError  # noqa: E402
from janja_plugin.core.evaluation.evaluate import auc_mann_whitney  # noqa: E402
from janja_plugin.core.inference import dense  # noqa: E402
from janja_plugin.core.inference import model_card as mc  # noqa: E402
from janja_plugin.core.inference import prospectivity as pr  # noqa: E402
from janja_plugin.core.inference.windows import RasterStack  # noqa: E402
from janja_plugin.training.check import check  # noqa: E402
from janja_plugin.training.smoke import smoke_config, synthetic_survey  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from janja_plugin.training.pipeline import run

    out = tmp_path_factory.mktemp("dense_head")
    stack, deposits, rows, cols = synthetic_survey(out / "data")
    cfg = smoke_config(stack, deposits, head_features="dense", variants_gan=[False], name="dense_model",
                       window_pixels=15)  # 75 px: 5 px per cell (the shared trunk resizes the stack as one image)
    summary = run(cfg, out)
    return summary, stack, rows, cols, out


def test_the_card_says_dense_features_and_names_parts_that_round_trip(trained):
    summary, _, _, _, out = trained
    onnx_path = summary["export"]["onnx"]
    assert summary["export"]["dense_parts"] is True
    beside = json.loads(mc.card_path_for(onnx_path).read_text())
    embedded = mc.load_model(onnx_path, card_path=None).card.raw
    assert beside["dense"] == embedded["dense"]
    spec = beside["dense"]
    assert spec["head_trained_on"] == "dense_features" and spec["shifts"] == 1
    assert (out / spec["trunk"]).is_file() and (out / spec["head"]).is_file()
    assert "shared-trunk features" in beside["training"]["summary"]
    parts = dense.load_parts(mc.load_model(onnx_path, threads=1))  # checksums and geometry accepted by the engine
    assert (parts.stride, parts.factor) == (spec["feature_stride"], 75 // 15)


def test_prospectivity_runs_the_card_on_the_shared_trunk_and_its_map_is_the_head_on_the_features(trained):
    summary, stack_path, rows, cols, _ = trained
    model = mc.load_model(summary["export"]["onnx"], threads=1)
    result = pr.run_prospectivity(str(stack_path), model, pr.ProspectivitySettings(threads=1, stride=4))
    assert "shared trunk" in result.stats.mode and result.stride == 1
    assert "every cell is the model's exact output" in result.stride_error.sentence()
    parts = dense.load_parts(model)
    with RasterStack(str(stack_path)) as stack:
        bands = mc.match_stack(model.card, stack.names)
        r, c, f = dense.features_at(model, parts, stack, bands, np.ones((stack.nrows, stack.ncols), bool))
    expected = np.full(result.probability.shape, np.nan, np.float32)
    expected[r, c] = parts.head.run(None, {parts.head_input: f})[0][:, 1]
    np.testing.assert_array_equal(result.probability, expected)
    # and it is a model: the planted deposits rank above the background
    rr, cc = np.mgrid[0:expected.shape[0], 0:expected.shape[1]]
    d = np.min([np.hypot(rr - a, cc - b) for a, b in zip(rows, cols)], axis=0)
    assert auc_mann_whitney(expected[d == 0], expected[d > 6]) > 0.9


def test_dense_head_refuses_what_it_cannot_use(tmp_path):
    stack, deposits, _, _ = synthetic_survey(tmp_path / "data", size=32, n_deposits=4)
    base = smoke_config(stack, deposits, head_features="dense", variants_gan=[False], window_pixels=15)
    for change, words in [({"variants_gan": [True, False]}, "variants_gan to [false]"),
                          ({"finetune_blocks": 1}, "finetune_blocks to 0"),
                          ({"input_size": 80}, "input_size to 90"),
                          ({"head_features": "shared"}, "must be \"window\" or \"dense\"")]:
        with pytest.raises(JanjaInputError, match=words.replace("[", r"\[").replace("]", r"\]")):
            check(dataclasses.replace(base, **change))
