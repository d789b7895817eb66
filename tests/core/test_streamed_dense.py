"""janja:prospectivity's shared-trunk mode streamed to GeoTIFF (streamed_dense) equals the whole-grid run cell for cell.

The whole-grid run (prospectivity.run_prospectivity with the shared trunk + write_rasters) is the reference:
probability, classes, target-rank labels, tags, nodata, geotransform and CRS of the files, and the targets,
thresholds, stride line, notes and report numbers (test_streamed_prospectivity.assert_same). Trunk tiles are
made tiny (dense.DEFAULT_TILE, for both runs) so that bands are thinner than the map smoothing's halo.
"""

import numpy as np
import pytest
from streamed_testing import assert_cancels_leave_no_file
from test_dense import build_dense_model
from test_prospectivity import write_stack_file
from test_streamed_prospectivity import assert_same, field, grid_of, read_file

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.inference import dense
from janja_plugin.core.inference import model_card as mc
from janja_plugin.core.inference import prospectivity as pr
from janja_plugin.core.inference import streamed_dense as sd
from janja_plugin.core.inference import streamed_prospectivity as sp
from janja_plugin.core.inference import windows as wn

SIGMA = 1.5  # halo_cells(1.5) = 6 rows


def dense_model(tmp_path, sigma=None, head_output="logits", trained_on="dense_features"):
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    return build_dense_model(folder, window=3, size=6, stride=4, zero_ring=1, head_trained_on=trained_on,
                             head_output=head_output, map_smoothing_cells=sigma)


def both(tmp_path, monkeypatch, data, model, settings, tile, mask=None, deposits=None, tag="a"):
    """The whole-grid and the streamed shared-trunk run on the same stack, tiles of `tile` cells for both."""
    monkeypatch.setattr(dense, "DEFAULT_TILE", tile)
    monkeypatch.setattr(sp, "READ_ROWS", 3)  # the passes read the map back in blocks of 3 rows
    stack = write_stack_file(tmp_path / f"stack_{tag}.tif", data, grid=grid_of(*data.shape[1:]))
    whole = pr.run_prospectivity(stack, model, settings, mask=mask, deposit_cells=deposits)
    assert "shared trunk" in whole.stats.mode
    ref = pr.write_rasters(whole, tmp_path / f"wp_{tag}.tif", tmp_path / f"wc_{tag}.tif", tmp_path / f"wl_{tag}.tif")
    streamed = sp.run_prospectivity_to_files(stack, model, tmp_path / f"sp_{tag}.tif", tmp_path / f"sc_{tag}.tif",
                                             tmp_path / f"sl_{tag}.tif", settings, mask=mask, deposit_cells=deposits)
    assert streamed.probability is None and "shared trunk" in streamed.stats.mode
    return whole, ref, streamed


def gappy_field(nrows, ncols, seed=0):
    data = field(nrows, ncols, seed)
    if nrows > 12:
        data[0, 8:11] = np.nan  # three whole rows of nodata: a band without a value when bands are thin
    data[1, 3, 7] = np.nan
    return data


@pytest.mark.parametrize("tile", [(2, 5), (8, 8), (64, 256)])  # bands thinner than the halo (6), thicker, whole
@pytest.mark.parametrize("sigma", [None, SIGMA])
def test_streamed_equals_whole_grid(tmp_path, monkeypatch, tile, sigma):
    model = dense_model(tmp_path, sigma)
    settings = pr.ProspectivitySettings(threads=1, stride=3, moderate=0.3, high=0.37)
    whole, ref, streamed = both(tmp_path, monkeypatch, gappy_field(29, 31), model, settings, tile)
    assert len(whole.targets) >= 2 and not whole.constant
    assert (read_file(ref["probability"])["data"][8:11] == -9999).all()  # the nodata rows stay nodata
    assert_same(whole, ref, streamed)
    assert "every cell is the model's exact output" in streamed.stride_error.sentence()


