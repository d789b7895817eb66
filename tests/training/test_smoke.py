"""make train-smoke as a test: the whole pipeline on a synthetic stack with planted deposits.

The exported model is then run by the plugin's inference engine over the whole stack and must rank
the planted deposit cells above the background (AUC > 0.9). Random-initialised trunk, small run.
"""

import json

from janja_plugin.core.inference import model_card
from janja_plugin.training.smoke import run_smoke


def test_smoke_pipeline_finds_planted_deposits(tmp_path):
    result = run_smoke(tmp_path)
    assert result["planted_auc"] > 0.9, result
    card = model_card.load_model(result["onnx"]).card
    assert card.validation["method"] == "spatial_blocks"
    assert card.element_names == ["Au_ppb", "Ag_ppm", "Cu_ppm"]
    summary = json.loads((tmp_path / "training_summary.json").read_text())
    assert summary["counts"]["positive"] > 0 and summary["experiment_means"]
    assert summary["export"]["max_abs_diff_fp32_vs_torch"] <= 1e-4
    report = (tmp_path / "training_report.html").read_text()
    assert "WGAN-GP losses" in report and "Training curves" in report
