"""Reading sample point layers into plain arrays, and choosing the metric CRS kriging needs."""

from dataclasses import dataclass

import numpy as np
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsGeometry,
    QgsProcessingException,
)

from ..core.geostatistics.samples import utm_epsg_for_lonlat


@dataclass
class SamplePoints:
    feature_ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    raw: dict  # field name -> list of raw attribute values, as QGIS gives them
    skipped_geometries: int


def metric_crs_for(source, requested_crs, feedback):
    """The CRS to krige in: the requested one, the layer's if projected, else the UTM zone of its centre."""
    source_crs = source.sourceCrs()
    if requested_crs is not None and requested_crs.isValid():
        if requested_crs.isGeographic():
            raise QgsProcessingException(
                f"The kriging CRS {requested_crs.authid()} is geographic (degrees). Kriging needs distances "
                "in metres: choose a projected CRS such as the UTM zone of your survey."
            )
        return requested_crs
    if not source_crs.isValid():
        raise QgsProcessingException(
            "The sample layer has no coordinate reference system. Set its CRS (Layer Properties > Source) "
            "or give the kriging CRS explicitly."
        )
    if not source_crs.isGeographic():
        return source_crs
    centre = source.sourceExtent().center()
    crs = QgsCoordinateReferenceSystem(f"EPSG:{utm_epsg_for_lonlat(centre.x(), centre.y())}")
    feedback.pushInfo(
        f"The samples are in geographic coordinates ({source_crs.authid()}); kriging needs metres, so they "
        f"are projected to {crs.authid()} ({crs.description()}), the UTM zone of the layer's centre. "
        "Set the kriging CRS parameter to use another one."
    )
    return crs


def read_sample_points(source, field_names, target_crs, context, feedback):
    """Point coordinates in `target_crs` and the raw values of `field_names`; the layer is not modified."""
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
        point = transform.transform(geom.centroid().asPoint() if geom.isMultipart() else geom.asPoint())
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


def mask_cells_from(source, crs, grid, context):
    """Boolean (rows, cols) of the grid cells whose centres fall inside the polygons of `source`."""
    from ..core.raster_grid import rasterize_polygons

    transform = QgsCoordinateTransform(source.sourceCrs(), crs, context.transformContext())
    wkbs = []
    for feature in source.getFeatures():
        geom = QgsGeometry(feature.geometry())
        if geom.isNull():
            continue
        geom.transform(transform)
        wkbs.append(geom.asWkb())
    inside = rasterize_polygons(wkbs, grid)
    if not inside.any():
        raise QgsProcessingException(
            "The mask polygons cover no cell of the output grid: they lie outside the samples' extent. "
            "Check the mask layer and its CRS, or leave the mask empty.")
    return inside
