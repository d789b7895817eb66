"""janja:anomaly_score streamed to GeoTIFF (streamed_anomaly) equals the whole-grid run cell for cell.

The whole-grid run (anomaly_score.run_anomaly_score + write_rasters) is the reference: score and class
files (values, nodata, tags, geotransform, CRS), breaks, stride check, notes, sample scores and classes, and
the report. Tiles and read-back blocks are made tiny so tiles are all nodata and node rows fall outside them.
"""

import numpy as np
import pytest
from streamed_testing import assert_cancels_leave_no_file
from test_model_card import build_model, card_dict
from test_prospectivity import ELEMENTS, write_stack_file
from test_streamed_prospectivity import field, grid_of, read_file

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.inference import anomaly_score as an
from janja_plugin.core.inference import streamed_anomaly as sa
from janja_plugin.core.inference import streamed_prospectivity as sp
from janja_plugin.core.reporting.report import HtmlReport


def write_model(tmp_path):
    """score = 0.5 + 0.1 * mean standardised log Au + 0.05 * mean standardised log As (not clipped)."""
    card = card_dict(elements=ELEMENTS, channels=2, window=3, size=3, class_names=("anomaly",),
                     output_kind="score", model_kind="unsupervised_anomaly")
    build_model(tmp_path / "m.onnx", card, weights=(np.array([[0.1, 0.05]], np.float32), np.array([0.5], np.float32)),
                pool=True, softmax=False)
    return tmp_path / "m.onnx"


def cell_xy(grid, rows, cols):
    return grid.xmin + (np.asarray(cols) + 0.5) * grid.cell, grid.ymax - (np.asarray(rows) + 0.5) * grid.cell


def both(tmp_path, data, settings, mask=None, points=None, read_rows=3, monkeypatch=None, tag="a"):
    grid = grid_of(*data.shape[1:])
    stack = write_stack_file(tmp_path / f"stack_{tag}.tif", data, grid=grid)
    model = write_model(tmp_path)
    xy = None if points is None else cell_xy(grid, *points)
    whole = an.run_anomaly_score(stack, model, settings, mask=mask, sample_xy=xy)
    whole.sample_xy = xy
    ref = an.write_rasters(whole, tmp_path / f"ws_{tag}.tif", tmp_path / f"wc_{tag}.tif")
    if monkeypatch is not None:
        monkeypatch.setattr(sp, "READ_ROWS", read_rows)
    streamed = sa.run_anomaly_score_to_files(stack, model, tmp_path / f"ss_{tag}.tif", tmp_path / f"sc_{tag}.tif",
                                             settings, mask=mask, sample_xy=xy)
    return whole, ref, streamed


def assert_same(whole, ref, streamed):
    for name in ("score", "classes"):
        a, b = read_file(ref[name]), read_file(streamed.paths[name])
        assert np.array_equal(a["data"], b["data"]), name  # bit for bit (nodata written as -9999)
        a["tags"].pop("janja_stride_seconds", None), b["tags"].pop("janja_stride_seconds", None)  # time taken
        for key in ("nodata", "transform", "crs", "tags", "size"):
            assert a[key] == b[key], (name, key)
    assert np.array_equal(np.asarray(streamed.breaks), np.asarray(whole.breaks), equal_nan=True)
    if whole.stride_error is not None:
        streamed.stride_error.seconds = whole.stride_error.seconds  # time taken
    assert streamed.stride_error == whole.stride_error
    assert streamed.notes == whole.notes
    assert (streamed.constant, streamed.spread) == (whole.constant, whole.spread)
    for key in ("n_windows", "n_windows_filled", "n_values_filled", "n_valid_cells", "n_interpolated"):
        assert getattr(streamed.stats, key) == getattr(whole.stats, key), key
    if whole.sample_scores is None:
        assert streamed.sample_scores is None
    else:
        assert np.array_equal(streamed.sample_scores, whole.sample_scores, equal_nan=True)
        under = an.values_at(whole.classes.astype(float), whole.grid, *whole.sample_xy)  # the class raster's
        assert np.array_equal(whole.sample_classes(), np.nan_to_num(under).astype(np.uint8))
        assert np.array_equal(streamed.sample_classes(), whole.sample_classes())
    counts, n_classed, n, hist = streamed.map_summary()
    wc, wcl, wn_, wh = whole.map_summary()
    assert counts == wc and n_classed == wcl and n == wn_ and np.array_equal(hist, wh)
    streamed.seconds = whole.seconds = 1.0
    streamed.stats.seconds = whole.stats.seconds = 1.0
    reports = []
    for result in (whole, streamed):
        report = HtmlReport("test")
        an.report_section(report, result)
        reports.append(report.html().replace(str(result.model_path), "MODEL"))
    assert reports[0] == reports[1]


