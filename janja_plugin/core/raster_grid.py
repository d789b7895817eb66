"""Output grids and GeoTIFF stacks: one band per element, float32, explicit nodata, atomic writes.

All run-time raster I/O goes through GDAL's Python bindings (osgeo.gdal), which every QGIS ships;
rasterio is not installed with QGIS on Windows or macOS, so it is used only by tests and offline tools.
"""

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import JanjaInputError, require
from .staging import make_readable

NODATA = -9999.0
# Refuse grids whose working arrays would not fit comfortably in memory (bytes).
DEFAULT_MEMORY_LIMIT = 4 * 1024**3


@dataclass(frozen=True)
class Grid:
    """A north-up grid: top-left corner (xmin, ymax), square cells, ncols x nrows."""

    xmin: float
    ymax: float
    cell: float
    ncols: int
    nrows: int

    @property
    def xmax(self):
        return self.xmin + self.ncols * self.cell

    @property
    def ymin(self):
        return self.ymax - self.nrows * self.cell

    @property
    def n_cells(self):
        return self.ncols * self.nrows

    def cell_centres(self, row_start=0, row_stop=None):
        """x, y of the centres of rows [row_start, row_stop), flattened row by row."""
        row_stop = self.nrows if row_stop is None else row_stop
        xs = self.xmin + (np.arange(self.ncols) + 0.5) * self.cell
        ys = self.ymax - (np.arange(row_start, row_stop) + 0.5) * self.cell
        gx, gy = np.meshgrid(xs, ys)
        return gx.ravel(), gy.ravel()

    def geotransform(self):
        """GDAL's six-number geotransform of this north-up grid."""
        return (self.xmin, self.cell, 0.0, self.ymax, 0.0, -self.cell)


def gdal_module(purpose):
    """osgeo.gdal. Its exception mode is process-wide and QGIS's own Python relies on the default, so it
    is left alone: callers check for None / error codes and quote gdal.GetLastErrorMsg()."""
    return require("osgeo.gdal", purpose)


def crs_name(crs):
    """'EPSG:32750 (WGS 84 / UTM zone 50S)' for a report; the WKT's own name when it has no EPSG code."""
    if not crs:
        return "unknown CRS"
    from osgeo import osr

    srs = osr.SpatialReference()
    if srs.SetFromUserInput(str(crs)) != 0:
        return "unknown CRS"
    srs.AutoIdentifyEPSG()
    code, name = srs.GetAuthorityCode(None), srs.GetName() or "unnamed CRS"
    return f"EPSG:{code} ({name})" if code else name


def open_raster(path, what):
    """A read-only GDAL dataset, or a JanjaInputError naming `what` and GDAL's reason."""
    gdal = gdal_module(f"reading the {what}")
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        ds = gdal.Open(str(path), gdal.GA_ReadOnly)
    finally:
        gdal.PopErrorHandler()
    if ds is None:
        reason = gdal.GetLastErrorMsg() or "not a raster GDAL can read"
        raise JanjaInputError(f"The {what} {path} could not be opened as a raster ({reason}).")
    return ds


def srs_wkt(crs):
    """WKT for a CRS given as WKT, 'EPSG:n' or any string GDAL's SetFromUserInput understands."""
    from osgeo import osr

    srs = osr.SpatialReference()
    if srs.SetFromUserInput(str(crs)) != 0:
        raise JanjaInputError(f"The coordinate reference system '{str(crs)[:60]}' is not understood by GDAL.")
    return srs.ExportToWkt()


def grid_for_extent(xmin, ymin, xmax, ymax, cell, margin=0.0):
    """The grid of `cell`-sized cells covering the extent grown by `margin`, snapped to whole cells."""
    if not (cell > 0 and math.isfinite(cell)):
        raise JanjaInputError(f"The cell size must be a positive number of metres, not {cell}.")
    xmin, ymin, xmax, ymax = xmin - margin, ymin - margin, xmax + margin, ymax + margin
    if not (xmax > xmin and ymax > ymin):
        raise JanjaInputError("The output extent is empty: give an extent with a width and a height.")
    xmin = math.floor(xmin / cell) * cell
    ymax = math.ceil(ymax / cell) * cell
    ncols = max(1, math.ceil((xmax - xmin) / cell))
    nrows = max(1, math.ceil((ymax - ymin) / cell))
    return Grid(float(xmin), float(ymax), float(cell), int(ncols), int(nrows))


