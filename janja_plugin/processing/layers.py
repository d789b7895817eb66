"""Reading sample point layers into plain arrays, and choosing the metric CRS kriging needs."""

from dataclasses import dataclass

import numpy as np
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCsException,
    QgsFeatureRequest,
    QgsGeometry,
    QgsProcessingException,
    QgsUnitTypes,
    QgsWkbTypes,
)

from ..core.geostatistics.samples import utm_epsg_for_lonlat
from ..core.geostatistics.survey_checks import central_longitude


@dataclass
class SamplePoints:
    feature_ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    raw: dict  # field name -> list of raw attribute values, as QGIS gives them
    skipped_geometries: int


def is_metric(crs):
    return crs.mapUnits() == QgsUnitTypes.DistanceMeters


def unit_name(crs):
    if "us-ft" in crs.toProj():
        return "US survey feet"
    return QgsUnitTypes.toString(crs.mapUnits())


def survey_centre_lonlat(source, context):
    """Longitude/latitude of the survey's centre; a survey straddling ±180° is centred on the
    antimeridian (the extent's centre would be near 0°, half a world away)."""
    wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
    transform = QgsCoordinateTransform(source.sourceCrs(), wgs84, context.transformContext())
    extent = source.sourceExtent()
    try:
        centre = transform.transform(extent.center())
    except QgsCsException:
        raise QgsProcessingException(
            f"The centre of '{layer_name(source)}' cannot be expressed in longitude/latitude: check the "
            "layer's CRS, or give the kriging CRS explicitly.") from None
    if not source.sourceCrs().isGeographic() or extent.width() <= 180.0:
        return centre.x(), centre.y()
    request = QgsFeatureRequest().setNoAttributes()
    lons = [f.geometry().centroid().asPoint().x() for f in source.getFeatures(request)
            if f.hasGeometry() and not f.geometry().isEmpty()]
    return central_longitude(lons), centre.y()


def metric_crs_for(source, requested_crs, feedback, context=None):
    """The CRS to krige in: the requested one (it must measure metres), the layer's if it measures
    metres, else the UTM zone of the survey's centre (geographic layers, and projected ones in feet)."""
    from qgis.core import QgsProcessingContext

    context = context or QgsProcessingContext()
    source_crs = source.sourceCrs()
    if requested_crs is not None and requested_crs.isValid():
        if requested_crs.isGeographic():
            raise QgsProcessingException(
                f"The kriging CRS {requested_crs.authid()} is geographic (degrees). Kriging needs distances "
                "in metres: choose a projected CRS such as the UTM zone of your survey."
            )
        if not is_metric(requested_crs):
            raise QgsProcessingException(
                f"The kriging CRS {requested_crs.authid()} ({requested_crs.description()}) measures distances in "
                f"{unit_name(requested_crs)}, but janja's ranges, radii and cell sizes are metres: choose a CRS in "
                "metres, such as the UTM zone of your survey, or leave the kriging CRS empty.")
        return requested_crs
    if not source_crs.isValid():
        raise QgsProcessingException(
            "The sample layer has no coordinate reference system. Set its CRS (Layer Properties > Source) "
            "or give the kriging CRS explicitly."
        )
    if not source_crs.isGeographic() and is_metric(source_crs):
        return source_crs
    lon, lat = survey_centre_lonlat(source, context)
    crs = QgsCoordinateReferenceSystem(f"EPSG:{utm_epsg_for_lonlat(lon, lat)}")
    if source_crs.isGeographic():
        why = f"The samples are in geographic coordinates ({source_crs.authid()}); kriging needs metres"
    else:
        why = (f"The samples' CRS {source_crs.authid()} ({source_crs.description()}) measures distances in "
               f"{unit_name(source_crs)}; janja's ranges, radii, cell sizes and reports are in metres")
    feedback.pushInfo(
        f"{why}, so the samples are projected to {crs.authid()} ({crs.description()}), the UTM zone of the "
        "survey's centre. Set the kriging CRS parameter to use another one."
    )
    return crs


