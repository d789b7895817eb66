"""The prospectivity job: a GeoTIFF stack and a known-weight model in, probability/classes/targets out."""

import numpy as np
import pytest
import rasterio
from test_model_card import build_model, card_dict
from test_windows import reference

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.inference import prospectivity as pr
from janja_plugin.core.inference import windows as wn
from janja_plugin.core.raster_grid import Grid, write_stack
from janja_plugin.core.reporting.report import HtmlReport

GRID = Grid(400000.0, 6500000.0, 250.0, 16, 12)
CRS = "EPSG:28350"
ELEMENTS = [("Au_ppb", "ppb", "log10", 0.5, 0.4), ("As_ppm", "ppm", "log10", 1.0, 0.5)]


def hot_spots():
    """Au and As with two anomalies: a strong one (top left) and a weaker one (bottom right)."""
    yy, xx = np.mgrid[0:GRID.nrows, 0:GRID.ncols]
    au = 2 + 60 * np.exp(-((yy - 3) ** 2 + (xx - 3) ** 2) / 4) + 25 * np.exp(-((yy - 9) ** 2 + (xx - 12) ** 2) / 3)
    as_ = 8 + 0.5 * xx + 0.2 * yy
    return np.stack([au, as_]).astype(np.float32)


def write_model(tmp_path):
    """Pooled model: logit(prospective) = 3 * (mean of channel Au) + 1 * (mean of channel As) - 1.5."""
    card = card_dict(elements=ELEMENTS, channels=2, window=3, size=6)
    weights = np.array([[0, 0], [3.0, 1.0]], np.float32), np.array([0, -1.5], np.float32)
    build_model(tmp_path / "m.onnx", card, weights=weights, pool=True)
    return card, weights


def write_stack_file(path, data, names=("Au_ppb", "As_ppm"), grid=GRID):
    write_stack(path, list(data), list(names), grid, CRS)
    return path


def test_roman_numerals():
    assert [pr.roman(n) for n in (1, 2, 3, 4, 5, 7, 9, 10, 14, 40, 90, 1994)] == [
        "I", "II", "III", "IV", "V", "VII", "IX", "X", "XIV", "XL", "XC", "MCMXCIV"]


def test_classify_by_thresholds():
    p = np.array([[0.1, 0.5, 0.79], [0.8, np.nan, 1.0]])
    assert pr.classify(p, 0.5, 0.8).tolist() == [[1, 2, 2], [3, 0, 3]]
    with pytest.raises(JanjaInputError, match="moderate < high"):
        pr.classify(p, 0.8, 0.5)


def test_target_areas_are_8_connected_and_ranked_by_mean_probability():
    p = np.full((6, 7), 0.1)
    p[0, 0], p[1, 1] = 0.85, 0.87  # diagonal neighbours: one area of 2 cells, mean 0.86
    p[4, 4:7] = 0.95  # 3 cells, mean 0.95
    p[5, 0] = 0.99  # a single cell
    grid = Grid(0.0, 600.0, 100.0, 7, 6)
    labels, targets = pr.target_areas(p, pr.classify(p, 0.5, 0.8), grid)
    assert [t.name for t in targets] == ["Area I", "Area II", "Area III"]
    assert [t.n_cells for t in targets] == [1, 3, 2]
    assert targets[1].mean_probability == pytest.approx(0.95) and targets[2].mean_probability == pytest.approx(0.86)
    assert targets[1].area_km2 == pytest.approx(0.03)
    assert (targets[1].x, targets[1].y) == pytest.approx((550.0, 150.0))
    assert labels[5, 0] == 1 and (labels[4, 4:7] == 2).all() and labels[0, 0] == labels[1, 1] == 3
    assert (labels == 0).sum() == p.size - 6
    labels, targets = pr.target_areas(p, pr.classify(p, 0.5, 0.8), grid, min_cells=2)
    assert [t.n_cells for t in targets] == [3, 2] and labels[5, 0] == 0


def test_run_on_geotiff_matches_reference_and_reports(tmp_path):
    card, (weight, bias) = write_model(tmp_path)
    data = hot_spots()
    data[0, 11, 0] = np.nan  # a nodata cell
    path = write_stack_file(tmp_path / "stack.tif", data)
    result = pr.run_prospectivity(path, tmp_path / "m.onnx", pr.ProspectivitySettings(threads=1, tile_rows=5))
    expected, _, _ = reference(data, card, weight, bias, pool=True)
    np.testing.assert_allclose(result.probability, expected, atol=1e-6)
    assert np.isnan(result.probability[11, 0]) and result.classes[11, 0] == 0
    assert result.grid == GRID and "28350" in result.crs_wkt
    assert result.classes.max() == 3 and result.thresholds == {"moderate": 0.5, "high": 0.8, "method": "user"}
    assert [t.name for t in result.targets][:2] == ["Area I", "Area II"]
    best = result.targets[0]
    assert best.mean_probability >= result.targets[-1].mean_probability
    assert result.labels[3, 3] == 1  # the strong anomaly is Area I
    hi = result.classes == 3
    assert best.mean_probability == pytest.approx(result.probability[result.labels == 1].mean(), abs=1e-6)
    assert (result.labels > 0).sum() == hi.sum()

    written = pr.write_rasters(result, tmp_path / "p.tif", tmp_path / "c.tif", tmp_path / "l.tif")
    with rasterio.open(written["target_rank"]) as ds:
        lab = ds.read(1)
        assert ds.nodata == -9999 and (lab[result.labels > 0] == result.labels[result.labels > 0]).all()
    with rasterio.open(written["probability"]) as ds:
        np.testing.assert_allclose(ds.read(1, masked=True).filled(np.nan), result.probability, atol=0, equal_nan=True)

    report = HtmlReport("test")
    pr.report_section(report, result)
    html = report.html()
    assert "Area I" in html and "<svg" in html and "Probability histogram" in html and "test window classifier" in html


