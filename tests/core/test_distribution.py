"""The out-of-distribution guard and the constant-map flag of every learned map (core/inference/distribution.py)."""

import json

import numpy as np
import pytest
import rasterio
from test_model_card import build_model, card_dict
from test_prospectivity import ELEMENTS, GRID, hot_spots, write_model, write_stack_file

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.inference import distribution as dist
from janja_plugin.core.inference import model_card as mc
from janja_plugin.core.inference import prospectivity as pr
from janja_plugin.core.reporting.report import HtmlReport


def training_data_for(data, elements=ELEMENTS):
    specs = mc.card_from_dict(card_dict(elements=elements, channels=len(elements), window=3, size=6)).elements
    return {"input_quantiles": dist.input_quantiles([d.ravel() for d in data], specs), "cell_size": 250.0,
            "sample_spacing": 400.0, "sites": {"crs": "EPSG:28350", "xy": [[401000.0, 6499000.0]]}}


def model_with_training_data(tmp_path, data):
    card, weights = write_model(tmp_path)
    card["training_data"] = training_data_for(data)
    build_model(tmp_path / "m.onnx", card, weights=weights, pool=True)
    return card


def test_input_quantiles_are_percentiles_of_the_transformed_values():
    data = hot_spots()
    td = training_data_for(data)
    assert td["input_quantiles"]["percent"] == list(dist.QUANTILE_PERCENT)
    expected = np.percentile(np.log10(data[0].astype(np.float64)), dist.QUANTILE_PERCENT)
    np.testing.assert_allclose(td["input_quantiles"]["values"]["Au_ppb"], expected, rtol=1e-12)


def test_card_with_training_data_validates_and_bad_ones_are_refused():
    td = training_data_for(hot_spots())
    card = mc.card_from_dict(card_dict(elements=ELEMENTS, channels=2, window=3, size=6, training_data=td))
    assert card.training_data["sample_spacing"] == 400.0
    missing = json.loads(json.dumps(td))
    del missing["input_quantiles"]["values"]["As_ppm"]
    with pytest.raises(JanjaInputError, match="no percentiles for the element 'As_ppm'"):
        mc.card_from_dict(card_dict(elements=ELEMENTS, channels=2, window=3, size=6, training_data=missing))
    unordered = json.loads(json.dumps(td))
    unordered["input_quantiles"]["values"]["Au_ppb"][3] = 99.0
    with pytest.raises(JanjaInputError, match="non-decreasing"):
        mc.card_from_dict(card_dict(elements=ELEMENTS, channels=2, window=3, size=6, training_data=unordered))


def test_card_without_training_data_loads_with_a_warning(tmp_path):
    write_model(tmp_path)
    model = mc.load_model(tmp_path / "m.onnx", threads=1)
    assert any("does not record its training data" in n for n in model.notes)
    data = hot_spots()
    model_with_training_data(tmp_path, data)
    assert mc.load_model(tmp_path / "m.onnx", threads=1).notes == []


def test_training_survey_itself_passes_with_about_two_percent_outside(tmp_path):
    data = hot_spots()
    model_with_training_data(tmp_path, data)
    stack = write_stack_file(tmp_path / "s.tif", data)
    result = pr.run_prospectivity(stack, tmp_path / "m.onnx", pr.ProspectivitySettings(threads=1))
    assert result.distribution.source == "percentiles"
    assert all(e.fraction_outside <= 0.03 for e in result.distribution.elements)
    assert not result.extrapolated and not any(n.startswith("EXTRAPOLATION") for n in result.notes)


def test_shifted_stack_is_refused_naming_elements_and_remedies(tmp_path):
    data = hot_spots()
    model_with_training_data(tmp_path, data)
    shifted = data.copy()
    shifted[0] *= 1e4  # Au four log10 units (many SD) higher: another medium or unit
    stack = write_stack_file(tmp_path / "s.tif", shifted)
    with pytest.raises(JanjaInputError) as err:
        pr.run_prospectivity(stack, tmp_path / "m.onnx", pr.ProspectivitySettings(threads=1))
    text = str(err.value)
    assert "Au_ppb" in text and "As_ppm" not in text.split("in ")[1].split("(")[0]
    assert "Retrain" in text and "Extrapolate beyond the training data" in text and "training 1–99 % range" in text


