"""A shared-trunk model whose card smooths its head's log-odds map (dense.map_smoothing_cells).

The detection benchmark's best shared-trunk model (bench/detect_dense.py --smoothed-only) is a logistic head
whose logit map is smoothed; the engine must give exactly that map: the head's log-odds at every valid cell,
the NaN-aware Gaussian of core/smoothing.py, then the probability — the same with a mask as without.
"""

import json

import numpy as np
import pytest
from test_dense import ELEMENTS, build_dense_model, stack_with_gaps
from test_windows import synthetic_stack

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.inference import dense
from janja_plugin.core.inference import model_card as mc
from janja_plugin.core.inference import windows as wn
from janja_plugin.core.smoothing import halo_cells, smooth

SIGMA = 1.5


def bigger_stack(rows=23, cols=29, seed=5):
    data = synthetic_stack(len(ELEMENTS), rows, cols, seed=seed)
    data[0, 4:7, 10:12] = np.nan  # a hole the smoothing must leave out, not read as zeros
    data[1, 15, 0] = -9999.0
    return wn.ArrayStack(data, [e[0] for e in ELEMENTS], nodata=-9999.0)


def head_log_odds_map(path, stack):
    """The head's log-odds at every valid cell, computed here from features_at and the head's raw output."""
    model = mc.load_model(path, threads=1)
    parts = dense.load_parts(model)
    rows, cols, f = dense.features_at(model, parts, stack, [0, 1], np.ones((stack.nrows, stack.ncols), bool))
    raw = parts.head.run(None, {parts.head_input: f})[0].astype(np.float64)
    z = np.full((stack.nrows, stack.ncols), np.nan)
    z[rows, cols] = raw[:, 1] - raw[:, 0] if raw.shape[1] == 2 and model.card.dense.get("head_output") == "logits" \
        else np.log(raw[:, 1]) - np.log(raw[:, 0])
    return model, parts, z


@pytest.mark.parametrize("head_output", ["logits", "probabilities"])
def test_the_map_is_the_smoothed_log_odds_of_the_head(tmp_path, head_output):
    path = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1, head_trained_on="dense_features",
                             head_output=head_output, map_smoothing_cells=SIGMA)
    stack = bigger_stack()
    model, parts, z = head_log_odds_map(path, stack)
    got, valid, _ = dense.predict_dense(model, parts, stack, [0, 1])
    expected = 1.0 / (1.0 + np.exp(-smooth(z, SIGMA)))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7, equal_nan=True)
    assert np.array_equal(np.isfinite(got), valid)
    plain = 1.0 / (1.0 + np.exp(-z))
    assert np.nanmax(np.abs(got - plain)) > 0.01  # the smoothing changed the map (so the test can fail)


def test_a_mask_gives_the_same_cells_as_the_whole_map(tmp_path):
    path = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1, head_trained_on="dense_features",
                             head_output="logits", map_smoothing_cells=SIGMA)
    stack = bigger_stack()
    model = mc.load_model(path, threads=1)
    parts = dense.load_parts(model)
    whole, _, _ = dense.predict_dense(model, parts, stack, [0, 1])
    mask = np.zeros((stack.nrows, stack.ncols), bool)
    mask[9:13, 14:17] = True  # far from the edge: its halo lies inside the stack
    mask[0, 0] = True  # at the corner: the reflected halo
    got, _, stats = dense.predict_dense(model, parts, stack, [0, 1], mask=mask)
    np.testing.assert_array_equal(got[mask], whole[mask])
    assert np.isnan(got[~mask]).all()
    assert stats.n_windows > mask.sum()  # the halo's windows ran too (halo_cells(1.5) = 6)
    assert halo_cells(SIGMA) == 6


def test_no_smoothing_and_zero_smoothing_are_the_head_itself(tmp_path):
    paths = []
    for name, sigma in (("a", None), ("b", 0)):
        (tmp_path / name).mkdir()
        paths.append(build_dense_model(tmp_path / name, window=3, size=6, stride=4, zero_ring=1,
                                       head_trained_on="dense_features", map_smoothing_cells=sigma))
    stack = stack_with_gaps()
    maps = []
    for path in paths:
        model = mc.load_model(path, threads=1)
        maps.append(dense.predict_dense(model, dense.load_parts(model), stack, [0, 1])[0])
    np.testing.assert_array_equal(maps[0], maps[1])