def test_stride_run_agrees_at_nodes(tmp_path):
    write_model(tmp_path)
    path = write_stack_file(tmp_path / "stack.tif", hot_spots())
    full = pr.run_prospectivity(path, tmp_path / "m.onnx", pr.ProspectivitySettings(threads=1))
    coarse = pr.run_prospectivity(path, tmp_path / "m.onnx", pr.ProspectivitySettings(threads=1, stride=2))
    np.testing.assert_allclose(coarse.probability[::2, ::2], full.probability[::2, ::2], atol=1e-6)
    assert coarse.stats.n_windows < full.stats.n_windows and coarse.stats.n_interpolated > 0
    assert np.nanmax(np.abs(coarse.probability - full.probability)) < 0.3  # sharp anomalies 2-3 cells wide


def test_refuses_stack_without_card_elements(tmp_path):
    write_model(tmp_path)
    path = write_stack_file(tmp_path / "stack.tif", hot_spots(), names=("Au_ppb", "Cu_ppm"))
    with pytest.raises(JanjaInputError, match="lacks As_ppm.*The stack has: Au_ppb, Cu_ppm"):
        pr.run_prospectivity(path, tmp_path / "m.onnx")


def test_refuses_other_cell_size(tmp_path):
    write_model(tmp_path)
    grid = Grid(GRID.xmin, GRID.ymax, 500.0, GRID.ncols, GRID.nrows)
    path = write_stack_file(tmp_path / "stack.tif", hot_spots(), grid=grid)
    with pytest.raises(JanjaInputError, match="cell size is 500 m .* trained at 250 m"):
        pr.run_prospectivity(path, tmp_path / "m.onnx")


def test_refuses_all_nodata_stack_and_corrupt_model(tmp_path):
    write_model(tmp_path)
    path = write_stack_file(tmp_path / "stack.tif", np.full((2, GRID.nrows, GRID.ncols), np.nan, np.float32))
    with pytest.raises(JanjaInputError, match="no cell where all of Au_ppb, As_ppm have values"):
        pr.run_prospectivity(path, tmp_path / "m.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(JanjaInputError, match="could not be read as an ONNX model"):
        pr.run_prospectivity(path, tmp_path / "bad.onnx")
    with pytest.raises(JanjaInputError, match="could not be opened as a raster"):
        pr.run_prospectivity(tmp_path / "nothing.tif", tmp_path / "m.onnx")


def test_cancel_returns_nothing(tmp_path):
    write_model(tmp_path)
    path = write_stack_file(tmp_path / "stack.tif", hot_spots())
    seen = []

    def progress(fraction):
        seen.append(fraction)
        return True

    result = None
    with pytest.raises(wn.Cancelled):
        result = pr.run_prospectivity(path, tmp_path / "m.onnx", pr.ProspectivitySettings(batch_size=8, tile_rows=2),
                                      progress=progress)
    assert result is None and len(seen) == 1


def test_prediction_area_thresholds_from_known_deposits(tmp_path):
    """Deposits on the strong anomaly: high = the P-A intersection computed by core.evaluation.evaluate."""
    from janja_plugin.core.evaluation.evaluate import prediction_area

    write_model(tmp_path)
    path = write_stack_file(tmp_path / "stack.tif", hot_spots())
    deposits = (np.array([3, 2, 4, 9]), np.array([3, 3, 4, 12]))
    res = pr.run_prospectivity(path, tmp_path / "m.onnx", deposit_cells=deposits)
    p = res.probability
    expected = prediction_area(p[np.isfinite(p)], p[deposits]).intersection_threshold
    assert res.thresholds["method"] == "prediction-area"
    assert res.thresholds["high"] == pytest.approx(expected)
    assert res.thresholds["moderate"] <= res.thresholds["high"]
    assert all(res.classes[r, c] >= 2 for r, c in zip(*deposits))
    with pytest.raises(JanjaInputError, match="nodata"):
        pr.prediction_area_thresholds(np.full((3, 3), np.nan), (np.array([1]), np.array([1])))
