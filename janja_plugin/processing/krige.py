"""janja:krige — sample points to an aligned element raster stack by ordinary kriging."""

import math

from qgis.core import (
    QgsFeature,
    QgsFeatureSink,
    QgsFields,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
    QgsUnitTypes,
)

from ..core.geostatistics import krige_pipeline, tiled_kriging
from ..core.raster_grid import grid_for_extent
from ..core.tiled_geotiff import check_free_disk
from . import qgis_compat as compat
from .base import JanjaAlgorithm, progress_callback
from .layers import is_metric, mask_cells_from, metric_crs_for, read_sample_points, unit_name
from .styling import CallbackPostProcessor, add_band_layers, attach_processor, write_class_style

TRANSFORMS = ["log", "none"]
TRANSFORM_LABELS = ["Lognormal (krige log values, unbiased back-transform)", "None (krige raw values)"]
MODELS = ["spherical", "exponential", "gaussian", "linear", "power"]
FITS = ["auto", "manual"]
FIT_LABELS = ["Automatic (weighted least squares, gstat's N/h² weights)", "Given nugget, partial sill, range"]
CENSORING = ["half_dl", "dl_factor", "omit"]
CENSORING_LABELS = ["Half the detection limit", "Detection limit × factor", "Leave out"]


class KrigeAlgorithm(JanjaAlgorithm):
    GROUP_ID = "interpolation"
    GROUP = "Interpolation"

    INPUT = "INPUT"
    FIELDS = "FIELDS"
    CENSORED = "CENSORED"
    DL_FACTOR = "DL_FACTOR"
    FLAG_FIELDS = "FLAG_FIELDS"
    DETECTION_LIMITS = "DETECTION_LIMITS"
    NEGATIVE_CODES = "NEGATIVE_CODES"
    DUPLICATE_TOLERANCE = "DUPLICATE_TOLERANCE"
    CRS = "CRS"
    TRANSFORM = "TRANSFORM"
    MODEL = "MODEL"
    FIT = "FIT"
    NUGGET = "NUGGET"
    PSILL = "PSILL"
    RANGE = "RANGE"
    N_LAGS = "N_LAGS"
    MAX_LAG = "MAX_LAG"
    ANIS_ANGLE = "ANISOTROPY_ANGLE"
    ANIS_RATIO = "ANISOTROPY_RATIO"
    NEIGHBOURS = "NEIGHBOURS"
    SEARCH_RADIUS = "SEARCH_RADIUS"
    EXTENT = "EXTENT"
    MARGIN = "MARGIN"
    CELL_SIZE = "CELL_SIZE"
    MASK = "MASK"
    OUTPUT = "OUTPUT"
    VARIANCE = "VARIANCE"
    LOG_OUTPUT = "LOG_OUTPUT"
    CV_TABLE = "CV_TABLE"
    REPORT = "REPORT"
    SCHEDULER = "SCHEDULER"

    def name(self):
        return "krige"

    def displayName(self):
        return "Krige geochemical samples to an element stack"

    def shortHelpString(self):
        return (
            "Ordinary kriging of each chosen element of a sample point layer into one aligned raster "
            "stack (one float32 band per element, band description = field name), with a second stack of "
            "kriging variances.\n\n"
            "Inputs: a point layer (CSV with X/Y, GeoPackage, shapefile...) and its element fields. Text "
            "values such as '<0.5' and '>1000', negative detection-limit codes (-0.001 = below 0.001), "
            "missing codes (-9999, empty, NULL) and zeros are parsed by one rule; below-detection values "
            "are replaced by half the detection limit unless you choose otherwise. A '<' flag column (advanced: "
            "flag fields) or a stated detection limit per element tells what a zero means. Negative numbers "
            "are detection-limit codes only with the log transform or when you say so; otherwise (clr, ilr, "
            "factor scores) they are values. A field with no measured value is refused; one more than 80 % "
            "censored, or a lognormal map with more than 1 % of cells beyond the sample range, is warned "
            "about in the log and the report. Samples at the same "
            "location (within the tolerance) are averaged. Geographic layers are projected to the UTM "
            "zone of their centre unless you give a CRS.\n\n"
            "Variogram: experimental variogram with gstat's defaults (15 lags up to one third of the "
            "bounding-box diagonal), fitted per element by weighted least squares (N/h² weights) or given "
            "by you; optional geometric anisotropy. Beyond about 4,000 locations the experimental variogram is "
            "estimated from 8 million random pairs and the report gives its standard error; a variogram "
            "given by hand skips it. A Dask scheduler address (advanced) solves the same chunks of cells on "
            "a cluster, with the same results. Neighbourhood: automatic by default (all samples up to "
            f"{krige_pipeline.AUTO_GLOBAL_MAX}, the {krige_pipeline.AUTO_NEIGHBOURS} nearest beyond), "
            "all samples (global) or the n nearest; the report says which was used.\n\n"
            "Outputs: prediction stack (data units), variance stack (for lognormal runs: the kriging "
            "variance of the natural-log values, the one to read as uncertainty), optional log-scale stack, "
            "a leave-one-out "
            "cross-validation point layer (observed, predicted, variance, standardised error) and an HTML "
            "report with censoring counts, statistics, variogram plots, fitted parameters and "
            "cross-validation per element. Rasters are styled with percentile classes (blue = low, "
            "red = high); a sidecar .qml is written next to each raster for qgis_process users.\n\n"
            "Large grids: cells are kriged in chunks and written row tile by row tile (GeoTIFF tiled 256 × 256, "
            "deflate, BigTIFF when needed, overviews), so memory does not grow with the number of cells: about "
            "350 MB (QGIS, and the variogram's pairs), plus 500 bytes per sample and 350 more per further element "
            "field, plus the chunks being solved (32,768 cells × the nearest samples × 16 bytes, 2 per thread + "
            "1), plus two rows of 256 cells per output band, plus 32 MB for the class breaks, plus 2 bytes per "
            "cell with a mask. Class breaks come from every cell up "
"to a million cells per band, beyond that from a repeatable pseudo-random sample of 0.5 to 1 million "
            "cells plus the exact minimum and maximum. Before it starts, a run is refused when the rasters may "
            "not fit the destination's free disk (4 bytes per cell and band, a third more for the overviews), "
            "or when that memory bound exceeds 4 GB.\n\n"
            "References: Journel & Huijbregts (1978) Mining Geostatistics; Pebesma (2004) Multivariable "
            "geostatistics in S: the gstat package, Computers & Geosciences 30:683-691."
        )

    def initAlgorithm(self, config=None):
        adv = compat.FLAG_ADVANCED
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.INPUT, "Sample points", [compat.SOURCE_POINT]))
        self.addParameter(QgsProcessingParameterField(
            self.FIELDS, "Element fields", parentLayerParameterName=self.INPUT,
            type=compat.FIELD_ANY, allowMultiple=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.TRANSFORM, "Transform", options=TRANSFORM_LABELS, defaultValue=0))
        # A plain number: a distance parameter bound to a geographic layer shows "250 degrees" (issue 14)
        self.addParameter(QgsProcessingParameterNumber(
            self.CELL_SIZE, "Cell size in metres; in feet for a layer in feet (0 = about 200 cells across)",
            compat.NUMBER_DOUBLE, defaultValue=0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterNumber(
            self.NEIGHBOURS, f"Nearest samples per cell (-1 = automatic: all samples up to "
            f"{krige_pipeline.AUTO_GLOBAL_MAX}, else {krige_pipeline.AUTO_NEIGHBOURS}; 0 = all samples, global)",
            compat.NUMBER_INTEGER, defaultValue=krige_pipeline.AUTO, minValue=krige_pipeline.AUTO))
        params = [
            QgsProcessingParameterEnum(self.MODEL, "Variogram model", options=MODELS, defaultValue=0),
            QgsProcessingParameterEnum(self.FIT, "Variogram fit", options=FIT_LABELS, defaultValue=0),
            QgsProcessingParameterNumber(self.NUGGET, "Nugget (manual fit, transformed units)",
                                         compat.NUMBER_DOUBLE, optional=True, minValue=0.0),
            QgsProcessingParameterNumber(self.PSILL, "Partial sill (manual fit, transformed units)",
                                         compat.NUMBER_DOUBLE, optional=True, minValue=0.0),
            QgsProcessingParameterNumber(self.RANGE, "Range in metres (manual fit)",
                                         compat.NUMBER_DOUBLE, optional=True, minValue=0.0),
            QgsProcessingParameterNumber(self.N_LAGS, "Number of lags of the experimental variogram",
                                         compat.NUMBER_INTEGER, defaultValue=15, minValue=3),
            QgsProcessingParameterNumber(self.MAX_LAG, "Maximum lag in metres (0 = one third of the diagonal)",
                                         compat.NUMBER_DOUBLE, defaultValue=0.0, minValue=0.0),
            QgsProcessingParameterNumber(self.ANIS_ANGLE, "Anisotropy: major axis, degrees clockwise from north",
                                         compat.NUMBER_DOUBLE, defaultValue=0.0,
                                         minValue=0.0, maxValue=180.0),
            QgsProcessingParameterNumber(self.ANIS_RATIO, "Anisotropy: minor/major range ratio (1 = isotropic)",
                                         compat.NUMBER_DOUBLE, defaultValue=1.0,
                                         minValue=0.01, maxValue=1.0),
            QgsProcessingParameterNumber(self.SEARCH_RADIUS, "Search radius in metres (0 = unlimited)",
                                         compat.NUMBER_DOUBLE, defaultValue=0.0, minValue=0.0),
            QgsProcessingParameterEnum(self.CENSORED, "Below-detection values", options=CENSORING_LABELS,
                                       defaultValue=0),
            QgsProcessingParameterNumber(self.DL_FACTOR, "Detection-limit factor (for 'Detection limit × factor')",
                                         compat.NUMBER_DOUBLE, defaultValue=0.5, minValue=0.0),
            QgsProcessingParameterString(
                self.FLAG_FIELDS, "Flag fields ('<' = below detection): a pattern such as {element}_511P_T or "
                "{field}_flag, or pairs Zr_ppm=Zr_flag", optional=True),
            QgsProcessingParameterString(
                self.DETECTION_LIMITS, "Stated detection limits for zeros and flag-only '<' values, e.g. "
                "Zr_ppm=1, Th_ppm=0.5", optional=True),
            QgsProcessingParameterBoolean(
                self.NEGATIVE_CODES, "Negative values and zeros are below-detection codes (-0.5 = <0.5) even "
                "without the log transform", defaultValue=False),
            QgsProcessingParameterNumber(self.DUPLICATE_TOLERANCE,
                                         "Merge samples closer than (metres)",
                                         compat.NUMBER_DOUBLE, defaultValue=0.0, minValue=0.0),
            QgsProcessingParameterCrs(self.CRS, "Kriging CRS (default: the layer's, or its UTM zone if "
                                      "geographic)", optional=True),
            QgsProcessingParameterExtent(self.EXTENT, "Output extent (default: samples plus margin)",
                                         optional=True),
            QgsProcessingParameterNumber(self.MARGIN, "Margin around the samples, in cells",
                                         compat.NUMBER_INTEGER, defaultValue=2, minValue=0),
            QgsProcessingParameterFeatureSource(self.MASK, "Mask polygons (cells outside are nodata)",
                                                [compat.SOURCE_POLYGON], optional=True),
            QgsProcessingParameterString(
                self.SCHEDULER, "Dask scheduler address (optional; empty = this computer's threads), e.g. "
                "tcp://10.0.0.5:8786", optional=True),
        ]
        for p in params:
            p.setFlags(p.flags() | adv)
            self.addParameter(p)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Element stack"))
        self.addParameter(QgsProcessingParameterRasterDestination(self.VARIANCE, "Kriging variance stack"))
        log_out = QgsProcessingParameterRasterDestination(
            self.LOG_OUTPUT, "Log-scale prediction and variance stack", optional=True, createByDefault=False)
        log_out.setFlags(log_out.flags() | adv)
        self.addParameter(log_out)
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.CV_TABLE, "Leave-one-out cross-validation", compat.SOURCE_POINT,
            optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.REPORT, "Kriging report", "HTML files (*.html)", optional=True, createByDefault=True))

    def settings_from(self, parameters, context):
        nugget = self.parameterAsDouble(parameters, self.NUGGET, context) \
            if parameters.get(self.NUGGET) not in (None, "") else None
        psill = self.parameterAsDouble(parameters, self.PSILL, context) \
            if parameters.get(self.PSILL) not in (None, "") else None
        vrange = self.parameterAsDouble(parameters, self.RANGE, context) \
            if parameters.get(self.RANGE) not in (None, "") else None
        max_lag = self.parameterAsDouble(parameters, self.MAX_LAG, context)
        radius = self.parameterAsDouble(parameters, self.SEARCH_RADIUS, context)
        return krige_pipeline.KrigeSettings(
            transform=TRANSFORMS[self.parameterAsEnum(parameters, self.TRANSFORM, context)],
            model=MODELS[self.parameterAsEnum(parameters, self.MODEL, context)],
            fit=FITS[self.parameterAsEnum(parameters, self.FIT, context)],
            nugget=nugget, psill=psill, range=vrange,
            n_lags=self.parameterAsInt(parameters, self.N_LAGS, context),
            max_lag=max_lag if max_lag > 0 else None,
            anisotropy_angle=self.parameterAsDouble(parameters, self.ANIS_ANGLE, context),
            anisotropy_ratio=self.parameterAsDouble(parameters, self.ANIS_RATIO, context),
            neighbours=self.parameterAsInt(parameters, self.NEIGHBOURS, context),
            search_radius=radius if radius > 0 else None,
            substitution=CENSORING[self.parameterAsEnum(parameters, self.CENSORED, context)],
            dl_factor=self.parameterAsDouble(parameters, self.DL_FACTOR, context),
            duplicate_tolerance=self.parameterAsDouble(parameters, self.DUPLICATE_TOLERANCE, context),
            detection_limits=krige_pipeline.detection_limits_from(
                self.parameterAsString(parameters, self.DETECTION_LIMITS, context),
                compat.parameter_as_strings(self, parameters, self.FIELDS, context)),
            negative_codes=True if self.parameterAsBoolean(parameters, self.NEGATIVE_CODES, context) else None,
        )

    def perform(self, parameters, context, feedback):
        source = self.parameterAsSource(parameters, self.INPUT, context)
        if source is None:
            raise QgsProcessingException("The sample layer could not be opened.")
        fields = compat.parameter_as_strings(self, parameters, self.FIELDS, context)
        if not fields:
            raise QgsProcessingException("Choose at least one element field to krige.")
        settings = self.settings_from(parameters, context)
        requested = self.parameterAsCrs(parameters, self.CRS, context)
        crs = metric_crs_for(source, requested, feedback, context)
        flag_fields = krige_pipeline.flag_fields_for(
            self.parameterAsString(parameters, self.FLAG_FIELDS, context), fields, source.fields().names())
        points = read_sample_points(source, fields + sorted(set(flag_fields.values())), crs, context, feedback)
        flags = {f: points.raw[flag] for f, flag in flag_fields.items()}
        raw = {f: points.raw[f] for f in fields}

        grid = self.output_grid(parameters, context, points, crs, cell_factor=self.cell_size_factor(source, feedback))
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        var_out = self.parameterAsOutputLayer(parameters, self.VARIANCE, context)
        log_out = self.parameterAsOutputLayer(parameters, self.LOG_OUTPUT, context)
        log_out = log_out if log_out and settings.transform == "log" else None
        n = len(fields)
        check_free_disk([(out, n), (var_out, n)] + ([(log_out, 2 * n)] if log_out else []), grid)
        k = krige_pipeline.neighbourhood(settings, points.x.size)[0]
        bands = 3 if settings.transform == "log" else 2
        tiled_kriging.check_memory(grid, points.x.size, n, k, n_bands=bands,
                                   masked=parameters.get(self.MASK) not in (None, ""))
        inside = self.mask_cells(parameters, context, crs, grid, points)
        feedback.pushInfo(f"Output grid: {grid.ncols} × {grid.nrows} cells of {grid.cell:g} m in {crs.authid()}, "
                          "kriged and written in row tiles.")

        # streamed tile by tile: memory does not grow with the cells (tiled_kriging.memory_bound)
        results = tiled_kriging.krige_elements_to_files(
            points.x, points.y, raw, settings, grid, out, var_out, crs.toWkt(), inside=inside,
            progress=progress_callback(feedback, 5, 90), log=feedback.pushInfo, flags=flags,
            warn=feedback.pushWarning, log_path=log_out,
            scheduler=self.parameterAsString(parameters, self.SCHEDULER, context))
        if feedback.isCanceled():
            return {}
        outputs = {self.OUTPUT: out, self.VARIANCE: var_out}
        if log_out:
            outputs[self.LOG_OUTPUT] = log_out
        feedback.setProgress(92)
        self.style_outputs(context, results, out, var_out, settings.transform)

        if parameters.get(self.CV_TABLE) is not None:
            outputs[self.CV_TABLE] = self.write_cv_table(parameters, context, results, points, crs, source)
        report = self.parameterAsFileOutput(parameters, self.REPORT, context)
        if report:
            krige_pipeline.write_report(results, settings, report, crs_name=f"{crs.authid()} {crs.description()}",
                                        grid=grid)
            outputs[self.REPORT] = report
        feedback.setProgress(100)  # each element's summary line was logged by the core as it finished
        return outputs

    def cell_size_factor(self, source, feedback):
        """The cell size is in metres, or in the layer's feet for a layer in feet (its label says so): feet
        become metres here. A geographic layer's cell size is metres (never degrees)."""
        source_crs = source.sourceCrs()
        if not source_crs.isValid() or source_crs.isGeographic() or is_metric(source_crs):
            return 1.0
        factor = QgsUnitTypes.fromUnitToUnitFactor(source_crs.mapUnits(), QgsUnitTypes.DistanceMeters)
        units = unit_name(source_crs)
        if "us-ft" in source_crs.toProj():  # QGIS 3.22 reports US survey feet as international feet
            factor, units = 1200.0 / 3937.0, "US survey feet"
        feedback.pushInfo(f"The cell size is read in the layer's units ({units}) and converted to metres "
                          f"(× {factor:.9g}).")
        return factor

    def output_grid(self, parameters, context, points, crs, cell_factor=1.0):
        if points.x.size == 0:
            raise QgsProcessingException("The sample layer has no points.")
        extent = self.parameterAsExtent(parameters, self.EXTENT, context, crs)
        if parameters.get(self.EXTENT) and not extent.isNull():
            xmin, ymin, xmax, ymax = extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()
        else:
            xmin, ymin = float(points.x.min()), float(points.y.min())
            xmax, ymax = float(points.x.max()), float(points.y.max())
        cell = self.parameterAsDouble(parameters, self.CELL_SIZE, context) * cell_factor
        if cell_factor != 1.0:
            cell = float(f"{cell:.9g}")  # 328.0833333 US ft is 100 m, not 99.99999999999999 m
        if cell <= 0:
            cell = krige_pipeline.default_cell_size(xmax - xmin, ymax - ymin)
        margin = self.parameterAsInt(parameters, self.MARGIN, context) * cell
        return grid_for_extent(xmin, ymin, xmax, ymax, cell, margin=0 if parameters.get(self.EXTENT) else margin)

    def mask_cells(self, parameters, context, crs, grid, points):
        mask = self.parameterAsSource(parameters, self.MASK, context)
        return None if mask is None else mask_cells_from(mask, crs, grid, context)

    def style_outputs(self, context, results, out, var_out, transform="log"):
        """Sidecar .qml (band 1) for qgis_process; in QGIS, one styled layer per element in a group."""
        for path, key, group in ((out, "prediction", "Kriged elements"), (var_out, "variance", "Kriging variance")):
            bands = []
            for i, r in enumerate(results, start=1):
                label, _, var_label, _ = krige_pipeline.layer_names(r.name, transform)
                name = label if key == "prediction" else var_label
                breaks, labels = r.classes[key]  # from the streamed cells (MapStats)
                bands.append((i, name, breaks, labels))
            if len(bands[0][2]) >= 2:
                write_class_style(path, 1, bands[0][2], bands[0][3])
            shown = key == "prediction"  # the variance group starts unticked, under the elements in use
            attach_processor(context, path, CallbackPostProcessor(
                lambda layer, project, g=group, b=bands, v=shown: add_band_layers(layer, project, g, b, v)),
                self.post_processors)

    def write_cv_table(self, parameters, context, results, points, crs, source):
        fields = QgsFields()
        fields.append(compat.field("element", "string"))
        for name in ("observed", "predicted", "variance", "residual", "zscore", "n_merged"):
            fields.append(compat.field(name, "double"))
        sink, dest = self.parameterAsSink(parameters, self.CV_TABLE, context, fields, compat.WKB_POINT, crs)
        if sink is None:
            raise QgsProcessingException("The cross-validation output could not be created.")
        for r in results:
            cv = r.cv
            for i in range(len(cv["x"])):
                feature = QgsFeature(fields)
                feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(cv["x"][i], cv["y"][i])))
                values = [cv[k][i] for k in ("observed", "predicted", "variance", "residual", "zscore", "n_merged")]
                feature.setAttributes([r.name] + [float(v) if math.isfinite(v) else None for v in values])
                sink.addFeature(feature, QgsFeatureSink.Flag.FastInsert)
        return dest
