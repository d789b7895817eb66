"""Small survey files built by the tests themselves (GDAL/OGR only, no QGIS import), for hostile-input tests."""

import numpy as np

MEUSE_LIKE_EPSG = 28992


def survey(n=60, seed=0, x0=180_000.0, y0=331_000.0, span=3000.0):
    """Sample coordinates on a jittered grid and a smooth lognormal field (a fit finds a real range)."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    gx, gy = np.meshgrid(np.linspace(0, span, side), np.linspace(0, span, side))
    x = x0 + gx.ravel()[:n] + rng.normal(0, span / side / 5, n)
    y = y0 + gy.ravel()[:n] + rng.normal(0, span / side / 5, n)
    signal = np.sin((x - x0) / span * 3.0) + np.cos((y - y0) / span * 2.5)
    zn = np.exp(5.0 + 0.6 * signal + rng.normal(0, 0.2, n))
    return x, y, zn


def write_points(path, epsg, x, y, fields, geometry="point", layer="samples"):
    """A GeoPackage layer of points (or small squares around them, geometry="polygon") with numeric fields."""
    from osgeo import ogr, osr

    ogr.UseExceptions()
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(int(epsg))
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    kind = ogr.wkbPoint if geometry == "point" else ogr.wkbPolygon
    lyr = ds.CreateLayer(layer, srs, kind)
    for name in fields:
        lyr.CreateField(ogr.FieldDefn(name, ogr.OFTReal))
    for i in range(len(x)):
        feature = ogr.Feature(lyr.GetLayerDefn())
        if geometry == "point":
            wkt = f"POINT ({float(x[i])!r} {float(y[i])!r})"
        else:
            d = 1.0
            wkt = (f"POLYGON (({x[i] - d} {y[i] - d}, {x[i] + d} {y[i] - d}, {x[i] + d} {y[i] + d}, "
                   f"{x[i] - d} {y[i] + d}, {x[i] - d} {y[i] - d}))")
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        for name, values in fields.items():
            feature.SetField(name, float(values[i]))
        lyr.CreateFeature(feature)
    ds = None
    return f"{path}|layername={layer}"


def meuse_like(tmp_path, name="samples.gpkg", **kwargs):
    x, y, zn = survey(**kwargs)
    noise = np.random.default_rng(1).normal(0, 0.3, (2, len(zn)))
    cu, pb = zn / 10.0 * np.exp(noise[0]), np.sqrt(zn) * np.exp(noise[1])
    return write_points(tmp_path / name, MEUSE_LIKE_EPSG, x, y, {"zn": zn, "cu": cu, "pb": pb})
