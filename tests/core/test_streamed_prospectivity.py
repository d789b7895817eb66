"""janja:prospectivity streamed to GeoTIFF (streamed_prospectivity) equals the whole-grid run cell for cell.

The whole-grid run (prospectivity.run_prospectivity + write_rasters) is the reference: probability, classes,
target-rank labels, tags, nodata, geotransform and CRS of the files, and the targets, thresholds, stride
check, notes and report numbers. Blocks and tiles are made tiny (a few rows) so that tile edges cut target
areas, node rows fall outside tiles and whole tiles are nodata.
"""

import numpy as np
import pytest
from osgeo import gdal
from streamed_testing import assert_cancels_leave_no_file
from test_model_card import build_model, card_dict
from test_prospectivity import ELEMENTS, write_stack_file

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.inference import prospectivity as pr
from janja_plugin.core.inference import streamed_prospectivity as sp
from janja_plugin.core.raster_grid import Grid
from janja_plugin.core.reporting.report import HtmlReport

CRS = "EPSG:28350"


def grid_of(nrows, ncols):
    return Grid(400000.0, 6500000.0, 250.0, ncols, nrows)


def write_model(tmp_path):
    card = card_dict(elements=ELEMENTS, channels=2, window=3, size=6)
    weights = np.array([[0, 0], [3.0, 1.0]], np.float32), np.array([0, -1.5], np.float32)
    build_model(tmp_path / "m.onnx", card, weights=weights, pool=True)
    return tmp_path / "m.onnx"