@pytest.mark.parametrize("tile", [(2, 5), (8, 8)])
def test_smoothed_mask_and_deposits(tmp_path, monkeypatch, tile):
    """A mask: its cells read the valid cells within the halo, masked cells equal the whole-grid run's."""
    model = dense_model(tmp_path, SIGMA)
    mask = np.zeros((29, 31), bool)
    mask[3:20, 2:25] = True
    mask[0, 0] = mask[28, 30] = True  # the corners: the grid's own edges
    deposits = (np.array([3, 14, 15, 10]), np.array([3, 10, 15, 20]))
    settings = pr.ProspectivitySettings(threads=1)
    whole, ref, streamed = both(tmp_path, monkeypatch, gappy_field(29, 31, seed=3), model, settings, tile, mask=mask,
                                deposits=deposits)
    assert whole.thresholds["method"] == "prediction-area"
    assert np.isfinite(read_file(ref["probability"])["data"][0, 0])
    assert_same(whole, ref, streamed)


def test_a_forced_shared_trunk_with_a_per_window_head_streams_too(tmp_path, monkeypatch):
    model = dense_model(tmp_path, head_output=None, trained_on=None)
    settings = pr.ProspectivitySettings(threads=1, dense=True, stride=2)
    whole, ref, streamed = both(tmp_path, monkeypatch, gappy_field(17, 13), model, settings, (4, 4))
    assert whole.stride_error is None and any("per-window head" in n for n in streamed.notes)
    assert_same(whole, ref, streamed)


@pytest.mark.parametrize("sigma", [None, SIGMA])
@pytest.mark.parametrize("shape", [(1, 23), (5, 1)])
def test_one_row_and_one_column_grids(tmp_path, monkeypatch, sigma, shape):
    model = dense_model(tmp_path, sigma)
    settings = pr.ProspectivitySettings(threads=1, moderate=0.25, high=0.3, extrapolate=True)
    whole, ref, streamed = both(tmp_path, monkeypatch, field(*shape), model, settings, (2, 4))
    assert_same(whole, ref, streamed)


def test_cancel_leaves_no_file_and_progress_never_goes_back(tmp_path, monkeypatch):
    monkeypatch.setattr(dense, "DEFAULT_TILE", (2, 8))
    monkeypatch.setattr(sp, "READ_ROWS", 4)
    stack = write_stack_file(tmp_path / "stack.tif", field(29, 31), grid=grid_of(29, 31))
    model = dense_model(tmp_path, SIGMA)
    settings = pr.ProspectivitySettings(threads=1)
    assert_cancels_leave_no_file(tmp_path, lambda out, progress: sp.run_prospectivity_to_files(
        stack, model, out / "p.tif", out / "c.tif", out / "l.tif", settings, progress=progress), first_stop=2,
        min_calls=20)


def test_refusals_leave_no_file(tmp_path):
    model = dense_model(tmp_path, SIGMA)
    out = tmp_path / "out"
    empty = write_stack_file(tmp_path / "empty.tif", np.full((2, 9, 8), np.nan, np.float32), grid=grid_of(9, 8))
    with pytest.raises(JanjaInputError, match="no cell where all of Au_ppb, As_ppm have values"):
        sp.run_prospectivity_to_files(empty, model, out / "p.tif", out / "c.tif")
    assert not out.exists() or not list(out.iterdir())
    stack = write_stack_file(tmp_path / "stack.tif", field(9, 8), grid=grid_of(9, 8))
    mask = np.zeros((9, 8), bool)
    mask[2, 3] = True
    data = field(9, 8)
    data[:, 2, 3] = np.nan
    holed = write_stack_file(tmp_path / "holed.tif", data, grid=grid_of(9, 8))
    with pytest.raises(JanjaInputError, match="mask covers no cell of the stack that has values"):
        sp.run_prospectivity_to_files(holed, model, out / "p.tif", mask=mask)
    assert not out.exists() or not list(out.iterdir())
    with pytest.raises(JanjaInputError, match="shared trunk on 8 x 9 cells would need about .* GB of memory even "
                                              "streamed band by band"):
        sp.run_prospectivity_to_files(stack, model, out / "p.tif", memory_limit=10 * 1024**2)
    (tmp_path / "model" / "m_trunk.onnx").unlink()
    with pytest.raises(JanjaInputError, match="m_trunk.onnx .*missing"):
        sp.run_prospectivity_to_files(stack, model, out / "p.tif")
    assert not out.exists() or not list(out.iterdir())


