"""A GeoTIFF stack written row tile by row tile through GDAL, so no whole band is ever in memory.

Same contract as raster_grid.write_stack (float32, one band per name, NaN written as nodata, band
descriptions, metadata tags, the file appears at its path only when complete), but the caller hands
over rows as they are computed. The file is internally tiled (256 x 256) and deflate-compressed,
BigTIFF when it may exceed 4 GB, with average overviews down to under 256 cells so QGIS opens a
10^8-cell result smoothly. Kept apart from raster_grid.py (which writes whole bands) on purpose.
"""

import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import JanjaInputError, require
from .raster_grid import NODATA, srs_wkt
from .staging import make_readable

BLOCK = 256


OVERVIEW_CACHE = 64 * 1024**2  # bytes of GDAL block cache while the overviews are built


class TiledStackWriter:
    """Context manager: `with TiledStackWriter(path, names, grid, crs_wkt) as w: w.write_rows(r0, bands)`.

    Rows may come in any order; every row must be written once. On an exception inside the block
    the temporary file is removed and nothing appears at `path`.
    """

    def __init__(self, path, names, grid, crs_wkt, nodata=NODATA, tags=None, overviews=True):
        self.gdal = require("osgeo.gdal", "writing GeoTIFF rasters tile by tile")
        self.path = Path(path)
        self.names = list(names)
        self.grid = grid
        self.crs_wkt = crs_wkt
        self.nodata = float(nodata)
        self.tags = dict(tags or {})
        self.overviews = overviews
        self._rows = [0] * len(self.names)
        self._tmp = None
        self._ds = None

    def __enter__(self):
        gdal = self.gdal  # its exception mode is process-wide (QGIS relies on the default): codes are checked
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.", suffix=".tif")
        os.close(fd)
        self._tmp = Path(tmp)
        g = self.grid
        options = ["TILED=YES", f"BLOCKXSIZE={BLOCK}", f"BLOCKYSIZE={BLOCK}", "COMPRESS=DEFLATE",
                   "BIGTIFF=IF_SAFER", "INTERLEAVE=BAND"]
        self._ds = gdal.GetDriverByName("GTiff").Create(str(self._tmp), g.ncols, g.nrows, len(self.names),
                                                        gdal.GDT_Float32, options)
        if self._ds is None:
            self._tmp.unlink(missing_ok=True)
            raise JanjaInputError(f"The raster {self.path} could not be created ({gdal.GetLastErrorMsg()}); check "
                                  "that the folder is writable and the disk not full.")
        self._ds.SetGeoTransform((g.xmin, g.cell, 0.0, g.ymax, 0.0, -g.cell))
        if self.crs_wkt:
            self._ds.SetProjection(srs_wkt(self.crs_wkt))  # the same WKT as raster_grid.write_stack
        for i, name in enumerate(self.names, start=1):
            band = self._ds.GetRasterBand(i)
            band.SetNoDataValue(self.nodata)
            band.SetDescription(name)
        if self.tags:
            self._ds.SetMetadata({k: str(v) for k, v in self.tags.items()})
        return self

    def write_rows(self, row0, bands):
        """Write rows [row0, row0 + rows) of every band; `bands` is one (rows, ncols) array per name."""
        if len(bands) != len(self.names):
            raise ValueError(f"{len(bands)} bands given, the stack has {len(self.names)}")
        for i, data in enumerate(bands):
            self.write_band_rows(i, row0, data)

    def write_band_rows(self, index, row0, data):
        """Write rows [row0, row0 + rows) of band `index` (0-based) from a (rows, ncols) array."""
        with np.errstate(over="ignore"):  # beyond float32 becomes inf, then nodata: such maps are refused by
            data = np.asarray(data, dtype=np.float32).reshape(-1, self.grid.ncols)  # the caller (far outside the data)
        nodata = np.float32(self.nodata)
        if self._ds.GetRasterBand(index + 1).WriteArray(np.where(np.isfinite(data), data, nodata), 0, int(row0)):
            raise JanjaInputError(f"Writing band {index + 1} of {self.path} failed ({self.gdal.GetLastErrorMsg()}); "
                                  "check the free disk space.")
        self._rows[index] += data.shape[0]
        end = int(row0) + data.shape[0]
        if end % BLOCK == 0 or end == self.grid.nrows:  # whole block rows: out of GDAL's cache, onto the disk
            self._ds.GetRasterBand(index + 1).FlushCache()  # else the cache (5 % of RAM) grows with the grid

    def set_tags(self, tags):
        """Add metadata tags known only once the rows are written (e.g. a streamed map's measured error)."""
        self.tags.update(tags)
        self._ds.SetMetadata({k: str(v) for k, v in self.tags.items()})

    def read_rows(self, index, row0, row1):
        """Rows [row0, row1) of band `index` as written so far: float32, NaN where nodata (a second pass)."""
        data = self._ds.GetRasterBand(index + 1).ReadAsArray(0, int(row0), self.grid.ncols, int(row1 - row0))
        if data is None:
            raise JanjaInputError(f"Reading back rows {row0}-{row1} of {self.path} failed "
                                  f"({self.gdal.GetLastErrorMsg()}); check the free disk space.")
        data = np.asarray(data, np.float32)
        data[data == np.float32(self.nodata)] = np.nan
        return data

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                if self._rows != [self.grid.nrows] * len(self.names):
                    raise RuntimeError(f"rows written per band {self._rows}, the grid has {self.grid.nrows}")
                levels = []
                size = max(self.grid.ncols, self.grid.nrows)
                while self.overviews and size > BLOCK:
                    levels.append(2 ** (len(levels) + 1))
                    size //= 2
                if levels:
                    before = self.gdal.GetConfigOption("COMPRESS_OVERVIEW")
                    self.gdal.SetConfigOption("COMPRESS_OVERVIEW", "DEFLATE")
                    # reading the full grid back fills GDAL's block cache (5 % of RAM: 1.2 GB here), so it is
                    # held to OVERVIEW_CACHE meanwhile: 10^8 cells peaked at 649 MB without, 172 MB unbuilt
                    cache = self.gdal.GetCacheMax()
                    self.gdal.SetCacheMax(min(cache, OVERVIEW_CACHE))
                    try:
                        if self._ds.BuildOverviews("AVERAGE", levels):
                            raise JanjaInputError(f"Building the overviews of {self.path} failed "
                                                  f"({self.gdal.GetLastErrorMsg()}); check the free disk space.")
                    finally:
                        self.gdal.SetCacheMax(cache)
                        self.gdal.SetConfigOption("COMPRESS_OVERVIEW", before)
                self._ds.FlushCache()
            self._ds = None  # closes the file
            if exc_type is None:
                make_readable(self._tmp)  # mkstemp made it private; write_stack's files are readable too
                os.replace(self._tmp, self.path)
        finally:
            self._ds = None
            if self._tmp is not None:
                self._tmp.unlink(missing_ok=True)  # gone already after a complete write
        return False


