"""make train-smoke as a test: the whole pipeline on a synthetic stack with planted deposits.

The exported model is then run by the plugin's inference engine over the whole stack and must rank
the planted deposit cells above the background (AUC > 0.9). Random-initialised trunk, small run.
"""

import json

import numpy as np
import rasterio

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
    # the card knows its training data: quantiles of log10 values over the stack, the planted sites, no samples
    td = card.raw["training_data"]
    with rasterio.open(tmp_path / "data" / "synthetic_stack.tif") as ds:
        data = ds.read(masked=True)
        names = list(ds.descriptions)
    for name, band in zip(names, data):
        v = np.log10(band.compressed().astype(float))
        np.testing.assert_allclose(td["input_quantiles"]["values"][name], np.percentile(v, td["input_quantiles"][
            "percent"]), rtol=1e-5, atol=1e-6)
    assert len(td["sites"]["xy"]) == 12 and td["sites"]["crs"] == "EPSG:32750" and td["sample_spacing"] is None
    # the baseline is the target element on this survey, by the same folds; no other survey's numbers
    metrics = card.validation["metrics"]
    assert "published_baselines" not in metrics
    assert 0.5 <= metrics["baselines"]["kriged_target_window_auc_blocks"]["auc"] <= 1.0
    assert "kriged target element of the same survey" in card.raw["description"]
    assert summary["settings_used"]["block_size"]["value"] == 1600.0
    assert "Settings used, and why" in report and "Baselines on this survey" in report
