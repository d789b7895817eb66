import numpy as np
import pytest

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.raster_grid import NODATA, check_grid_size, grid_for_extent, write_stack


def test_grid_snaps_to_whole_cells_and_covers_extent():
    g = grid_for_extent(1003.0, 2001.0, 1998.0, 2499.0, cell=100.0, margin=0.0)
    assert (g.xmin, g.ymax) == (1000.0, 2500.0)
    assert g.xmax >= 1998.0 and g.ymin <= 2001.0
    assert (g.ncols, g.nrows) == (10, 5)
    x, y = g.cell_centres()
    assert x[0] == 1050.0 and y[0] == 2450.0 and x.size == g.n_cells


def test_refuses_grid_too_large_with_a_suggestion():
    g = grid_for_extent(0, 0, 1e6, 1e6, cell=1.0)
    with pytest.raises(JanjaInputError, match="cell size at least"):
        check_grid_size(g, n_layers=5)


def test_bad_cell_size():
    with pytest.raises(JanjaInputError, match="positive"):
        grid_for_extent(0, 0, 10, 10, cell=0)


def test_stack_round_trip(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    g = grid_for_extent(0, 0, 300, 200, cell=100.0)
    a = np.arange(6, dtype=float).reshape(2, 3)
    b = a * 2
    b[0, 0] = np.nan
    path = write_stack(tmp_path / "s.tif", [a, b], ["Au_ppb", "Cu_ppm"], g, "EPSG:32750")
    assert not list(tmp_path.glob(".*"))  # no temporary left behind
    with rasterio.open(path) as src:
        assert src.count == 2 and src.descriptions == ("Au_ppb", "Cu_ppm")
        assert src.nodata == NODATA and src.crs.to_epsg() == 32750
        assert src.transform.c == 0 and src.transform.f == 200
        np.testing.assert_array_equal(src.read(1), a.astype(np.float32))
        assert src.read(2)[0, 0] == NODATA


def test_rasterize_polygon_mask_uses_cell_centres():
    pytest.importorskip("osgeo")
    from osgeo import ogr

    from janja_plugin.core.raster_grid import rasterize_polygons

    g = grid_for_extent(0, 0, 400, 400, cell=100.0)
    square = ogr.CreateGeometryFromWkt("POLYGON((0 0, 210 0, 210 210, 0 210, 0 0))")
    inside = rasterize_polygons([square.ExportToWkb()], g)
    assert inside.shape == (4, 4)
    expected = np.zeros((4, 4), bool)
    expected[2:, :2] = True  # bottom-left 2x2 cells have centres at 50/150
    np.testing.assert_array_equal(inside, expected)
