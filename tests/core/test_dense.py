"""Shared-trunk evaluation (core/dense.py) against the per-window engine on tiny hand-built ONNX models.

The trunk is one valid convolution (+ ReLU) whose kernel spans the whole model input, so at the
model's input size it gives one feature cell, and the per-window model is that trunk + flatten +
head. Where the kernel's outer ring is zero the per-window resize border (which clamps) cannot
matter, so whenever a window starts on a feature cell the dense result must equal the per-window
one exactly; windows in between get the bilinear mix of their neighbours' features.
"""

import hashlib
import json

import numpy as np
import pytest
from test_model_card import card_dict
from test_windows import synthetic_stack

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.inference import dense
from janja_plugin.core.inference import model_card as mc
from janja_plugin.core.inference import windows as wn

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

ELEMENTS = (("Au_ppb", "ppb", "log10", 0.5, 0.4), ("As_ppm", "ppm", "log10", 1.0, 0.5))
N_FEATURES = 4


def _save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return model


def _tensor(name, a):
    return helper.make_tensor(name, TensorProto.FLOAT, a.shape, a.astype(np.float32).ravel())


def build_dense_model(folder, window=3, size=3, stride=1, zero_ring=0, seed=0, sha=True, shifts=None, kernel=None,
                      head_trained_on=None, head_output=None, map_smoothing_cells=None):
    """Per-window model m.onnx (card with "dense") + m_trunk.onnx + m_head.onnx. Returns the model path.

    kernel (default: the input size): the trunk's footprint; smaller, the per-window model averages the
    (size - kernel) / stride + 1 feature cells a side of its input, as Inception's global pool does at 149 px.
    """
    rng = np.random.default_rng(seed)
    c = len(ELEMENTS)
    k = kernel or size
    wt = rng.normal(size=(N_FEATURES, c, k, k)) / np.sqrt(c * k * k)
    if zero_ring:
        inner = np.zeros_like(wt)
        inner[:, :, zero_ring:k - zero_ring, zero_ring:k - zero_ring] = 1
        wt = wt * inner * 2
    bt = rng.normal(size=N_FEATURES) * 0.1
    wh, bh = rng.normal(size=(2, N_FEATURES)) * 2, rng.normal(size=2) * 0.3
    conv = dict(kernel_shape=[k, k], strides=[stride, stride])
    inits = [_tensor("Wt", wt), _tensor("bt", bt)]
    head_inits = [_tensor("Wh", wh), _tensor("bh", bh)]
    card = card_dict(elements=ELEMENTS, channels=c, size=size, window=window)
    # per-window: conv -> relu -> flatten -> gemm -> softmax
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "Wt", "bt"], ["f"], **conv), helper.make_node("Relu", ["f"], ["r"]),
         helper.make_node("GlobalAveragePool", ["r"], ["g"]), helper.make_node("Flatten", ["g"], ["flat"], axis=1),
         helper.make_node("Gemm", ["flat", "Wh", "bh"], ["logits"], transB=1),
         helper.make_node("Softmax", ["logits"], ["y"], axis=1)],
        "window", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])], inits + head_inits)
    trunk = helper.make_graph(
        [helper.make_node("Conv", ["x", "Wt", "bt"], ["f"], **conv), helper.make_node("Relu", ["f"], ["features"])],
        "trunk", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c, "H", "W"])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", N_FEATURES, "h", "w"])], inits)
    head_nodes = [helper.make_node("Gemm", ["features", "Wh", "bh"], ["logits"], transB=1),
                  helper.make_node("Softmax", ["logits"], ["y"], axis=1)]
    if head_output == "logits":  # the head part ends without softmax
        head_nodes = [helper.make_node("Gemm", ["features", "Wh", "bh"], ["y"], transB=1)]
    head = helper.make_graph(
        head_nodes,
        "head", [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", N_FEATURES])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])], head_inits)
    _save(trunk, folder / "m_trunk.onnx")
    _save(head, folder / "m_head.onnx")
    card["dense"] = {"trunk": "m_trunk.onnx", "head": "m_head.onnx", "feature_stride": stride,
                     "features": N_FEATURES}
    if shifts:
        card["dense"]["shifts"] = shifts
    if head_trained_on:
        card["dense"]["head_trained_on"] = head_trained_on
    if kernel:
        card["dense"]["footprint"] = kernel
    if head_output:
        card["dense"]["head_output"] = head_output
    if map_smoothing_cells is not None:
        card["dense"]["map_smoothing_cells"] = map_smoothing_cells
    if sha:
        for part in ("trunk", "head"):
            card["dense"][f"{part}_sha256"] = hashlib.sha256((folder / f"m_{part}.onnx").read_bytes()).hexdigest()
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    mc.embed_card(model, card)
    onnx.save(model, str(folder / "m.onnx"))
    mc.card_path_for(folder / "m.onnx").write_text(json.dumps(card))
    return folder / "m.onnx"


def stack_with_gaps(rows=11, cols=13, seed=4):
    data = synthetic_stack(len(ELEMENTS), rows, cols, seed=seed)
    data[0, 2, 3] = np.nan  # a missing centre
    data[1, 7, 0] = -9999.0  # nodata at the edge
    return wn.ArrayStack(data, [e[0] for e in ELEMENTS], nodata=-9999.0)


def run_both(path, stack, shifts=1, tile=None, mask=None):
    model = mc.load_model(path, threads=1)
    parts = dense.load_parts(model)
    per_window, valid, _ = wn.predict(model, stack, [0, 1], mask=mask)
    got, valid_d, stats = dense.predict_dense(model, parts, stack, [0, 1], shifts=shifts, tile=tile, mask=mask)
    assert np.array_equal(valid, valid_d)
    return per_window, got, stats, model, parts


def test_no_resize_unit_stride_equals_per_window_exactly(tmp_path):
    path = build_dense_model(tmp_path, window=3, size=3, stride=1)
    stack = stack_with_gaps()
    per_window, got, stats, _, _ = run_both(path, stack)
    assert np.array_equal(np.isnan(per_window), np.isnan(got))
    np.testing.assert_allclose(got, per_window, atol=1e-6, equal_nan=True)
    assert stats.n_windows == int(np.isfinite(per_window).sum())
    ref_stats = wn.predict(mc.load_model(path, threads=1), stack, [0, 1])[2]
    assert (stats.n_windows_filled, stats.n_values_filled) == (ref_stats.n_windows_filled, ref_stats.n_values_filled)


def test_resized_windows_on_feature_cells_equal_per_window(tmp_path):
    # 3 cells -> 6 pixels (factor 2), feature stride 2: every window starts on a feature cell; the kernel's
    # zero outer ring makes the clamped per-window resize border irrelevant.
    path = build_dense_model(tmp_path, window=3, size=6, stride=2, zero_ring=1)
    per_window, got, _, _, _ = run_both(path, stack_with_gaps())
    np.testing.assert_allclose(got, per_window, atol=1e-6, equal_nan=True)


def test_resize_border_is_the_only_difference_without_the_zero_ring(tmp_path):
    path = build_dense_model(tmp_path, window=3, size=6, stride=2, zero_ring=0)
    per_window, got, _, _, _ = run_both(path, stack_with_gaps())
    d = np.abs(got - per_window)[np.isfinite(per_window)]
    assert 1e-4 < d.max() < 0.5  # a real but bounded difference: not equivalent, hence an option


def test_shifts_align_every_window_and_one_shift_interpolates_features(tmp_path):
    # feature stride 4 with factor 2: windows of even cells start on a feature cell, odd ones halfway
    path = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1)
    stack = stack_with_gaps()
    per_window, got2, stats2, model, parts = run_both(path, stack, shifts=2)
    np.testing.assert_allclose(got2, per_window, atol=1e-6, equal_nan=True)
    assert "2x2" in stats2.mode
    got1, _, _ = dense.predict_dense(model, parts, stack, [0, 1], shifts=1)
    even = np.zeros(per_window.shape, bool)
    even[::2, ::2] = True
    np.testing.assert_allclose(got1[even], per_window[even], atol=1e-6, equal_nan=True)
    # odd cells: the head on the mean of the neighbouring feature vectors (per-window features, by hand)
    feats = window_features(model, parts, stack)
    r, c = 5, 7  # both odd: the mean of the four diagonal neighbours
    f = feats[[r - 1, r - 1, r + 1, r + 1], [c - 1, c + 1, c - 1, c + 1]].mean(axis=0)
    expected = parts.head.run(None, {parts.head_input: f[None].astype(np.float32)})[0][0, 1]
    assert got1[r, c] == pytest.approx(expected, abs=1e-6)
    assert not np.allclose(got1[r, c], per_window[r, c], atol=1e-3)


def window_features(model, parts, stack):
    """Trunk features of every cell's own window, cut and resized window by window by the engine."""
    prep = wn._Preparer(model.card, stack, [0, 1], 1000)
    out = np.zeros((stack.nrows, stack.ncols, N_FEATURES), np.float32)
    import threading

    for rows, cols, x, _ in prep.batches(lambda r0, r1: np.ones((r1 - r0, stack.ncols), bool), None,
                                         wn.EngineStats(), threading.Event()):
        out[rows, cols] = parts.trunk.run(None, {parts.trunk_input: x})[0][:, :, 0, 0]
    return out


@pytest.mark.parametrize("tile", [(2, 3), (4, 5), (64, 256)])
def test_result_does_not_depend_on_tiles_for_a_valid_convolution_trunk(tmp_path, tile):
    path = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=0)
    stack = stack_with_gaps()
    model = mc.load_model(path, threads=1)
    parts = dense.load_parts(model)
    whole = dense.predict_dense(model, parts, stack, [0, 1], tile=(100, 100))[0]
    tiled = dense.predict_dense(model, parts, stack, [0, 1], tile=tile)[0]
    np.testing.assert_allclose(tiled, whole, atol=1e-6, equal_nan=True)