def test_a_linear_map_of_smoothed_bands_is_the_smoothed_linear_map():
    """Why the benchmark may fit its logistic head on smoothed components and ship the head + this smoothing."""
    rng = np.random.default_rng(3)
    bands = rng.normal(size=(4, 17, 19))
    bands[:, 3:5, 6:9] = np.nan
    bands[:, 0, :] = np.nan
    w, b = rng.normal(size=4), 0.7
    lhs = np.tensordot(w, np.stack([smooth(x, 2.0) for x in bands]), axes=1) + b
    rhs = smooth(np.tensordot(w, bands, axes=1) + b, 2.0)
    np.testing.assert_allclose(lhs, rhs, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("value", [-1.0, "2", 1e6])
def test_a_bad_smoothing_in_the_card_is_refused_with_the_field_named(tmp_path, value):
    path = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1, head_trained_on="dense_features")
    card = json.loads(mc.card_path_for(path).read_text())
    card["dense"]["map_smoothing_cells"] = value
    with pytest.raises(JanjaInputError, match="map_smoothing_cells"):
        mc.card_from_dict(card)
    card["dense"]["map_smoothing_cells"] = 1.0
    card["dense"]["head_output"] = "log-probabilities"
    with pytest.raises(JanjaInputError, match="head_output"):
        mc.card_from_dict(card)


def test_janja_prospectivity_runs_the_smoothing_and_says_so(tmp_path):
    from janja_plugin.core.inference import prospectivity as pr
    from janja_plugin.core.raster_grid import Grid

    path = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1, head_trained_on="dense_features",
                             head_output="logits", map_smoothing_cells=SIGMA)
    stack = bigger_stack()
    grid = Grid(0.0, stack.nrows * 250.0, 250.0, stack.ncols, stack.nrows)
    result = pr.run_prospectivity(stack, str(path), pr.ProspectivitySettings(threads=1, extrapolate=True), grid=grid)
    _, _, z = head_log_odds_map(path, stack)
    np.testing.assert_allclose(result.probability, 1.0 / (1.0 + np.exp(-smooth(z, SIGMA))), rtol=1e-6, atol=1e-7,
                               equal_nan=True)
    assert any("Gaussian of sigma 1.5 cells" in n and "part of the model" in n for n in result.notes)
    forced = pr.run_prospectivity(stack, str(path), pr.ProspectivitySettings(threads=1, dense=False, extrapolate=True),
                                  grid=grid)
    assert any("map smoothing (part of the model) was not applied" in n for n in forced.notes)


def test_features_of_a_band_without_data_are_empty_not_an_error(tmp_path):
    """Training reads features band by band (training/dense_logistic.py): a nodata stripe is no error there."""
    path = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1, head_trained_on="dense_features")
    stack = bigger_stack()
    stack.data[:, :8] = np.nan
    model = mc.load_model(path, threads=1)
    parts = dense.load_parts(model)
    cells = np.zeros((stack.nrows, stack.ncols), bool)
    cells[:5] = True
    rows, cols, x = dense.features_at(model, parts, stack, [0, 1], cells)
    assert rows.size == cols.size == len(x) == 0
    with pytest.raises(JanjaInputError, match="mask covers no cell"):  # a map over that mask is still refused
        dense.predict_dense(model, parts, stack, [0, 1], mask=cells)


def test_a_0_1_mask_is_a_mask(tmp_path):
    path = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1, head_trained_on="dense_features",
                             head_output="logits", map_smoothing_cells=SIGMA)
    stack = bigger_stack()
    model = mc.load_model(path, threads=1)
    parts = dense.load_parts(model)
    mask = np.zeros((stack.nrows, stack.ncols), np.uint8)
    mask[9:13, 14:17] = 1
    got = dense.predict_dense(model, parts, stack, [0, 1], mask=mask)[0]
    want = dense.predict_dense(model, parts, stack, [0, 1], mask=mask.astype(bool))[0]
    np.testing.assert_array_equal(got, want)
    assert np.isfinite(got).sum() == 12


def test_a_one_column_logits_head_is_refused(tmp_path):
    path = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1, head_trained_on="dense_features",
                             head_output="logits")
    card = mc.load_model(path, threads=1).card
    with pytest.raises(JanjaInputError, match="one logit per class"):
        dense.head_log_odds(np.zeros((4, 1)), card)