def layer_name(source):
    return getattr(source, "sourceName", lambda: "")() or "the layer"


def require_geometry(source, geometry_type, role, what):
    """qgis_process and the modeler do not enforce a parameter's geometry type: refuse a wrong one here."""
    got = QgsWkbTypes.geometryType(source.wkbType())
    if got != geometry_type:
        kinds = {QgsWkbTypes.PointGeometry: "points", QgsWkbTypes.LineGeometry: "lines",
                 QgsWkbTypes.PolygonGeometry: "polygons"}
        raise QgsProcessingException(
            f"The {role} '{layer_name(source)}' holds {kinds.get(got, 'no geometries')}, not "
            f"{kinds[geometry_type]}: give {what}.")


def read_sample_points(source, field_names, target_crs, context, feedback):
    """Point coordinates in `target_crs` and the raw values of `field_names`; the layer is not modified."""
    require_geometry(source, QgsWkbTypes.PointGeometry, "point layer",
                     "a point layer (a polygon's centroid is not a sample location)")
    repeated = sorted({f for f in field_names if list(field_names).count(f) > 1})
    if repeated:
        raise QgsProcessingException(
            f"The field(s) {', '.join(repeated)} are chosen more than once: choose each field once.")
    missing = [f for f in field_names if source.fields().indexOf(f) < 0]
    if missing:
        raise QgsProcessingException(f"The sample layer has no field(s) {', '.join(missing)}.")
    transform = QgsCoordinateTransform(source.sourceCrs(), target_crs, context.transformContext())
    request = QgsFeatureRequest().setSubsetOfAttributes(field_names, source.fields())
    ids, xs, ys = [], [], []
    raw = {f: [] for f in field_names}
    skipped = 0
    total = max(1, source.featureCount())
    for i, feature in enumerate(source.getFeatures(request)):
        if feedback.isCanceled():
            break
        geom = feature.geometry()
        if geom is None or geom.isNull() or geom.isEmpty():
            skipped += 1
            continue
        try:
            point = transform.transform(geom.centroid().asPoint() if geom.isMultipart() else geom.asPoint())
        except QgsCsException:
            raise transform_error(source, target_crs, feature.id()) from None
        ids.append(feature.id())
        xs.append(point.x())
        ys.append(point.y())
        for f in field_names:
            raw[f].append(feature[f])
        if i % 1000 == 0:
            feedback.setProgress(5.0 * i / total)
    if skipped:
        feedback.pushWarning(f"{skipped} sample(s) without a geometry were left out.")
    return SamplePoints(np.asarray(ids), np.asarray(xs, float), np.asarray(ys, float), raw, skipped)


def transform_error(source, target_crs, feature_id):
    return QgsProcessingException(
        f"Feature {feature_id} of '{layer_name(source)}' ({source.sourceCrs().authid()}) cannot be projected to "
        f"{target_crs.authid()} ({target_crs.description()}): it lies outside the area that CRS covers. "
        "Choose a CRS made for the survey's area (the UTM zone of the samples), or check the layer's CRS.")


def mask_cells_from(source, crs, grid, context):
    """Boolean (rows, cols) of the grid cells whose centres fall inside the polygons of `source`."""
    from ..core.raster_grid import rasterize_polygons

    require_geometry(source, QgsWkbTypes.PolygonGeometry, "mask layer",
                     "a polygon layer (e.g. the survey outline), or leave the mask empty")
    transform = QgsCoordinateTransform(source.sourceCrs(), crs, context.transformContext())
    wkbs = []
    for feature in source.getFeatures():
        geom = QgsGeometry(feature.geometry())
        if geom.isNull():
            continue
        try:
            geom.transform(transform)
        except QgsCsException:
            raise transform_error(source, crs, feature.id()) from None
        wkbs.append(geom.asWkb())
    inside = rasterize_polygons(wkbs, grid)
    if not inside.any():
        raise QgsProcessingException(
            "The mask polygons cover no cell of the output grid: they lie outside the samples' extent. "
            "Check the mask layer and its CRS, or leave the mask empty.")
    return inside
