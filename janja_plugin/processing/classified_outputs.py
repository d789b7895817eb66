"""Writing class results: a point layer with class fields, or a styled class raster."""

import numpy as np
from qgis.core import QgsFeature, QgsFeatureSink, QgsFields, QgsProcessingException

from ..core.raster_grid import Grid, write_stack
from . import qgis_compat as compat
from .styling import attach_style, write_class_style


def write_class_points(alg, parameters, output_name, context, source, points, values, classes, labels,
                       value_field="value"):
    """Copy the sample points with their attributes plus value, class and class name."""
    fields = QgsFields(source.fields())
    for name, kind in ((value_field, "double"), ("class", "int"), ("class_name", "string")):
        fields.append(compat.field(name, kind))
    sink, dest = alg.parameterAsSink(parameters, output_name, context, fields, compat.WKB_POINT, source.sourceCrs())
    if sink is None:
        raise QgsProcessingException(f"The output {output_name} could not be created.")
    row = {fid: i for i, fid in enumerate(points.feature_ids)}
    for feature in source.getFeatures():
        i = row.get(feature.id())
        if i is None:
            continue
        out = QgsFeature(fields)
        out.setGeometry(feature.geometry())
        c = int(classes[i])
        v = float(values[i])
        out.setAttributes(list(feature.attributes()) + [v if np.isfinite(v) else None,
                                                        c if c >= 0 else None, labels[c] if c >= 0 else None])
        sink.addFeature(out, QgsFeatureSink.Flag.FastInsert)
    return dest


def write_class_raster(path, band, classes, labels, name, keep_alive, context, output_name):
    """Classes as a float32 band (nodata where the input was), styled with one colour per class."""
    t = band.transform
    grid = Grid(t.c, t.f, band.cell_width, band.values.shape[1], band.values.shape[0])
    data = np.where(classes >= 0, classes, np.nan).astype(float)
    write_stack(path, [data], [name], grid, band.crs.toWkt())
    breaks = [i - 0.5 for i in range(len(labels) + 1)]
    qml = write_class_style(path, 1, breaks, list(labels))
    attach_style(context, path, qml, keep_alive)
    return path