def test_extrapolate_runs_and_marks_every_output(tmp_path):
    data = hot_spots()
    model_with_training_data(tmp_path, data)
    shifted = data.copy()
    shifted[0] *= 1e4
    stack = write_stack_file(tmp_path / "s.tif", shifted)
    result = pr.run_prospectivity(stack, tmp_path / "m.onnx", pr.ProspectivitySettings(threads=1, extrapolate=True))
    assert result.extrapolated and any(n.startswith("EXTRAPOLATION") for n in result.notes)
    assert result.constant and result.targets == []  # as on the surveys of other media: p = 1 everywhere
    pr.write_rasters(result, tmp_path / "p.tif", tmp_path / "c.tif")
    for name in ("p.tif", "c.tif"):
        with rasterio.open(tmp_path / name) as ds:
            assert ds.tags()["janja_extrapolation"] == "yes"
    rep = HtmlReport("r")
    pr.report_section(rep, result)
    assert "Prospectivity — EXTRAPOLATION" in rep.html()


def test_older_card_is_checked_against_mean_and_sd(tmp_path):
    write_model(tmp_path)  # no training_data: Au mean 0.5, SD 0.4 (log10 ppb)
    shifted = hot_spots()
    shifted[0] *= 1e4
    stack = write_stack_file(tmp_path / "s.tif", shifted)
    with pytest.raises(JanjaInputError, match="Au_ppb"):
        pr.run_prospectivity(stack, tmp_path / "m.onnx", pr.ProspectivitySettings(threads=1))


def test_constant_output_gives_no_classes_no_targets_and_a_flag(tmp_path):
    data = hot_spots()
    card = card_dict(elements=ELEMENTS, channels=2, window=3, size=6, training_data=training_data_for(data))
    zero = np.zeros((2, 2), np.float32), np.array([0.0, 8.0], np.float32)  # p = softmax(0, 8)[1] everywhere
    build_model(tmp_path / "m.onnx", card, weights=zero, pool=True)
    stack = write_stack_file(tmp_path / "s.tif", data)
    cells = (np.array([3]), np.array([3]))
    result = pr.run_prospectivity(stack, tmp_path / "m.onnx", pr.ProspectivitySettings(threads=1),
                                  deposit_cells=cells)
    assert result.constant and result.targets == [] and not result.classes.any() and not result.labels.any()
    assert result.notes[0].startswith("CONSTANT MAP")
    rep = HtmlReport("r")
    pr.report_section(rep, result)
    assert "CONSTANT MAP" in rep.html()
    pr.write_rasters(result, tmp_path / "p.tif")
    with rasterio.open(tmp_path / "p.tif") as ds:
        assert ds.tags()["janja_constant"] == "yes"


def test_a_sharp_map_with_few_high_cells_is_not_constant():
    p = np.zeros((100, 100))
    p[:3, :5] = 0.99  # 0.15 % of the map high
    assert dist.constant_map(p) == (False, pytest.approx(0.99))
    assert dist.constant_map(np.full((10, 10), 2.3e-6))[0]
    assert dist.constant_map(np.full((10, 10), np.nan))[0]


def test_tags_carry_training_sites_and_held_out_numbers(tmp_path):
    data = hot_spots()
    card = model_with_training_data(tmp_path, data)
    card["validation"] = {"method": "spatial_blocks", "metrics": {
        "protocol_auc_held_out_blocks": 0.8, "protocol_auc_sd": 0.05, "kriged_target_protocol_auc": 0.9}}
    tags = pr.output_tags(mc.card_from_dict(card), False, False)
    assert json.loads(tags["janja_training_sites"])["xy"] == [[401000.0, 6499000.0]]
    assert json.loads(tags["janja_held_out"]) == {"learned": [0.8, 0.05],
                                                 "baselines": {"kriged_target_protocol_auc": 0.9}}
    rows, verdict = pr.held_out_verdict(mc.card_from_dict(card))
    assert "does NOT beat the kriged target" in verdict and len(rows) == 2
    assert GRID.cell == 250.0


def test_held_out_summary_reads_baselines_computed_by_training():
    card = card_dict(elements=ELEMENTS, channels=2, window=3, size=6)
    card["validation"] = {"method": "spatial_blocks", "metrics": {
        "protocol_auc_held_out_blocks": 0.97, "protocol_auc_sd": 0.02,
        "baselines": {"kriged_target_protocol_auc": {"auc": 0.93, "sd": 0.03, "how": "x"},
                      "log_target_protocol_auc": {"auc": 0.7, "sd": 0.04, "how": "y"},
                      "kriged_target_window_auc_blocks": {"auc": 0.99, "sd": 0.01, "how": "windows, not samples"}}}}
    summary = pr.held_out_summary(mc.card_from_dict(card))
    assert summary["baselines"] == {"kriged_target_protocol_auc": 0.93, "log_target_protocol_auc": 0.7}
    rows, verdict = pr.held_out_verdict(mc.card_from_dict(card))
    assert verdict.startswith("On held-out deposits the learned map (0.970) beats") and len(rows) == 3


