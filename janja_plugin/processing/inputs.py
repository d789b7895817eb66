"""Values from either a point layer field or a raster band: what the anomaly algorithms accept."""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from qgis.core import QgsCoordinateReferenceSystem, QgsProcessingException

from ..core.errors import JanjaInputError
from ..core.geostatistics.samples import parse_censored
from ..core.raster_grid import open_raster
from . import qgis_compat as compat
from .layers import read_sample_points


class Affine(NamedTuple):
    """GDAL's geotransform under the affine names (x = c + a*col + b*row, y = f + d*col + e*row)."""

    a: float
    b: float
    c: float
    d: float
    e: float
    f: float

    @classmethod
    def from_gdal(cls, gt):
        return cls(gt[1], gt[2], gt[0], gt[4], gt[5], gt[3])


@dataclass
class RasterBand:
    values: np.ndarray  # (rows, cols) float64, NaN = nodata
    transform: Affine
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
    path = layer.source().split("|")[0]
    try:
        ds = open_raster(path, "raster")
    except JanjaInputError as exc:
        raise QgsProcessingException(str(exc)) from None
    if not 1 <= band <= ds.RasterCount:
        raise QgsProcessingException(f"The raster {layer.name()} has {ds.RasterCount} band(s); band {band} "
                                     "does not exist.")
    src = ds.GetRasterBand(band)
    data = src.ReadAsArray()
    if data is None:
        raise QgsProcessingException(f"Band {band} of the raster {path} cannot be read (a damaged file?).")
    values = data.astype(float)
    values[src.GetMaskBand().ReadAsArray() == 0] = np.nan  # nodata value, or the file's own mask
    name = src.GetDescription() or f"band {band}"
    transform = Affine.from_gdal(ds.GetGeoTransform())
    ds = src = None
    if abs(transform.b) > 0 or abs(transform.d) > 0:
        raise QgsProcessingException(f"The raster {path} is rotated; warp it north-up first (Raster > Warp).")
    values[~np.isfinite(values)] = np.nan
    if not np.isfinite(values).any():
        raise QgsProcessingException(f"Band {band} of {layer.name()} holds only nodata cells: nothing to analyse.")
    return RasterBand(values, transform, layer.crs(), abs(transform.a), abs(transform.e), path, name)


def read_point_values(source, field, crs, context, feedback, concentrations=True, substitution="half_dl"):
    """(points, values) of one field; concentrations go through the censoring parser."""
    if concentrations:
        points, parsed = read_censored_column(source, field, crs, context, feedback, substitution=substitution)
        return points, parsed.values
    points = read_sample_points(source, [field], crs, context, feedback)
    raw = points.raw[field]
    values = np.array([float(v) if isinstance(v, int | float) else np.nan for v in raw], float)
    if not np.isfinite(values).any():
        raise QgsProcessingException(f"Field '{field}' has no numeric values.")
    return points, values


def read_censored_column(source, field, crs, context, feedback, substitution="half_dl", flag_field=None,
                         detection_limit=None, signed=False):
    """(points, ParsedColumn) of one concentration field, with its optional '<'/'>' flag field and
    stated detection limit; the counts of each kind and the censored share go to the log. `signed`:
    negative numbers and zeros are values (clr/ilr/factor scores), not below-detection codes."""
    if flag_field and flag_field == field:
        raise QgsProcessingException(
            f"The flag field and the element field are both '{field}': pick the column that holds the "
            "'<' / '>' flags (e.g. Zr_511P_T beside Zr_ppm_511), or leave the flag field empty.")
    names = [field] + ([flag_field] if flag_field else [])
    points = read_sample_points(source, names, crs, context, feedback)
    parsed = parse_censored(points.raw[field], column=field, substitution=substitution,
                            flags=points.raw[flag_field] if flag_field else None,
                            detection_limit=detection_limit or None, negative_codes=not signed)
    counts = ", ".join(f"{k} {v}" for k, v in parsed.counts.items() if v)
    feedback.pushInfo(f"{field}: {counts}; below-detection values: {substitution.replace('_', ' ')}.")
    feedback.pushInfo(parsed.censoring_sentence(field))
    for warning in parsed.warnings:
        feedback.pushWarning(f"{field}: {warning}")
    if not np.isfinite(parsed.values).any():
        raise QgsProcessingException(f"Field '{field}' has no numeric values.")
    return points, parsed


def add_censoring_parameters(alg, parent, signed=False):
    """Advanced parameters that state a field's censoring convention: its flag column, its limit
    (and, with `signed`, whether negative numbers and zeros are values)."""
    from qgis.core import QgsProcessingParameterBoolean, QgsProcessingParameterField, QgsProcessingParameterNumber

    flag = QgsProcessingParameterField(
        "FLAG_FIELD", "Flag field of the element ('<' = below detection, '>' = above), if the survey has one",
        parentLayerParameterName=parent, optional=True)
    limit = QgsProcessingParameterNumber(
        "DETECTION_LIMIT", "Stated detection limit of the element (for zeros and flag-only '<'; 0 = unknown)",
        compat.NUMBER_DOUBLE, defaultValue=0.0, minValue=0.0)
    extra = [QgsProcessingParameterBoolean(
        "SIGNED", "Signed values (clr, ilr, factor scores): negatives and zeros are values, not detection-limit "
        "codes (percentiles only)", defaultValue=False)] if signed else []
    for p in (flag, limit, *extra):
        p.setFlags(p.flags() | compat.FLAG_ADVANCED)
        alg.addParameter(p)


def choose_input(point_source, raster_layer, what):
    """Exactly one of the two inputs must be given."""
    if (point_source is None) == (raster_layer is None):
        raise QgsProcessingException(
            f"Give either a sample point layer with its field, or a raster with its band, for the {what} "
            "(not both, not neither)."
        )
    return "points" if point_source is not None else "raster"