def field(nrows, ncols, seed=0):
    """Au with anomalies of several shapes (a U whose arms join only at the bottom, blobs, a diagonal chain),
    As a trend with noise: several high-class patches of different sizes and means."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:nrows, 0:ncols]
    au = 2 + 3 * rng.random((nrows, ncols))
    for cy, cx, amp, width in ((3, 3, 60, 4), (nrows - 5, ncols - 6, 25, 3), (nrows // 2, ncols // 3, 40, 2)):
        au += amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / width)
    if nrows > 20 and ncols > 20:  # the U: two arms (rows 5-16) joined by a bottom bar (rows 15-16)
        au[5:17, 14:16] += 80
        au[5:17, 19:21] += 80
        au[15:17, 14:21] += 80
    as_ = 8 + 0.3 * xx + 0.2 * yy + rng.random((nrows, ncols))
    return np.stack([au, as_]).astype(np.float32)


def read_file(path):
    ds = gdal.Open(str(path))
    band = ds.GetRasterBand(1)
    out = dict(data=band.ReadAsArray(), nodata=band.GetNoDataValue(), transform=ds.GetGeoTransform(),
               crs=ds.GetProjection(), tags=ds.GetMetadata(), size=(ds.RasterYSize, ds.RasterXSize))
    ds = None
    return out


def both(tmp_path, data, settings, mask=None, deposits=None, grid=None, read_rows=3, monkeypatch=None, tag="a"):
    grid = grid or grid_of(*data.shape[1:])
    stack = write_stack_file(tmp_path / f"stack_{tag}.tif", data, grid=grid)
    model = write_model(tmp_path)
    whole = pr.run_prospectivity(stack, model, settings, mask=mask, deposit_cells=deposits)
    ref = pr.write_rasters(whole, tmp_path / f"wp_{tag}.tif", tmp_path / f"wc_{tag}.tif", tmp_path / f"wl_{tag}.tif")
    if monkeypatch is not None:
        monkeypatch.setattr(sp, "READ_ROWS", read_rows)
    streamed = sp.run_prospectivity_to_files(stack, model, tmp_path / f"sp_{tag}.tif", tmp_path / f"sc_{tag}.tif",
                                             tmp_path / f"sl_{tag}.tif", settings, mask=mask, deposit_cells=deposits)
    return whole, ref, streamed


def assert_same(whole, ref, streamed):
    for name in ("probability", "class", "target_rank"):
        a, b = read_file(ref[name]), read_file(streamed.paths[name])
        assert np.array_equal(a["data"], b["data"]), name  # bit for bit (nodata written as -9999)
        a["tags"].pop("janja_stride_seconds", None), b["tags"].pop("janja_stride_seconds", None)  # time taken
        for key in ("nodata", "transform", "crs", "tags", "size"):
            assert a[key] == b[key], (name, key)
    assert streamed.targets == whole.targets  # ranks, names, cells, areas, mean/max probability, centres: exact
    assert streamed.thresholds == whole.thresholds
    if whole.stride_error is not None:
        streamed.stride_error.seconds = whole.stride_error.seconds  # time taken
    assert streamed.stride_error == whole.stride_error
    assert streamed.notes == whole.notes
    assert (streamed.constant, streamed.spread) == (whole.constant, whole.spread)
    for key in ("n_windows", "n_windows_filled", "n_values_filled", "n_valid_cells", "n_interpolated"):
        assert getattr(streamed.stats, key) == getattr(whole.stats, key), key
    counts, n, hist = streamed.map_summary()
    wc, wn_, wh = whole.map_summary()
    assert counts == wc and n == wn_ and np.array_equal(hist, wh)
    streamed.seconds = whole.seconds = 1.0
    streamed.stats.seconds = whole.stats.seconds = 1.0
    reports = []
    for result in (whole, streamed):
        report = HtmlReport("test")
        pr.report_section(report, result)
        reports.append(report.html().replace(str(result.model_path), "MODEL"))
    assert reports[0] == reports[1]


@pytest.mark.parametrize("stride", [1, 2, 3, 9])
def test_streamed_equals_whole_grid(tmp_path, monkeypatch, stride):
    data = field(29, 31)
    data[0, 20:24] = np.nan  # rows 20-23: with tile_rows=4, a tile that is all nodata
    data[1, 3, 7] = np.nan
    settings = pr.ProspectivitySettings(threads=1, stride=stride, tile_rows=4, batch_size=16, stride_sample=50)
    whole, ref, streamed = both(tmp_path, data, settings, monkeypatch=monkeypatch)
    assert len(whole.targets) >= (3 if stride < 9 else 1) and whole.stats.n_valid_cells < 29 * 31
    assert_same(whole, ref, streamed)
    assert streamed.probability is None and streamed.classes is None and streamed.labels is None


def test_tile_edges_cut_the_u_shaped_target_into_one(tmp_path, monkeypatch):
    """Blocks of 2 rows: the U's arms are separate patches in every block until the bottom bar joins them."""
    data = field(29, 31)
    settings = pr.ProspectivitySettings(threads=1, tile_rows=3, moderate=0.5, high=0.9)
    whole, ref, streamed = both(tmp_path, data, settings, read_rows=2, monkeypatch=monkeypatch)
    labels = read_file(streamed.paths["target_rank"])["data"]
    u_rank = labels[6, 14]
    assert u_rank > 0 and labels[6, 20] == u_rank  # both arms: one target area
    assert sum(t.rank == u_rank for t in streamed.targets) == 1
    assert_same(whole, ref, streamed)


def test_mask_deposits_and_prediction_area(tmp_path, monkeypatch):
    data = field(29, 31, seed=3)
    mask = np.ones((29, 31), bool)
    mask[:4, :10] = False
    mask[25:, 20:] = False
    deposits = (np.array([3, 14, 15, 28, 10]), np.array([3, 10, 15, 0, 30]))
    settings = pr.ProspectivitySettings(threads=1, stride=2, tile_rows=5, stride_sample=40)
    whole, ref, streamed = both(tmp_path, data, settings, mask=mask, deposits=deposits, monkeypatch=monkeypatch)
    assert whole.thresholds["method"] == "prediction-area"
    assert_same(whole, ref, streamed)


def test_one_row_grid(tmp_path, monkeypatch):
    data = field(1, 40)
    settings = pr.ProspectivitySettings(threads=1, stride=2, moderate=0.3, high=0.6)
    whole, ref, streamed = both(tmp_path, data, settings, monkeypatch=monkeypatch)
    assert_same(whole, ref, streamed)


def test_constant_map(tmp_path, monkeypatch):
    data = np.stack([np.full((12, 10), 5.0), np.full((12, 10), 9.0)]).astype(np.float32)
    settings = pr.ProspectivitySettings(threads=1, tile_rows=4)
    whole, ref, streamed = both(tmp_path, data, settings, monkeypatch=monkeypatch)
    assert whole.constant and not whole.targets
    assert_same(whole, ref, streamed)


