"""Single-band element rasters stacked as a VRT: names from descriptions or file names, one grid only."""

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from janja_plugin.core.errors import JanjaInputError
from janja_plugin.core.inference.stack_from_rasters import stack_from_rasters
from janja_plugin.core.inference.windows import RasterStack


def write(path, value, description=None, origin=(1000.0, 5000.0), size=(4, 5)):
    with rasterio.open(path, "w", driver="GTiff", width=size[1], height=size[0], count=1, dtype="float32",
                       crs="EPSG:32750", transform=from_origin(*origin, 100, 100), nodata=-9999.0) as dst:
        dst.write(np.full((1, *size), value, np.float32))
        if description:
            dst.set_band_description(1, description)
    return path


def test_stack_names_and_values(tmp_path):
    a = write(tmp_path / "Au_ppm.tif", 1.5)
    b = write(tmp_path / "layer2.tif", 7.0, description="Ag_ppm")
    names = stack_from_rasters([a, b], tmp_path / "stack.vrt")
    assert names == ["Au_ppm", "Ag_ppm"]
    with RasterStack(str(tmp_path / "stack.vrt")) as s:
        assert s.names == ["Au_ppm", "Ag_ppm"]
        block = s.read(0, 4, [0, 1])
    assert block.shape == (2, 4, 5) and float(block[0, 0, 0]) == 1.5 and float(block[1, 3, 4]) == 7.0


def test_refuses_rasters_on_other_grids(tmp_path):
    a = write(tmp_path / "Au_ppm.tif", 1.0)
    b = write(tmp_path / "Ag_ppm.tif", 1.0, origin=(1050.0, 5000.0))
    with pytest.raises(JanjaInputError, match="Align"):
        stack_from_rasters([a, b], tmp_path / "stack.vrt")
    assert not (tmp_path / "stack.vrt").exists()


def test_refuses_duplicate_names(tmp_path):
    (tmp_path / "x").mkdir()
    a = write(tmp_path / "Au_ppm.tif", 1.0)
    b = write(tmp_path / "x" / "Au_ppm.tif", 2.0)
    with pytest.raises(JanjaInputError, match="rename"):
        stack_from_rasters([a, b], tmp_path / "stack.vrt")
