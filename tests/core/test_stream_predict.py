"""The streamed window engine (windows.stream_predict) gives, tile by tile, the whole-grid map cell for cell.

The reference is the whole-grid predict as it was before streaming (whole_grid_reference.py, frozen). The
model is a real ONNX window model (window 5, resized to 8 px), so halos, reflection at the edges, stride
nodes and their interpolation, orphans and nodata all matter.
"""

import numpy as np
import pytest
from test_model_card import build_model, card_dict
from test_windows import synthetic_stack
from whole_grid_reference import whole_grid_predict

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.inference import model_card as mc
from janja_plugin.core.inference import windows as wn


@pytest.fixture
def model(tmp_path):
    build_model(tmp_path / "m.onnx", card_dict())
    return mc.load_model(tmp_path / "m.onnx", threads=1)


def holey_stack(rows=23, cols=17):
    """One element with nodata: a cell, a whole row tile's worth of rows, and an island whose nodes are all empty."""
    data = synthetic_stack(1, rows, cols)
    data[0, 3, 5] = -9999.0
    if rows > 12:
        data[0, 8:12] = -9999.0  # with tile_rows=4: the tile of rows 8-11 is all nodata
        data[0, 14:20, 6:12] = -9999.0
        data[0, 16:18, 8:10] = 50.0  # an island: at stride 3 and 4 no node around it has a value (orphans)
    return wn.ArrayStack(data, ["Au_ppb"], -9999.0)


def run_both(model, stack, **kw):
    ref, ref_valid, ref_stats = whole_grid_predict(model, stack, [0], **kw)
    tiles = list(wn.stream_predict(model, stack, [0], stats=(stats := wn.EngineStats()), **kw))
    got = np.concatenate([t.values for t in tiles])
    valid = np.concatenate([t.valid for t in tiles])
    return ref, ref_valid, ref_stats, got, valid, stats, tiles


@pytest.mark.parametrize("stride", [1, 2, 3, 4, 7, 30])
@pytest.mark.parametrize("masked", [False, True])
def test_streamed_equals_whole_grid(model, stride, masked):
    stack = holey_stack()
    mask = None
    if masked:
        mask = np.ones((23, 17), bool)
        mask[:5, :6] = False
        mask[19:, 10:] = False
    ref, ref_valid, ref_stats, got, valid, stats, tiles = run_both(model, stack, stride=stride, mask=mask,
                                                                   tile_rows=4, batch_size=8)
    assert [(t.row0, t.row1) for t in tiles] == [(r, min(r + 4, 23)) for r in range(0, 23, 4)]
    assert np.array_equal(got, ref, equal_nan=True)  # bit for bit, NaN where the whole grid has none
    assert np.array_equal(valid, ref_valid)
    assert np.isnan(got[8:12]).all() and not valid[8:12].any()  # the all-nodata tile
    for field in ("n_windows", "n_windows_filled", "n_values_filled", "n_valid_cells", "n_interpolated"):
        assert getattr(stats, field) == getattr(ref_stats, field), field
    if stride == 3:
        assert stats.n_interpolated > 0 and np.isfinite(got[16, 8])  # the island was predicted exactly


def test_stride_larger_than_a_tile_and_tile_boundaries_off_the_nodes(model):
    """Stride 7 with tiles of 3 rows: most tiles hold no node row and read both bracketing ones."""
    stack = wn.ArrayStack(synthetic_stack(1, 31, 12), ["Au_ppb"])
    ref, _, ref_stats, got, _, stats, _ = run_both(model, stack, stride=7, tile_rows=3)
    assert np.array_equal(got, ref, equal_nan=True)
    assert stats.n_windows == ref_stats.n_windows == 6 * 3  # node rows 0, 7, 14, 21, 28, 30; columns 0, 7, 11


@pytest.mark.parametrize("stride", [1, 2])
def test_one_row_grid(model, stride):
    stack = wn.ArrayStack(synthetic_stack(1, 1, 13), ["Au_ppb"])
    ref, _, _, got, _, _, tiles = run_both(model, stack, stride=stride)
    assert len(tiles) == 1 and np.array_equal(got, ref, equal_nan=True) and np.isfinite(got).all()


def test_interpolated_cells_are_marked(model):
    stack = holey_stack()
    _, _, _, got, _, stats, tiles = run_both(model, stack, stride=2, tile_rows=5)
    marked = np.concatenate([t.interpolated for t in tiles])
    assert marked.sum() == stats.n_interpolated and np.isfinite(got[marked]).all()
    assert not marked[::2, ::2].any()  # nodes are never interpolated


@pytest.mark.parametrize("stride", [1, 3])
def test_progress_never_goes_back_and_cancel_stops(model, stride):
    stack = holey_stack()
    seen = []
    list(wn.stream_predict(model, stack, [0], stride=stride, tile_rows=4, batch_size=4,
                           progress=lambda f: seen.append(f) and False))
    assert seen == sorted(seen) and seen[-1] == 1.0
    calls = []
    gen = wn.stream_predict(model, stack, [0], stride=stride, tile_rows=4, batch_size=4,
                           progress=lambda f: calls.append(f) or len(calls) >= 3)
    with pytest.raises(wn.Cancelled):
        list(gen)


def test_all_nodata_refused_as_whole_grid(model):
    stack = wn.ArrayStack(np.full((1, 9, 6), -9999.0, np.float32), ["Au_ppb"], -9999.0)
    with pytest.raises(JanjaInputError, match="no cell where all of Au_ppb have values"):
        list(wn.stream_predict(model, stack, [0], tile_rows=4))
    stack = holey_stack()
    mask = np.zeros((23, 17), bool)
    mask[8:12] = True  # only the all-nodata rows
    with pytest.raises(JanjaInputError, match="The mask covers no cell"):
        list(wn.stream_predict(model, stack, [0], mask=mask, tile_rows=4, stride=2))


@pytest.mark.parametrize("stride", [1, 2, 3, 7])
def test_tiles_computed_one_by_one_add_up_to_the_run(model, stride):
    """What a Dask task does: one tile alone (tiles=[t]) with only its rows of the mask; the tiles and the summed
    counts equal the single run's (node rows an earlier tile would have classified are not counted twice)."""
    stack = holey_stack()
    mask = np.ones((23, 17), bool)
    mask[:5, :6] = False
    ref, ref_valid, ref_stats, *_ = run_both(model, stack, stride=stride, mask=mask, tile_rows=4, batch_size=8)
    total = wn.EngineStats()
    got = []
    for t in range(6):
        one = list(wn.stream_predict(model, stack, [0], stride=stride, mask=wn.RowMask(mask, 0, mask.shape),
                                     tile_rows=4, batch_size=8, stats=total, tiles=[t], final=False))
        assert len(one) == 1 and one[0].row0 == 4 * t
        got.append(one[0].values)
    assert np.array_equal(np.concatenate(got), ref, equal_nan=True)
    for field in ("n_windows", "n_windows_filled", "n_values_filled", "n_valid_cells", "n_interpolated"):
        assert getattr(total, field) == getattr(ref_stats, field), field