class limited_block_cache:  # noqa: N801 - used like a function
    """GDAL's block cache held to `size` bytes meanwhile (it is process-wide; 5 % of RAM by default), so that
    passes reading a streamed file back do not grow memory with the grid; restored on exit."""

    def __init__(self, size=OVERVIEW_CACHE):
        self.size = size

    def __enter__(self):
        self.gdal = require("osgeo.gdal", "reading GeoTIFF rasters tile by tile")
        self.before = self.gdal.GetCacheMax()
        self.gdal.SetCacheMax(min(self.before, self.size))
        return self

    def __exit__(self, *exc):
        self.gdal.SetCacheMax(self.before)
        return False


def stack_bytes(grid, n_bands):
    """The most a stack can take on disk: float32 cells uncompressed, plus a third for the overviews."""
    return int(grid.n_cells * n_bands * 4 * (4 / 3 if max(grid.ncols, grid.nrows) > BLOCK else 1)) + 65_536


def check_free_disk(outputs, grid):
    """Refuse, before any work, stacks that may not fit their folders' free disk. outputs: (path, n_bands)."""
    need = {}
    for path, n_bands in outputs:
        folder = Path(path).parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        need[folder] = need.get(folder, 0) + stack_bytes(grid, n_bands)
    for folder, size in need.items():
        free = shutil.disk_usage(folder).free
        if size > free:
            factor = math.ceil(math.sqrt(size / max(free, 1)))
            raise JanjaInputError(
                f"The output rasters of {grid.ncols} x {grid.nrows} = {grid.n_cells:,} cells may need up to "
                f"{size / 1024**3:.3g} GB, but {folder} has {free / 1024**3:.3g} GB free. Free some disk, write "
                f"to another disk, or use a cell size at least {factor} times larger ({grid.cell * factor:g} m).")
    return need