def test_mask_and_cancel(tmp_path):
    path = build_dense_model(tmp_path, window=3, size=3, stride=1)
    stack = stack_with_gaps()
    mask = np.zeros((stack.nrows, stack.ncols), bool)
    mask[3:8, 4:10] = True
    per_window, got, _, model, parts = run_both(path, stack, mask=mask, tile=(4, 4))
    np.testing.assert_allclose(got, per_window, atol=1e-6, equal_nan=True)
    assert np.isnan(got[~mask]).all()
    with pytest.raises(wn.Cancelled):
        dense.predict_dense(model, parts, stack, [0, 1], tile=(4, 4), progress=lambda f: f > 0.3)


def test_refusals(tmp_path):
    path = build_dense_model(tmp_path, window=3, size=6, stride=4)
    model = mc.load_model(path, threads=1)
    with pytest.raises(JanjaInputError, match="must divide"):
        dense.predict_dense(model, dense.load_parts(model), stack_with_gaps(), [0, 1], shifts=3)
    (tmp_path / "m_head.onnx").write_bytes((tmp_path / "m_head.onnx").read_bytes() + b"\0")
    with pytest.raises(JanjaInputError, match="checksum"):
        dense.load_parts(model)
    (tmp_path / "m_trunk.onnx").unlink()
    with pytest.raises(JanjaInputError, match="m_trunk.onnx .*missing"):
        dense.load_parts(model)


