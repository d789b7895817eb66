"""An element stack from several single-band rasters (one element each), as a GDAL VRT.

janja:prospectivity reads one multi-band stack; users often hold one GeoTIFF per element instead. The
VRT stacks them without copying data; each band is named by the raster's band description, or else by
its file name (Au_ppm.tif -> Au_ppm), which is what the model card's element names are matched against.
All rasters must share the grid exactly: resampling changes the values a model sees, so it is the
user's explicit step (Raster > Align Rasters), not a silent one here.
"""

from pathlib import Path

from ..errors import JanjaInputError


def element_name(path, description):
    return description.strip() if description and description.strip() else Path(path).stem


def same_crs_key(wkt):
    """A comparable form of a CRS: two WKT spellings of one CRS compare equal (as rasterio's CRS did)."""
    if not wkt:
        return None
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    srs.AutoIdentifyEPSG()
    code = srs.GetAuthorityCode(None)
    return f"EPSG:{code}" if code else srs.ExportToProj4()


def stack_from_rasters(paths, vrt_path):
    """Write vrt_path stacking `paths` (single-band rasters on one grid); returns the element names."""
    from ..raster_grid import gdal_module, open_raster

    gdal = gdal_module("stacking element rasters")
    if not paths:
        raise JanjaInputError("No element rasters were given.")
    names, ref = [], None
    for p in paths:
        ds = open_raster(p, "element raster")
        if ds.RasterCount != 1:
            raise JanjaInputError(
                f"{Path(p).name} has {ds.RasterCount} bands; give single-band rasters here, or a multi-band stack "
                "as 'Element stack'.")
        grid = (ds.RasterXSize, ds.RasterYSize, tuple(round(v, 6) for v in ds.GetGeoTransform()),
                same_crs_key(ds.GetProjection()))
        if ref is None:
            ref = (p, grid)
        elif grid != ref[1]:
            raise JanjaInputError(
                f"{Path(p).name} is not on the grid of {Path(ref[0]).name} (size, cells, origin or CRS differ). "
                "Align them first (Raster > Align Rasters, or krige every element in one janja:krige run).")
        names.append(element_name(p, ds.GetRasterBand(1).GetDescription()))
        ds = None
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise JanjaInputError(f"Two rasters are both named {dupes}: rename the files or set their band descriptions.")
    vrt = gdal.BuildVRT(str(vrt_path), [str(p) for p in paths], separate=True)
    if vrt is None:
        raise JanjaInputError("GDAL could not stack the element rasters.")
    for i, name in enumerate(names):
        vrt.GetRasterBand(i + 1).SetDescription(name)
    vrt.FlushCache()
    vrt = None
    return names
