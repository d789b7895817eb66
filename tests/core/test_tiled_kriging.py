"""Kriging streamed in row tiles writes exactly what the whole-grid run writes (no QGIS)."""

import numpy as np
import pytest

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.geostatistics import krige_pipeline as kp
from janja_plugin.core.geostatistics import kriging
from janja_plugin.core.geostatistics import tiled_kriging as tk
from janja_plugin.core.raster_grid import grid_for_extent, write_stack
from janja_plugin.core.tiled_geotiff import TiledStackWriter

WKT = 'PROJCS["WGS 84 / UTM zone 50S",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",117],PARAMETER["scale_factor",0.9996],PARAMETER["false_easting",500000],PARAMETER["false_northing",10000000],UNIT["metre",1]]'  # noqa: E501


def samples(n=400, seed=5):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 12_000, n), rng.uniform(0, 9_000, n)
    au = np.exp(np.sin(x / 2000) + np.cos(y / 1700) + 0.3 * rng.standard_normal(n))
    cu = 10 * np.exp(np.cos(x / 3000) + 0.2 * rng.standard_normal(n))
    return x, y, {"Au": list(au), "Cu": list(cu)}


def read(path):
    from osgeo import gdal

    ds = gdal.Open(str(path))
    bands = [ds.GetRasterBand(i + 1) for i in range(ds.RasterCount)]
    out = {"data": np.stack([b.ReadAsArray() for b in bands]), "names": [b.GetDescription() for b in bands],
           "nodata": [b.GetNoDataValue() for b in bands], "transform": ds.GetGeoTransform()}
    ds = None
    return out


def whole_and_tiled(tmp_path, settings, inside=None, tile_rows=7):
    x, y, cols = samples()
    grid = grid_for_extent(0, 0, 12_000, 9_000, cell=100.0)  # 120 x 90 cells
    res = kp.krige_elements(x, y, cols, settings, grid, inside=inside, log=lambda s: None)
    write_stack(tmp_path / "whole.tif", [r.prediction for r in res], list(cols), grid, WKT)
    write_stack(tmp_path / "whole_var.tif", [r.variance for r in res], list(cols), grid, WKT)
    if settings.transform == "log":
        write_stack(tmp_path / "whole_log.tif", [b for r in res for b in (r.log_prediction, r.log_variance)],
                    [n for c in cols for n in (f"log_{c}", f"log_{c}_variance")], grid, WKT)
    tiled = tk.krige_elements_to_files(x, y, cols, settings, grid, tmp_path / "tiled.tif",
                                       tmp_path / "tiled_var.tif", WKT, inside=inside, tile_rows=tile_rows,
                                       log=lambda s: None, workers=2, log_path=tmp_path / "tiled_log.tif")
    return res, tiled


@pytest.mark.parametrize("settings, masked", [
    (kp.KrigeSettings(neighbours=16), True),  # local, lognormal, a mask
    (kp.KrigeSettings(neighbours=12, transform="none", anisotropy_angle=30, anisotropy_ratio=0.6), False),
    (kp.KrigeSettings(neighbours=0), False),  # global
])
def test_tiled_output_equals_whole_grid_output_bit_for_bit(tmp_path, monkeypatch, settings, masked):
    # small chunks so that chunks straddle the 7-row tiles, as 32,768-cell chunks do on big grids
    monkeypatch.setattr(kriging, "CHUNK_TARGETS", 1000)
    monkeypatch.setattr(kriging, "GLOBAL_BATCH_DOUBLES", 401 * 700)
    inside = None
    if masked:
        inside = np.ones((90, 120), bool)
        inside[:20, :50] = False
        inside[60:, 100:] = False
    res, tiled = whole_and_tiled(tmp_path, settings, inside)
    pairs = [("whole.tif", "tiled.tif"), ("whole_var.tif", "tiled_var.tif")]
    if settings.transform == "log":  # the log stack is streamed too (ln prediction, ln variance per element)
        pairs.append(("whole_log.tif", "tiled_log.tif"))
    else:
        assert not (tmp_path / "tiled_log.tif").exists()
    for a, b in pairs:
        w, t = read(tmp_path / a), read(tmp_path / b)
        assert w["data"].dtype == t["data"].dtype == np.float32
        assert w["data"].tobytes() == t["data"].tobytes()
        assert w["names"] == t["names"] and t["names"][:2] in (["Au", "Cu"], ["log_Au", "log_Au_variance"])
        assert w["nodata"] == t["nodata"] and w["transform"] == t["transform"]
        if masked:
            assert np.all(t["data"][:, :20, :50] == t["nodata"][0])
    assert [r.fit for r in res] == [r.fit for r in tiled]
    assert [r.cv_summary for r in res] == [r.cv_summary for r in tiled]
    assert [r.notes for r in res] == [r.notes for r in tiled]
    assert [r.classes for r in res] == [r.classes for r in tiled] and tiled[0].classes["prediction"][0]
    assert tiled[0].prediction is None