def test_refuses_model_without_parts_or_with_a_fractional_factor(tmp_path):
    from test_model_card import build_model

    card = card_dict(elements=ELEMENTS, channels=2, size=6, window=3)
    build_model(tmp_path / "plain.onnx", card)
    with pytest.raises(JanjaInputError, match="no shared-trunk parts"):
        dense.load_parts(mc.load_model(tmp_path / "plain.onnx"))
    sub = tmp_path / "frac"
    sub.mkdir()
    build_dense_model(sub, window=3, size=7, stride=1, sha=False)
    with pytest.raises(JanjaInputError, match="whole multiple"):
        dense.load_parts(mc.load_model(sub / "m.onnx"))


def test_run_prospectivity_dense_option(tmp_path):
    from janja_plugin.core.inference import prospectivity as pr
    from janja_plugin.core.raster_grid import Grid

    path = build_dense_model(tmp_path, window=3, size=3, stride=1)
    stack = stack_with_gaps()
    grid = Grid(0.0, stack.nrows * 250.0, 250.0, stack.ncols, stack.nrows)
    base = pr.run_prospectivity(stack, str(path), pr.ProspectivitySettings(threads=1), grid=grid)
    fast = pr.run_prospectivity(stack, str(path), pr.ProspectivitySettings(threads=1, dense=True, stride=2),
                                grid=grid)
    np.testing.assert_allclose(fast.probability, base.probability, atol=1e-6, equal_nan=True)
    assert fast.stride == 1 and any("Shared-trunk" in n and "stride 2 was not used" in n for n in fast.notes)
    assert any("per-window head" in n for n in fast.notes)  # the card does not say dense_features