def test_bundled_card_carries_its_detection_benchmark_table():
    """The bundled classifier's card holds the nested-CV table of make detect-bench, shown in every report."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "models" / "wa_au_inception.json"
    card = mc.card_from_dict(json.loads(path.read_text()))
    title, rows = pr.benchmark_rows(card)
    maps = [r[0] for r in rows]
    assert "kriged target" in maps and any(m.startswith("study configuration") for m in maps)
    kriged = float(rows[maps.index("kriged target")][1].split(" ")[0])
    assert kriged == pytest.approx(0.922, abs=0.001)  # the yardstick of ../shared/data/README.md
    rep = HtmlReport("r")
    rep.table(["Map", "AUC", "cell"], rows)
    assert "Detection benchmark on WA sed1" in title


def test_bundled_anomaly_model_says_first_that_it_loses_to_kriged_au():
    """The unsupervised score is a learned score too: its report leads with 0.637 against kriged Au's 0.922."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "models" / "wa_anomaly" / "wa_anomaly_fanogan.json"
    card = mc.card_from_dict(json.loads(path.read_text()))
    rows, verdict = pr.held_out_verdict(card)
    assert "does NOT beat the kriged target" in verdict and "0.637 against 0.922" in verdict
    assert "known sites never used in training" in rows[0][0]


def detection_benchmark_auc(survey, contender, exact=False):
    """The protocol AUC of one row of the README's detection-benchmark table (the numbers the reports quote)."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = text[text.index("## Detection benchmark"):]
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 2 and cells[0].startswith(survey) and (
                cells[1] == contender if exact else cells[1].startswith(contender)):
            return cells[2].split(" ")[0]
    raise AssertionError(f"no row {survey!r} / {contender!r} in the README's detection-benchmark table")


def test_a_losing_learned_map_points_to_the_label_free_map_with_the_benchmark_numbers():
    """Where the learned map loses, the kriged target's classes are recommended and janja:spatial_anomaly is named
    as the label-free multi-element map beside them, with the README benchmark's numbers for both surveys."""
    card = card_dict(elements=ELEMENTS, channels=2, window=3, size=6)
    card["validation"] = {"method": "spatial_blocks", "metrics": {
        "protocol_auc_held_out_blocks": 0.853, "protocol_auc_sd": 0.035, "kriged_target_protocol_auc": 0.922}}
    _, verdict = pr.held_out_verdict(mc.card_from_dict(card))
    assert "does NOT beat the kriged target" in verdict and "recommended map is the kriged target" in verdict
    assert "janja:spatial_anomaly" in verdict, verdict
    pointer = verdict[verdict.index("janja:spatial_anomaly") - 80:]
    signed = "unsupervised:   … counted only where the target's window rank"
    expected = [detection_benchmark_auc("WA sed1", signed), detection_benchmark_auc("WA sed1", "kriged target", True),
                detection_benchmark_auc("South Tianshan (1 km", signed),
                detection_benchmark_auc("South Tianshan (1 km", "kriged target", True)]
    positions = [pointer.index(v) for v in expected]
    assert positions == sorted(positions), pointer  # in the order WA map, WA Au, Tianshan map, Tianshan Au
    assert "label-free" in pointer and "WA sed1" in pointer and "South Tianshan" in pointer
    assert len([s for s in verdict.split(". ") if "spatial_anomaly" in s]) == 1  # one sentence, not a section

    _, gan = pr.held_out_verdict(mc.card_from_dict(card), label_free_alternative=False)  # anomaly_score's own
    assert "does NOT beat" in gan and "spatial_anomaly" not in gan  # report says it first, not twice
    card["validation"]["metrics"]["protocol_auc_held_out_blocks"] = 0.95  # a learned map that wins says nothing
    _, verdict = pr.held_out_verdict(mc.card_from_dict(card))
    assert verdict.startswith("On held-out deposits the learned map") and "spatial_anomaly" not in verdict