def test_cancel_and_refusal_leave_no_file(tmp_path):
    x, y, cols = samples()
    grid = grid_for_extent(0, 0, 12_000, 9_000, cell=100.0)
    with pytest.raises(kriging.KrigingCancelled):
        tk.krige_elements_to_files(x, y, cols, kp.KrigeSettings(neighbours=16), grid, tmp_path / "p.tif",
                                   tmp_path / "v.tif", WKT, tile_rows=10, progress=lambda f: f > 0.3,
                                   log=lambda s: None)
    cols["Cu"] = [5.0] * len(x)
    with pytest.raises(JanjaInputError, match="equal"):
        tk.krige_elements_to_files(x, y, cols, kp.KrigeSettings(neighbours=16), grid, tmp_path / "p.tif",
                                   tmp_path / "v.tif", WKT, log=lambda s: None)
    assert list(tmp_path.iterdir()) == []


def test_writer_tiles_compresses_and_builds_overviews(tmp_path):
    from osgeo import gdal

    grid = grid_for_extent(0, 0, 700, 300, cell=1.0)  # 700 x 300: overviews 2 and 4
    data = np.arange(grid.n_cells, dtype=float).reshape(grid.nrows, grid.ncols)
    data[5, 7] = np.nan
    with TiledStackWriter(tmp_path / "s.tif", ["a"], grid, WKT) as w:
        for r0 in range(0, grid.nrows, 256):
            w.write_rows(r0, [data[r0:r0 + 256]])
    ds = gdal.Open(str(tmp_path / "s.tif"))
    band = ds.GetRasterBand(1)
    assert band.GetBlockSize() == [256, 256] and band.GetOverviewCount() == 2
    assert ds.GetMetadata("IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
    got = band.ReadAsArray()
    assert got[5, 7] == band.GetNoDataValue() and got[299, 699] == np.float32(data[299, 699])
    ds = None
    with pytest.raises(RuntimeError, match="rows written"):
        with TiledStackWriter(tmp_path / "t.tif", ["a"], grid, WKT) as w:
            w.write_rows(0, [data[:256]])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.tif"]


@pytest.mark.parametrize("neighbours", [16, None])
def test_streamed_cells_equal_ordinary_kriging_in_float64(monkeypatch, neighbours):
    """Stronger than the float32 files: the same chunks in the same order give the same float64 bits."""
    from janja_plugin.core.geostatistics import variogram

    monkeypatch.setattr(kriging, "CHUNK_TARGETS", 1000)
    monkeypatch.setattr(kriging, "GLOBAL_BATCH_DOUBLES", 401 * 700)
    rng = np.random.default_rng(5)
    x, y = rng.uniform(0, 12_000, 400), rng.uniform(0, 9_000, 400)
    z = np.sin(x / 2000) + 0.3 * rng.standard_normal(400)
    model = variogram.make_model("spherical", 0.05, 1.0, 3000.0)
    grid = grid_for_extent(0, 0, 12_000, 9_000, cell=100.0)
    cx, cy = grid.cell_centres()
    whole = kriging.ordinary_kriging(x, y, z, cx, cy, model, neighbours=neighbours, workers=2)
    kr = tk._Kriger(x, y, z, model, neighbours, None, workers=2)
    got = np.full((3, grid.nrows, grid.ncols), np.nan)
    rows_seen = []

    def emit(row0, bands):
        rows_seen.append(row0)
        for i, b in enumerate(bands):
            got[i, row0:row0 + b.shape[0]] = b

    tk.stream_cells(grid, None, kr.chunk, kr.solve, 3, emit, tile_rows=7, workers=kr.workers,
                    limit_blas=not kr.is_global)
    assert sorted(rows_seen) == list(range(0, grid.nrows, 7))
    for i, ref in enumerate((whole.prediction, whole.variance, whole.lagrange)):
        np.testing.assert_array_equal(got[i].ravel(), ref)


def test_chunked_leave_one_out_equals_the_whole_one():
    from janja_plugin.core.geostatistics import variogram

    rng = np.random.default_rng(9)
    x, y = rng.uniform(0, 12_000, 700), rng.uniform(0, 9_000, 700)
    z = np.sin(x / 2000) + 0.3 * rng.standard_normal(700)
    model = variogram.make_model("exponential", 0.05, 1.0, 1500.0)
    for k, radius in ((16, None), (10, 250.0)):  # 250 m: some samples have no neighbour (NaN)
        whole = kriging.cross_validate(x, y, z, model, neighbours=k, search_radius=radius)
        one = tk.cross_validate_chunked(x, y, z, model, k, radius)  # one chunk: the same computation
        np.testing.assert_array_equal(one.predicted, whole.predicted)
        np.testing.assert_array_equal(one.variance, whole.variance)
        many = tk.cross_validate_chunked(x, y, z, model, k, radius, chunk=97)
        np.testing.assert_allclose(many.predicted, whole.predicted, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(many.variance, whole.variance, rtol=1e-12, atol=1e-12)
        assert np.isnan(whole.predicted).any() == (radius is not None)


def test_writer_keeps_gdals_exception_mode_and_writes_what_write_stack_writes_around_the_cells(tmp_path):
    """QGIS's own Python relies on GDAL's default (no exceptions), a process-wide switch; the files are
    readable by others (umask) and carry the same CRS text as write_stack's."""
    import os

    from osgeo import gdal

    grid = grid_for_extent(0, 0, 300, 200, cell=10.0)
    data = np.arange(grid.n_cells, dtype=float).reshape(grid.nrows, grid.ncols)
    before = gdal.GetUseExceptions()
    gdal.DontUseExceptions()
    try:
        with TiledStackWriter(tmp_path / "t.tif", ["a"], grid, "EPSG:28992") as w:
            w.write_rows(0, [data])
        assert gdal.GetUseExceptions() == 0
    finally:
        if before:
            gdal.UseExceptions()
    write_stack(tmp_path / "w.tif", [data], ["a"], grid, "EPSG:28992")
    t, w = gdal.Open(str(tmp_path / "t.tif")), gdal.Open(str(tmp_path / "w.tif"))
    assert t.GetProjection() == w.GetProjection() and "Amersfoort" in t.GetProjection()
    assert t.GetGeoTransform() == w.GetGeoTransform()
    t = w = None
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "t.tif").st_mode & 0o777 == 0o666 & ~umask


def test_writer_memory_does_not_grow_with_the_grid(tmp_path):
    """Each finished block row leaves GDAL's block cache (default 5 % of RAM): without the flush a 10^8-cell
    run held ~0.8 GB of cached blocks on top of the kriging."""
    from osgeo import gdal

    grid = grid_for_extent(0, 0, 2048, 2048, cell=1.0)  # 2048 x 2048 cells, 8 block rows of 2 MB per band
    rows = np.random.default_rng(0).random((256, grid.ncols))
    before = gdal.GetCacheUsed()
    with TiledStackWriter(tmp_path / "s.tif", ["a", "b"], grid, "") as w:
        for row0 in range(0, grid.nrows, 256):
            w.write_rows(row0, [rows, rows])
            assert gdal.GetCacheUsed() - before < 2 * 256 * grid.ncols * 4  # under one block row per band
    with rasterio_open(tmp_path / "s.tif") as src:
        assert np.array_equal(src.read(2, window=((1792, 2048), (0, grid.ncols))), rows.astype(np.float32))


def rasterio_open(path):
    import rasterio

    return rasterio.open(path)


def test_overviews_are_built_under_a_small_block_cache_and_the_cache_is_restored(tmp_path, monkeypatch):
    """Reading the grid back for overviews filled GDAL's cache (10^8 cells: 649 MB peak; 180 MB capped)."""
    from osgeo import gdal

    from janja_plugin.core import tiled_geotiff

    calls = []
    real = gdal.SetCacheMax
    monkeypatch.setattr(gdal, "SetCacheMax", lambda n: (calls.append(n), real(n))[1])
    cache = gdal.GetCacheMax()
    grid = grid_for_extent(0, 0, 600, 600, cell=1.0)  # over one block: overviews are built
    with TiledStackWriter(tmp_path / "s.tif", ["a"], grid, "") as w:
        w.write_rows(0, [np.ones((600, 600))])
    assert calls == [min(cache, tiled_geotiff.OVERVIEW_CACHE), cache] and gdal.GetCacheMax() == cache