def test_features_at_are_what_the_head_gets(tmp_path):
    path = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1)
    stack = stack_with_gaps()
    model = mc.load_model(path, threads=1)
    parts = dense.load_parts(model)
    cells = np.zeros((stack.nrows, stack.ncols), bool)
    cells[1:9:3, 2:12:4] = True
    cells[2, 3] = True  # a missing centre: left out
    rows, cols, f = dense.features_at(model, parts, stack, [0, 1], cells, shifts=2)
    assert f.shape == (int(cells.sum()) - 1, N_FEATURES) and not ((rows == 2) & (cols == 3)).any()
    np.testing.assert_allclose(f, window_features(model, parts, stack)[rows, cols], atol=1e-5)
    p = dense.predict_dense(model, parts, stack, [0, 1], shifts=2)[0]
    np.testing.assert_allclose(parts.head.run(None, {parts.head_input: f})[0][:, 1], p[rows, cols], atol=1e-6)


def test_run_prospectivity_takes_the_shifts_from_the_card(tmp_path):
    from janja_plugin.core.inference import prospectivity as pr
    from janja_plugin.core.raster_grid import Grid

    path = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1, shifts=2)
    stack = stack_with_gaps()
    grid = Grid(0.0, stack.nrows * 250.0, 250.0, stack.ncols, stack.nrows)
    base = pr.run_prospectivity(stack, str(path), pr.ProspectivitySettings(threads=1), grid=grid)
    fast = pr.run_prospectivity(stack, str(path), pr.ProspectivitySettings(threads=1, dense=True), grid=grid)
    assert "2x2" in fast.stats.mode  # 2 shifts align every window here: equal to the per-window map
    np.testing.assert_allclose(fast.probability, base.probability, atol=1e-6, equal_nan=True)
    one = pr.run_prospectivity(stack, str(path), pr.ProspectivitySettings(threads=1, dense=True, dense_shifts=1),
                               grid=grid)
    assert "1x1" in one.stats.mode and not np.allclose(one.probability, base.probability, equal_nan=True)


@pytest.mark.parametrize("rows, cols, shifts", [(1, 1, 4), (1, 7, 4), (2, 3, 2), (5, 1, 1)])
def test_tiny_stacks_and_many_shifts(tmp_path, rows, cols, shifts):
    path = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1)
    stack = wn.ArrayStack(synthetic_stack(len(ELEMENTS), rows, cols, seed=9), [e[0] for e in ELEMENTS])
    per_window, got, _, _, _ = run_both(path, stack, shifts=shifts, tile=(2, 2))
    if shifts > 1:  # every window starts on a node: exact
        np.testing.assert_allclose(got, per_window, atol=1e-6)
    assert np.isfinite(got).all()


@pytest.mark.parametrize("shifts", [1, 2])
def test_windows_spanning_several_feature_cells_average_them(tmp_path, shifts):
    # 3 cells -> 6 px; the trunk covers 4 px every 2 px, so a window holds 2 x 2 feature cells, which the
    # per-window model averages (GlobalAveragePool): the shared trunk must average the same cells
    path = build_dense_model(tmp_path, window=3, size=6, stride=2, zero_ring=1, kernel=4)
    per_window, got, _, _, parts = run_both(path, stack_with_gaps(), shifts=shifts, tile=(4, 6))
    assert (parts.footprint, parts.pool) == (4, 2)
    np.testing.assert_allclose(got, per_window, atol=1e-6, equal_nan=True)