def test_cancel_leaves_no_file_and_progress_never_goes_back(tmp_path, monkeypatch):
    data = field(29, 31)
    stack = write_stack_file(tmp_path / "stack.tif", data, grid=grid_of(29, 31))
    model = write_model(tmp_path)
    monkeypatch.setattr(sp, "READ_ROWS", 4)
    settings = pr.ProspectivitySettings(threads=1, stride=2, tile_rows=4, batch_size=8, stride_sample=30)
    assert_cancels_leave_no_file(tmp_path, lambda out, progress: sp.run_prospectivity_to_files(
        stack, model, out / "p.tif", out / "c.tif", out / "l.tif", settings, progress=progress), first_stop=3)


def test_refusals_leave_no_file(tmp_path):
    data = np.full((2, 9, 8), np.nan, np.float32)
    stack = write_stack_file(tmp_path / "stack.tif", data, grid=grid_of(9, 8))
    model = write_model(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(JanjaInputError, match="no cell where all of Au_ppb, As_ppm have values"):
        sp.run_prospectivity_to_files(stack, model, out / "p.tif", out / "c.tif")
    assert not out.exists() or not list(out.iterdir())
    stack = write_stack_file(tmp_path / "stack2.tif", field(9, 8), grid=grid_of(9, 8))
    with pytest.raises(JanjaInputError, match="None of the known deposits lies on a cell with a probability"):
        mask = np.ones((9, 8), bool)
        mask[0, 0] = False
        sp.run_prospectivity_to_files(stack, model, out / "p.tif", settings=pr.ProspectivitySettings(threads=1),
                                      mask=mask, deposit_cells=(np.array([0]), np.array([0])))
    assert not out.exists() or not list(out.iterdir())
    with pytest.raises(JanjaInputError, match="would need about .* GB of memory even streamed"):
        sp.run_prospectivity_to_files(stack, model, out / "p.tif", memory_limit=10 * 1024**2)
    with pytest.raises(JanjaInputError, match="no shared-trunk parts"):  # forced shared trunk: streamed_dense
        sp.run_prospectivity_to_files(stack, model, out / "p.tif", settings=pr.ProspectivitySettings(dense=True))
    assert not out.exists() or not list(out.iterdir())


def test_memory_bound_does_not_grow_with_the_height(tmp_path):
    from janja_plugin.core.inference import model_card as mc

    model = mc.load_model(write_model(tmp_path), threads=1)
    short, tall = grid_of(1_000, 10_000), grid_of(10_000, 10_000)
    assert sp.memory_bound(short, model, 2) == sp.memory_bound(tall, model, 2) < 1024**3
    assert sp.memory_bound(tall, model, 2, masked=True) - sp.memory_bound(tall, model, 2) == 10**8


class Sink:
    """A writer into memory."""

    def __init__(self, shape):
        self.data = np.zeros(shape, np.float32)

    def write_band_rows(self, _, r0, rows):
        self.data[r0:r0 + rows.shape[0]] = rows


def test_patches_join_across_blocks_like_ndimage(monkeypatch):
    """Random high/low maps, blocks of 1-3 rows: the streamed patches, their sums and ranks equal target_areas."""
    rng = np.random.default_rng(11)
    for trial in range(30):
        nrows, ncols = int(rng.integers(1, 25)), int(rng.integers(1, 25))
        p = rng.random((nrows, ncols)).astype(np.float32)
        p[rng.random((nrows, ncols)) < 0.1] = np.nan
        grid = grid_of(nrows, ncols)
        classes = pr.classify(p, 0.3, 0.6)
        labels, targets = pr.target_areas(p, classes, grid, min_cells=2)
        monkeypatch.setattr(sp, "READ_ROWS", int(rng.integers(1, 4)))

        cls, lab = Sink((nrows, ncols)), Sink((nrows, ncols))
        counts, got = sp.classes_and_targets(lambda a, b, p=p: p[a:b], grid, 0.3, 0.6, False, 2, cls, lab,
                                              lambda: None)
        assert got == targets, trial
        assert np.array_equal(np.nan_to_num(lab.data), labels.astype(np.float32)), trial
        assert np.array_equal(np.nan_to_num(cls.data), classes.astype(np.float32)), trial