def check_grid_size(grid, n_layers, bytes_per_cell_per_layer=24, limit=None):
    """Refuse, before any work, a grid too large for memory, with the size and what to do (limit: default
    DEFAULT_MEMORY_LIMIT, read at the call). For whole-grid work; janja:krige streams instead."""
    limit = DEFAULT_MEMORY_LIMIT if limit is None else limit
    need = grid.n_cells * n_layers * bytes_per_cell_per_layer
    if need > limit:
        factor = math.ceil(math.sqrt(need / limit))
        raise JanjaInputError(
            f"The output grid has {grid.ncols} x {grid.nrows} = {grid.n_cells:,} cells for {n_layers} "
            f"layer(s), needing about {need / 1024**3:.1f} GB of memory (limit {limit / 1024**3:.1f} GB). "
            f"Use a cell size at least {factor} times larger ({grid.cell * factor:g} m), or a smaller extent."
        )
    return need


def write_stack(path, bands, names, grid, crs_wkt, nodata=NODATA, tags=None):
    """Write a float32 multi-band GeoTIFF; NaN becomes nodata. Appears at `path` only when complete."""
    gdal = gdal_module("writing GeoTIFF rasters")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tif")
    os.close(fd)
    options = ["COMPRESS=DEFLATE"]
    if grid.ncols >= 256 and grid.nrows >= 256:
        options += ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256"]
    try:
        dst = gdal.GetDriverByName("GTiff").Create(tmp, grid.ncols, grid.nrows, len(bands), gdal.GDT_Float32,
                                                   options=options)
        if dst is None:
            raise JanjaInputError(f"The raster {path} could not be created ({gdal.GetLastErrorMsg()}); check that "
                                  "the folder is writable and the disk not full.")
        try:
            dst.SetGeoTransform(grid.geotransform())
            if crs_wkt:
                dst.SetProjection(srs_wkt(crs_wkt))
            if tags:
                dst.SetMetadata({str(k): str(v) for k, v in tags.items()})
            for i, (band, name) in enumerate(zip(bands, names), start=1):
                data = np.asarray(band, dtype=np.float32).reshape(grid.nrows, grid.ncols)
                out = dst.GetRasterBand(i)
                out.SetNoDataValue(float(nodata))
                out.SetDescription(str(name))
                if out.WriteArray(np.where(np.isfinite(data), data, np.float32(nodata))) != 0:
                    raise JanjaInputError(f"Writing band {i} of {path} failed ({gdal.GetLastErrorMsg()}); check "
                                          "the free disk space.")
            dst.FlushCache()
        finally:
            dst = None  # closes the file: GDAL writes the last blocks and the header here
        make_readable(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def rasterize_polygons(wkb_geometries, grid):
    """Boolean (nrows, ncols) array, True where a cell centre falls inside any of the polygons.

    Geometries are WKB in the grid's CRS. Uses GDAL's rasterizer (cell-centre rule).
    """
    from osgeo import gdal, ogr

    mem = gdal.GetDriverByName("MEM").Create("", grid.ncols, grid.nrows, 1, gdal.GDT_Byte)
    mem.SetGeoTransform((grid.xmin, grid.cell, 0.0, grid.ymax, 0.0, -grid.cell))
    source = ogr.GetDriverByName("Memory").CreateDataSource("mask")
    layer = source.CreateLayer("mask", geom_type=ogr.wkbUnknown)
    for wkb in wkb_geometries:
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkb(bytes(wkb)))
        layer.CreateFeature(feature)
    gdal.RasterizeLayer(mem, [1], layer, burn_values=[1])
    return mem.GetRasterBand(1).ReadAsArray().astype(bool)