def test_a_dense_features_card_runs_on_the_shared_trunk_by_default_and_its_map_is_the_head_on_the_features(tmp_path):
    """A head trained on shared-trunk features: the dense engine IS the model, so it is the default, every cell is
    head(features_at(...)) exactly, and no stride applies (the stride line says so)."""
    from janja_plugin.core.inference import prospectivity as pr
    from janja_plugin.core.raster_grid import Grid

    path = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1, head_trained_on="dense_features")
    stack = stack_with_gaps()
    grid = Grid(0.0, stack.nrows * 250.0, 250.0, stack.ncols, stack.nrows)
    result = pr.run_prospectivity(stack, str(path), pr.ProspectivitySettings(threads=1, stride=3), grid=grid)
    assert "shared trunk" in result.stats.mode and result.stride == 1
    model = mc.load_model(path, threads=1)
    parts = dense.load_parts(model)
    rows, cols, f = dense.features_at(model, parts, stack, [0, 1], np.ones((stack.nrows, stack.ncols), bool))
    expected = np.full((stack.nrows, stack.ncols), np.nan, np.float32)
    expected[rows, cols] = parts.head.run(None, {parts.head_input: f})[0][:, 1]
    np.testing.assert_array_equal(result.probability, expected)
    per_window = wn.predict(model, stack, [0, 1])[0]  # this geometry interpolates features: not the same map
    assert not np.allclose(result.probability, per_window, equal_nan=True)
    line = result.stride_error.sentence()
    assert "every cell is the model's exact output" in line and "stride 3 asked for was not used" in line
    assert result.stride_error.warning() is None and not any("per-window head" in n for n in result.notes)
    assert "shared trunk" in result.stride_error.tags()["janja_stride_check"]


def test_a_dense_features_card_forced_window_by_window_is_warned_about(tmp_path):
    from janja_plugin.core.inference import prospectivity as pr
    from janja_plugin.core.raster_grid import Grid

    path = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1, head_trained_on="dense_features")
    stack = stack_with_gaps()
    grid = Grid(0.0, stack.nrows * 250.0, 250.0, stack.ncols, stack.nrows)
    result = pr.run_prospectivity(stack, str(path), pr.ProspectivitySettings(threads=1, dense=False), grid=grid)
    assert "shared trunk" not in result.stats.mode
    assert any("trained on shared-trunk features, but the shared trunk was turned off" in n for n in result.notes)


def test_a_per_window_card_stays_window_by_window_by_default(tmp_path):
    from janja_plugin.core.inference import prospectivity as pr
    from janja_plugin.core.raster_grid import Grid

    path = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1, head_trained_on="window_features")
    stack = stack_with_gaps()
    grid = Grid(0.0, stack.nrows * 250.0, 250.0, stack.ncols, stack.nrows)
    result = pr.run_prospectivity(stack, str(path), pr.ProspectivitySettings(threads=1), grid=grid)
    assert "shared trunk" not in result.stats.mode and not result.stride_error.dense_model


def test_the_streamed_run_refuses_a_dense_features_card_rather_than_run_it_window_by_window(tmp_path):
    from janja_plugin.core.inference import prospectivity as pr
    from janja_plugin.core.inference import streamed_prospectivity as sp
    from janja_plugin.core.raster_grid import Grid

    path = build_dense_model(tmp_path, window=3, size=6, stride=4, zero_ring=1, head_trained_on="dense_features")
    stack = stack_with_gaps()
    grid = Grid(0.0, stack.nrows * 250.0, 250.0, stack.ncols, stack.nrows)
    with pytest.raises(JanjaInputError, match="head trained on shared-trunk features.*not streamed"):
        sp.run_prospectivity_to_files(stack, str(path), str(tmp_path / "p.tif"), None, None,
                                      pr.ProspectivitySettings(threads=1), grid=grid)
    assert not (tmp_path / "p.tif").exists()
