"""Window engine against a plain numpy computation of the same windows (np.pad reflect, scipy zoom).

Models are small known-weight ONNX graphs (test_model_card.build_model), so every probability is
computable by hand: the engine's must equal it to 1e-6, cell by cell, edges and nodata included.
"""

import threading

import numpy as np
import pytest
from scipy import ndimage
from test_model_card import build_model, card_dict

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.inference import model_card as mc
from janja_plugin.core.inference import windows as wn


def reference(stack, card, weight, bias, softmax=True, pool=False):
    """Probability and fill counts computed window by window with numpy/scipy only."""
    els, inp = card["elements"], card["input"]
    w = card["window_pixels"]
    h = w // 2
    t = np.empty(stack.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i, e in enumerate(els):
            v = stack[i].astype(np.float64) + e.get("offset", 0)
            f = {"log10": np.log10, "ln": np.log, "none": lambda a: a}[e["transform"]]
            v = np.where(v > 0, f(v), np.nan) if e["transform"] != "none" else v
            t[i] = (v - e["mean"]) / e["std"]
    missing = ~np.isfinite(t)
    padded = np.pad(np.where(missing, 0.0, t), ((0, 0), (h, h), (h, h)), mode="reflect")
    padded_missing = np.pad(missing, ((0, 0), (h, h), (h, h)), mode="reflect")
    n_el = len(els)
    cmap = inp.get("channel_map", list(range(n_el)) if n_el == inp["channels"] else [0] * inp["channels"])
    grid_mode = inp.get("resize", "bilinear_half_pixel") == "bilinear_half_pixel"
    prob = np.full(stack.shape[1:], np.nan)
    n_filled_windows = n_filled_values = 0
    for r in range(stack.shape[1]):
        for c in range(stack.shape[2]):
            if missing[:, r, c].any():
                continue
            win = padded[:, r:r + w, c:c + w]
            k = int(padded_missing[:, r:r + w, c:c + w].sum())
            n_filled_windows += k > 0
            n_filled_values += k
            zoom = (inp["height"] / w, inp["width"] / w)
            resized = np.stack([ndimage.zoom(win[e], zoom, order=1, grid_mode=grid_mode, mode="nearest")
                                for e in range(n_el)])
            x = resized[cmap]
            x = x.mean(axis=(1, 2)) if pool else x.ravel()
            logits = weight.astype(np.float64) @ x + bias
            if softmax or card["output_kind"] == "logits":
                p = np.exp(logits - logits.max())
                p /= p.sum()
            else:
                p = logits
            prob[r, c] = p[card["class_names"].index(card["prospective_class"])]
    return prob, n_filled_windows, n_filled_values


def synthetic_stack(n_el, rows, cols, seed=3):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols]
    bands = [np.exp(np.sin(xx / (2 + i)) + np.cos(yy / (3 + i)) + 0.3 * rng.normal(size=(rows, cols)))
             for i in range(n_el)]
    return np.stack(bands).astype(np.float32)


def test_reflect_index_matches_numpy_pad():
    for n in (1, 2, 3, 7):
        idx = np.arange(-9, n + 9)
        expected = np.pad(np.arange(n), 9, mode="reflect") if n > 1 else np.zeros(n + 18, int)
        assert np.array_equal(wn.reflect_index(idx, n), expected)


@pytest.mark.parametrize("n_in, n_out", [(5, 8), (7, 5), (15, 75), (3, 3), (9, 2)])
@pytest.mark.parametrize("mode", ["bilinear_half_pixel", "bilinear_align_corners"])
def test_resize_matrix_matches_scipy_zoom(n_in, n_out, mode):
    rng = np.random.default_rng(0)
    img = rng.normal(size=(n_in, n_in))
    m = wn.resize_matrix(n_in, n_out, mode).astype(np.float64)
    ours = m @ img @ m.T
    ref = ndimage.zoom(img, n_out / n_in, order=1, grid_mode=mode == "bilinear_half_pixel", mode="nearest")
    assert ref.shape == (n_out, n_out)
    np.testing.assert_allclose(ours, ref, atol=1e-6)