@pytest.mark.parametrize("stride", [1, 3])
def test_streamed_equals_whole_grid_with_mask_nodata_tile_and_points(tmp_path, monkeypatch, stride):
    data = field(29, 31)
    data[0, 20:24] = np.nan  # rows 20-23: with tile_rows=4, a tile that is all nodata
    data[1, 3, 7] = np.nan
    mask = np.ones((29, 31), bool)
    mask[:4, :10] = False
    points = (np.array([5, 3, 21, 2, 28, 14]), np.array([7, 3, 5, 4, 30, 15]))  # one on nodata, two masked
    settings = an.AnomalySettings(threads=1, stride=stride, tile_rows=4, batch_size=16, stride_sample=50,
                                  percentiles=(33.3, 77.7, 95.5))
    whole, ref, streamed = both(tmp_path, data, settings, mask=mask, points=points, monkeypatch=monkeypatch)
    assert not whole.constant and whole.stats.n_valid_cells < 29 * 31
    assert np.isnan(whole.sample_scores[2]) and np.isnan(whole.sample_scores[3])  # nodata row, masked corner
    assert "3 of 6 samples lie outside the stack or on nodata" in whole.notes[-1]
    assert len(set(whole.sample_classes()[np.isfinite(whole.sample_scores)])) > 1
    if stride > 1:  # the check ran on both strata (uniform 50 + top), with classes
        e = whole.stride_error
        assert e.n_windows > 50 and e.n_top > 0 and e.class_changed is not None
    assert_same(whole, ref, streamed)
    assert streamed.score is None and streamed.classes is None


def test_one_row_grid(tmp_path, monkeypatch):
    data = field(1, 40)
    settings = an.AnomalySettings(threads=1, stride=2)
    whole, ref, streamed = both(tmp_path, data, settings, points=(np.array([0, 0]), np.array([3, 39])),
                                monkeypatch=monkeypatch)
    assert_same(whole, ref, streamed)


def test_constant_map(tmp_path, monkeypatch):
    data = np.stack([np.full((12, 10), 5.0), np.full((12, 10), 9.0)]).astype(np.float32)
    settings = an.AnomalySettings(threads=1, tile_rows=4)
    whole, ref, streamed = both(tmp_path, data, settings, points=(np.array([2]), np.array([2])),
                                monkeypatch=monkeypatch)
    assert whole.constant and streamed.sample_classes().tolist() == [0]
    assert_same(whole, ref, streamed)


def test_cancel_leaves_no_file_and_progress_never_goes_back(tmp_path, monkeypatch):
    data = field(29, 31)
    stack = write_stack_file(tmp_path / "stack.tif", data, grid=grid_of(29, 31))
    model = write_model(tmp_path)
    monkeypatch.setattr(sp, "READ_ROWS", 4)
    settings = an.AnomalySettings(threads=1, stride=2, tile_rows=4, batch_size=8, stride_sample=30)
    assert_cancels_leave_no_file(tmp_path, lambda out, progress: sa.run_anomaly_score_to_files(
        stack, model, out / "s.tif", out / "c.tif", settings, progress=progress), first_stop=3)


def test_refusals_leave_no_file(tmp_path):
    grid = grid_of(9, 8)
    stack = write_stack_file(tmp_path / "stack.tif", field(9, 8), grid=grid)
    model = write_model(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(JanjaInputError, match="No sample lies on a scored cell"):
        sa.run_anomaly_score_to_files(stack, model, out / "s.tif", out / "c.tif", an.AnomalySettings(threads=1),
                                      sample_xy=(np.array([0.0]), np.array([0.0])))
    assert not out.exists() or not list(out.iterdir())
    with pytest.raises(JanjaInputError, match="Scoring anomalies on 8 x 9 cells would need about .* GB"):
        sa.run_anomaly_score_to_files(stack, model, out / "s.tif", memory_limit=10 * 1024**2)
    with pytest.raises(JanjaInputError, match="class percentiles must be increasing"):
        sa.run_anomaly_score_to_files(stack, model, out / "s.tif", settings=an.AnomalySettings(percentiles=(90, 50)))
    classifier = tmp_path / "clf.onnx"
    build_model(classifier, card_dict(elements=ELEMENTS, channels=2, window=3, size=3), pool=True)
    with pytest.raises(JanjaInputError, match="not an unsupervised anomaly model"):
        sa.run_anomaly_score_to_files(stack, classifier, out / "s.tif")
    assert not out.exists() or not list(out.iterdir())


def test_memory_bound_does_not_grow_with_the_height(tmp_path):
    from janja_plugin.core.inference import model_card as mc

    model = mc.load_model(write_model(tmp_path), threads=1)
    short, tall = grid_of(1_000, 10_000), grid_of(10_000, 10_000)
    assert sa.memory_bound(short, model, 2) == sa.memory_bound(tall, model, 2) < 1024**3
    assert sa.memory_bound(tall, model, 2, n_points=1000) - sa.memory_bound(tall, model, 2) == 1000 * sa.POINT_BYTES