def test_memory_bound_does_not_grow_with_the_height_and_counts_the_trunk_tile(tmp_path):
    model = mc.load_model(dense_model(tmp_path, SIGMA), threads=1)
    short, tall = grid_of(1_000, 10_000), grid_of(100_000, 10_000)
    assert sd.memory_bound(short, model, 2) == sd.memory_bound(tall, model, 2) < 1024**3
    assert sd.memory_bound(tall, model, 2, masked=True) - sd.memory_bound(tall, model, 2) == 10**9
    wide = grid_of(1_000, 100_000)
    assert sd.memory_bound(wide, model, 2) > sd.memory_bound(short, model, 2)  # rows are held whole
    big_tile = sd.memory_bound(short, model, 2, tile=(256, 1024))
    assert big_tile - sd.memory_bound(short, model, 2) > sd.TRUNK_BYTES_PER_PIXEL * 2 * 2 * (256 * 1024 - 64 * 256)


def test_written_rows_cover_the_grid_once_whatever_the_bands(tmp_path, monkeypatch):
    """The rolling smoothing hands every row to the writer exactly once, in order (the writer checks the count)."""
    model = mc.load_model(dense_model(tmp_path, SIGMA), threads=1)
    parts = dense.load_parts(model)
    data = field(23, 9)
    stack = wn.ArrayStack(data, ["Au_ppb", "As_ppm"])
    for rows in (2, 4, 6, 8, 30):
        bands = dense.dense_bands(model, parts, stack, [0, 1], tile=(rows, 9), smoothing_sigma=SIGMA)
        got = [(r0, p.shape[0]) for r0, p in sd.smoothed_rows(bands, SIGMA, 23)]
        starts = [r0 for r0, _ in got]
        assert starts == sorted(starts) and sum(n for _, n in got) == 23 and starts[0] == 0
        assert all(a + n == b for (a, n), b in zip(got, starts[1:]))


def test_rolling_smoothing_equals_the_whole_map_at_the_grid_edges_and_inside():
    """smoothed_rows on bands of 1-9 rows (thinner and thicker than the halo) gives smooth()'s bits over the
    whole map, top and bottom edges included; smoothing each band alone (reflecting at its own edges) would not."""
    from janja_plugin.core.smoothing import smooth

    rng = np.random.default_rng(7)
    z = rng.normal(size=(37, 11)) * 3
    z[rng.random(z.shape) < 0.15] = np.nan
    z[12:15] = np.nan  # whole rows without a value
    mask = rng.random(z.shape) < 0.7
    for sigma in (0.6, SIGMA, 3.0):
        whole = smooth(z, sigma)
        expected = np.full(z.shape, np.nan, np.float32)
        keep = np.isfinite(whole) & mask
        expected[keep] = (1.0 / (1.0 + np.exp(-whole[keep]))).astype(np.float32)
        for rows in (1, 2, 5, 6, 7, 9, 37):
            bands = [dense.DenseBand(r0, min(r0 + rows, 37), z[r0:r0 + rows], None) for r0 in range(0, 37, rows)]
            got = np.full(z.shape, -1.0, np.float32)
            for r0, p in sd.smoothed_rows(iter(bands), sigma, 37, mask):
                got[r0:r0 + p.shape[0]] = p
            np.testing.assert_array_equal(got, expected, err_msg=f"sigma {sigma}, bands of {rows} rows")
            if rows < 37:
                alone = np.concatenate([smooth(b.values, sigma) for b in bands])
                assert not np.allclose(alone, whole, equal_nan=True)  # reflecting at band edges is wrong