CASES = {
    # one element repeated to three channels, window 5 -> 8 (upsampling), log10, tiles of 4 rows
    "1el_up": dict(card=dict(), build=dict(), predict=dict(tile_rows=4, batch_size=7)),
    "1el_serial": dict(card=dict(), build=dict(), predict=dict(prefetch=False)),
    # three elements straight into three channels, no resize, logits out (softmax applied by the engine)
    "3el_logits": dict(
        card=dict(elements=[("Au_ppb", "ppb", "log10", 0.4, 0.3), ("Cu_ppm", "ppm", "none", 2.0, 1.5),
                            ("As_ppm", "ppm", "ln", 0.8, 0.6)], window=3, size=3, output_kind="logits"),
        build=dict(softmax=False), predict=dict(tile_rows=5, batch_size=16)),
    # four elements into five channels, window 7 -> 5 (downsampling, align corners), pooled model
    "4el_5ch": dict(
        card=dict(elements=[(f"E{i}_ppm", "ppm", "log10", 0.1 * i, 0.5 + 0.1 * i) for i in range(4)], channels=5,
                  window=7, size=5, channel_map=[0, 1, 2, 3, 0], resize="bilinear_align_corners"),
        build=dict(pool=True), predict=dict(tile_rows=3, batch_size=32)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_predict_equals_numpy_reference(tmp_path, case):
    spec = CASES[case]
    card = card_dict(**spec["card"])
    weight, bias = build_model(tmp_path / "m.onnx", card, **spec["build"])
    model = mc.load_model(tmp_path / "m.onnx", threads=1)
    n_el = len(card["elements"])
    stack = synthetic_stack(n_el, 13, 11)
    stack[0, 0, 0] = np.nan  # a nodata corner: its own cell is nodata, its neighbours fill it
    stack[n_el - 1, 6, 5] = -9999.0  # the stack's nodata value
    stack[0, 12, 3] = 0.0  # not loggable under log10: treated as missing
    stack[:, 9, 10] = np.nan
    ref_stack = np.where(stack == -9999.0, np.nan, stack)
    expected, n_win, n_val = reference(ref_stack, card, weight, bias, softmax=spec["build"].get("softmax", True),
                                       pool=spec["build"].get("pool", False))
    prob, valid, stats = wn.predict(model, wn.ArrayStack(stack, [e["name"] for e in card["elements"]], -9999.0),
                                    list(range(n_el)), **spec["predict"])
    assert prob.dtype == np.float32
    assert np.array_equal(np.isnan(prob), np.isnan(expected))
    assert np.array_equal(valid, np.isfinite(expected))
    np.testing.assert_allclose(prob, expected, atol=1e-6, rtol=0)
    assert stats.n_windows == np.isfinite(expected).sum() == stats.n_valid_cells
    assert (stats.n_windows_filled, stats.n_values_filled) == (n_win, n_val)
    assert n_win > 0


def test_band_order_follows_card_not_stack(tmp_path):
    card = card_dict(elements=[("Au_ppb", "ppb", "log10", 0.4, 0.3), ("Cu_ppm", "ppm", "log10", 0.2, 0.5),
                               ("As_ppm", "ppm", "log10", 0.8, 0.6)], window=3, size=4)
    weight, bias = build_model(tmp_path / "m.onnx", card)
    model = mc.load_model(tmp_path / "m.onnx", threads=1)
    stack = synthetic_stack(3, 6, 7)
    expected, _, _ = reference(stack, card, weight, bias)
    shuffled = wn.ArrayStack(stack[[2, 0, 1]], ["As_ppm", "Au_ppb", "Cu_ppm"])
    bands = mc.match_stack(model.card, shuffled.names)
    prob, _, _ = wn.predict(model, shuffled, bands)
    np.testing.assert_allclose(prob, expected, atol=1e-6)


def bilinear_reference(nodes_value, row_nodes, col_nodes, r, c):
    """Bilinear interpolation at (r, c) from the bracketing nodes, weights renormalised over valid nodes."""
    def bracket(nodes, p):
        j = np.searchsorted(nodes, p)
        if nodes[min(j, len(nodes) - 1)] == p:
            return [(j, 1.0)]
        a, b = nodes[j - 1], nodes[j]
        return [(j - 1, (b - p) / (b - a)), (j, (p - a) / (b - a))]

    num = den = 0.0
    for i, wr in bracket(row_nodes, r):
        for j, wc in bracket(col_nodes, c):
            v = nodes_value[i, j]
            if np.isfinite(v):
                num += wr * wc * v
                den += wr * wc
    return num / den if den > 0 else np.nan


@pytest.mark.parametrize("stride", [2, 3])
def test_stride_predicts_nodes_exactly_and_interpolates_the_rest(tmp_path, stride):
    card = card_dict()
    build_model(tmp_path / "m.onnx", card)
    model = mc.load_model(tmp_path / "m.onnx", threads=1)
    stack = synthetic_stack(1, 14, 12)
    stack[0, 3, 5] = np.nan
    # a valid cell whose every stride node is nodata is predicted exactly, not left empty
    stack[0, 6:10, 6:10] = np.nan
    stack[0, 7:9, 7:9] = 100.0
    full, _, _ = wn.predict(model, wn.ArrayStack(stack, ["Au_ppb"]), [0])
    prob, valid, stats = wn.predict(model, wn.ArrayStack(stack, ["Au_ppb"]), [0], stride=stride, tile_rows=5)
    rows, cols = wn.stride_nodes(14, stride), wn.stride_nodes(12, stride)
    assert rows[-1] == 13 and cols[-1] == 11
    nodes = full[np.ix_(rows, cols)]
    assert np.array_equal(np.isnan(prob), np.isnan(full))
    expected = full.copy()
    for r in range(14):
        for c in range(12):
            if np.isfinite(full[r, c]) and not (r in rows and c in cols):
                value = bilinear_reference(nodes, rows, cols, r, c)
                expected[r, c] = value if np.isfinite(value) else full[r, c]
    np.testing.assert_allclose(prob, expected, atol=1e-6)
    assert stats.n_windows < np.isfinite(full).sum()
    if stride == 3:  # (7, 7) is valid and its nodes (6, 6), (6, 9), (9, 6), (9, 9) are all nodata
        assert prob[7, 7] == pytest.approx(full[7, 7], abs=1e-6)


def test_mask_leaves_masked_cells_empty(tmp_path):
    build_model(tmp_path / "m.onnx", card_dict())
    model = mc.load_model(tmp_path / "m.onnx", threads=1)
    stack = wn.ArrayStack(synthetic_stack(1, 9, 9), ["Au_ppb"])
    mask = np.zeros((9, 9), bool)
    mask[2:6, 3:8] = True
    full, _, _ = wn.predict(model, stack, [0])
    prob, _, stats = wn.predict(model, stack, [0], mask=mask)
    assert np.isnan(prob[~mask]).all() and stats.n_windows == mask.sum()
    np.testing.assert_allclose(prob[mask], full[mask], atol=1e-7)


def test_fixed_batch_model_is_padded(tmp_path):
    card = card_dict()
    weight, bias = build_model(tmp_path / "m.onnx", card, batch=4)
    model = mc.load_model(tmp_path / "m.onnx", threads=1)
    stack = synthetic_stack(1, 5, 7)  # 35 cells: not a multiple of 4
    prob, _, _ = wn.predict(model, wn.ArrayStack(stack, ["Au_ppb"]), [0], batch_size=64)
    np.testing.assert_allclose(prob, reference(stack, card, weight, bias)[0], atol=1e-6)


@pytest.mark.parametrize("stride", [1, 2])
def test_cancel_raises_and_stops_the_worker(tmp_path, stride):
    build_model(tmp_path / "m.onnx", card_dict())
    model = mc.load_model(tmp_path / "m.onnx", threads=1)
    stack = wn.ArrayStack(synthetic_stack(1, 40, 30), ["Au_ppb"])
    calls = []

    def progress(fraction):
        calls.append(fraction)
        return len(calls) >= 2

    with pytest.raises(wn.Cancelled):
        wn.predict(model, stack, [0], stride=stride, batch_size=8, tile_rows=4, progress=progress)
    assert len(calls) == 2
    assert not [t for t in threading.enumerate() if t.name == "janja-window-prep"]
    fractions = []
    wn.predict(model, stack, [0], batch_size=8, tile_rows=4, progress=lambda f: fractions.append(f) and False)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_refuses_all_nodata_stack(tmp_path):
    build_model(tmp_path / "m.onnx", card_dict())
    model = mc.load_model(tmp_path / "m.onnx", threads=1)
    stack = np.full((1, 6, 6), -9999.0, np.float32)
    stack[0, 2, 2] = -5.0  # a value, but not loggable
    with pytest.raises(JanjaInputError, match="no cell where all of Au_ppb have values"):
        wn.predict(model, wn.ArrayStack(stack, ["Au_ppb"], -9999.0), [0])


def test_raster_stack_reads_like_array_stack(tmp_path):
    from janja_plugin.core.raster_grid import Grid, write_stack

    data = synthetic_stack(2, 7, 9)
    data[1, 3, 3] = np.nan
    grid = Grid(500000.0, 7000000.0, 250.0, 9, 7)
    write_stack(tmp_path / "s.tif", list(data), ["Au_ppb", "Cu_ppm"], grid, "EPSG:28350")
    with wn.RasterStack(tmp_path / "s.tif") as rs:
        assert rs.names == ["Au_ppb", "Cu_ppm"] and rs.cell_size == 250.0 and rs.grid() == grid
        block = rs.read(2, 5, [1, 0])
    np.testing.assert_array_equal(block, data[[1, 0], 2:5])


def test_interpolation_in_row_blocks_equals_whole():
    rng = np.random.default_rng(4)
    rows, cols = wn.stride_nodes(23, 4), wn.stride_nodes(17, 4)
    nodes = rng.random((rows.size, cols.size))
    nodes[1, 2] = np.nan
    whole = wn.interpolate_coarse(nodes, rows, cols, 23, 17, block_rows=1000)
    np.testing.assert_array_equal(wn.interpolate_coarse(nodes, rows, cols, 23, 17, block_rows=3), whole)
    np.testing.assert_allclose(whole[np.ix_(rows, cols)], nodes, atol=1e-7, equal_nan=True)
