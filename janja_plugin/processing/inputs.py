"""Values from either a point layer field or a raster band: what the anomaly algorithms accept."""

from dataclasses import dataclass

import numpy as np
from qgis.core import QgsCoordinateReferenceSystem, QgsProcessingException

from ..core.errors import require
from ..core.geostatistics.samples import parse_censored
from .layers import read_sample_points


@dataclass
class RasterBand:
    values: np.ndarray  # (rows, cols) float64, NaN = nodata
    transform: object  # rasterio Affine
    crs: QgsCoordinateReferenceSystem
    cell_width: float
    cell_height: float
    path: str
    name: str

    def cell_centres(self):
        rows, cols = self.values.shape
        t = self.transform
        xs = t.c + (np.arange(cols) + 0.5) * t.a
        ys = t.f + (np.arange(rows) + 0.5) * t.e
        gx, gy = np.meshgrid(xs, ys)
        return gx.ravel(), gy.ravel()


def read_raster_band(layer, band):
    """A band of a GDAL raster layer as floats with NaN for nodata."""
    if layer is None:
        raise QgsProcessingException("The raster layer could not be opened.")
    rasterio = require("rasterio", "reading rasters")
    path = layer.source().split("|")[0]
    try:
        with rasterio.open(path) as src:
            if not 1 <= band <= src.count:
                raise QgsProcessingException(f"The raster {layer.name()} has {src.count} band(s); band {band} "
                                             "does not exist.")
            data = src.read(band, masked=True).astype(float)
            name = src.descriptions[band - 1] or f"band {band}"
            transform = src.transform
    except rasterio.errors.RasterioIOError as exc:
        raise QgsProcessingException(f"The raster {path} cannot be read: {exc}") from exc
    if abs(transform.b) > 0 or abs(transform.d) > 0:
        raise QgsProcessingException(f"The raster {path} is rotated; warp it north-up first (Raster > Warp).")
    values = data.filled(np.nan)
    values[~np.isfinite(values)] = np.nan
    if not np.isfinite(values).any():
        raise QgsProcessingException(f"Band {band} of {layer.name()} holds only nodata cells: nothing to analyse.")
    return RasterBand(values, transform, layer.crs(), abs(transform.a), abs(transform.e), path, name)


def read_point_values(source, field, crs, context, feedback, concentrations=True, substitution="half_dl"):
    """(points, values) of one field; concentrations go through the censoring parser."""
    points = read_sample_points(source, [field], crs, context, feedback)
    raw = points.raw[field]
    if concentrations:
        parsed = parse_censored(raw, column=field, substitution=substitution)
        counts = ", ".join(f"{k} {v}" for k, v in parsed.counts.items() if v)
        feedback.pushInfo(f"{field}: {counts}; below-detection values: {substitution.replace('_', ' ')}.")
        for warning in parsed.warnings:
            feedback.pushWarning(f"{field}: {warning}")
        values = parsed.values
    else:
        values = np.array([float(v) if isinstance(v, int | float) else np.nan for v in raw], float)
    if not np.isfinite(values).any():
        raise QgsProcessingException(f"Field '{field}' has no numeric values.")
    return points, values


def choose_input(point_source, raster_layer, what):
    """Exactly one of the two inputs must be given."""
    if (point_source is None) == (raster_layer is None):
        raise QgsProcessingException(
            f"Give either a sample point layer with its field, or a raster with its band, for the {what} "
            "(not both, not neither)."
        )
    return "points" if point_source is not None else "raster"
