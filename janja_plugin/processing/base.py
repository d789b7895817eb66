"""What every janja algorithm shares: error translation, progress/cancel bridging, groups, and
outputs that appear together or not at all (core/staging.py)."""

import functools
import html
import re

from qgis.core import (
    QgsCsException,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputLayerDefinition,
    QgsProperty,
)

from ..core import dependencies
from ..core.errors import JanjaInputError, MissingDependencyError
from ..core.geostatistics.kriging import KrigingCancelled
from ..core.inference.windows import Cancelled as WindowsCancelled
from ..core.staging import StagedOutputs, check_writable

# What a geologist types into the toolbox search box, per group (QGIS matches words against tags too).
SEARCH_TAGS = {
    "interpolation": ["kriging", "krige", "interpolation", "geostatistics", "variogram", "ordinary kriging",
                      "lognormal", "raster stack", "cross-validation", "geochemistry"],
    "anomalies": ["anomaly", "anomalies", "threshold", "background", "fractal", "concentration-area", "C-A",
                  "outlier", "Mahalanobis", "geochemistry"],
    "prospectivity": ["prospectivity", "mineral prospectivity", "targeting", "targets", "classifier", "ONNX",
                      "deep learning", "anomaly", "anomaly score"],
    "evaluation": ["ROC", "AUC", "success rate", "prediction-area", "P-A plot", "evaluation", "validation",
                   "deposits"],
}


def help_text(text):
    """The dialogs' help panel reads shortHelpString as HTML, where '<0.5' starts a tag and hides the
    paragraph: escape it there. `qgis_process help` prints it as it is, so it stays plain there."""
    from qgis.core import QgsApplication

    if QgsApplication.platform() == "qgis_process":
        return text
    return html.escape(text, quote=False)


def _escaped_help(method):
    @functools.wraps(method)
    def wrapper(self):
        return help_text(method(self))

    wrapper.escaped = True
    return wrapper


class JanjaAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses define name/displayName/group/shortHelpString and the two hooks."""

    GROUP_ID = "samples"
    GROUP = "Samples"
    # Python modules QGIS may lack that this algorithm imports, and what for (checked before any work).
    REQUIRES = ()
    PURPOSE = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("shortHelpString")
        if own is not None and not getattr(own, "escaped", False):
            cls.shortHelpString = _escaped_help(own)

    def __init__(self):
        super().__init__()
        self.post_processors = []  # style post-processors must outlive the run, or sip deletes them

    def group(self):
        return self.GROUP

    def groupId(self):
        return self.GROUP_ID

    def tags(self):
        return ["janja", "geochemistry", "exploration", self.name(), *SEARCH_TAGS.get(self.GROUP_ID, [])]

    def helpUrl(self):
        return plugin_homepage() + "#algorithms"

    def createInstance(self):
        return type(self)()

    def readiness_problem(self, parameters, context):
        """A sentence saying what is missing (package, model) and which button fixes it, or None."""
        return dependencies.missing_sentence(self.REQUIRES, self.PURPOSE or self.displayName())

    def checkParameterValues(self, parameters, context):  # noqa: N802 - name fixed by QGIS
        problem = self.readiness_problem(parameters, context)  # first: no use filling in a form that cannot run
        if problem:
            return False, problem
        return super().checkParameterValues(parameters, context)

    def processAlgorithm(self, parameters, context, feedback):
        problem = self.readiness_problem(parameters, context)
        if problem:
            raise QgsProcessingException(problem)
        # The user sees the message only; the original traceback is dropped (`from None`) because its
        # frames hold feature sources whose layers would outlive QGIS at exit.
        # Every file output is written under a temporary name (the parameterAs* overrides below) and
        # moved into place only when perform() has written all of them.
        message = None
        self.staging = StagedOutputs()
        try:
            self.check_destinations(parameters, context)
            outputs = self.perform(parameters, context, feedback)
            if feedback is not None and feedback.isCanceled():
                return {}
            self.staging.commit()
            return self.final_outputs(outputs, context)
        except (JanjaInputError, MissingDependencyError) as exc:
            message = str(exc)
        except (KrigingCancelled, WindowsCancelled):
            message = "Cancelled: nothing was written."
        except QgsCsException as exc:
            message = (f"A coordinate transformation failed ({str(exc).strip() or 'no detail'}): some "
                       "points or the extent cannot be expressed in the chosen CRS. Choose a CRS that covers "
                       "the whole survey (its UTM zone), or check the layers' CRS.")
        except OSError as exc:
            where = f" '{exc.filename}'" if exc.filename else ""
            message = (f"An output could not be written{where}: {exc.strerror or exc}. Nothing was written; "
                       "choose a folder you can write to, with free space.")
        finally:
            self.staging.discard()  # after commit() there is nothing left to discard
        raise QgsProcessingException(message) from None

    # ---- outputs: checked before the work, staged during it, moved into place after it ----------

    def destination_path(self, parameters, name, context):
        """The file path a destination parameter names, or None (not set, temporary, or not a file)."""
        value = parameters.get(name)
        if isinstance(value, QgsProcessingOutputLayerDefinition):
            value = value.sink.valueAsString(context.expressionContext())[0]
        if isinstance(value, QgsProperty):
            value = value.valueAsString(context.expressionContext())[0]
        if not isinstance(value, str) or not value.strip() or value == "TEMPORARY_OUTPUT":
            return None
        if re.match(r"^[A-Za-z][A-Za-z0-9_]+:", value):  # memory:, ogr:, postgres: ... (not C:\)
            return None
        return value

    def check_destinations(self, parameters, context):
        """Refuse, before any work, a destination that cannot be written."""
        for definition in self.destinationParameterDefinitions():
            path = self.destination_path(parameters, definition.name(), context)
            if path:
                check_writable(path, f"'{definition.description()}' ({definition.name()})")

    def _staged(self, path):
        staging = getattr(self, "staging", None)
        if staging is None or not isinstance(path, str) or not path or re.match(r"^[A-Za-z][A-Za-z0-9_]+:", path):
            return path
        return staging.stage(path)

    def parameterAsOutputLayer(self, parameters, name, context):
        return self._staged(super().parameterAsOutputLayer(parameters, name, context))

    def parameterAsFileOutput(self, parameters, name, context):
        return self._staged(super().parameterAsFileOutput(parameters, name, context))

    def parameterAsSink(self, parameters, name, context, *args, **kwargs):
        path = self.destination_path(parameters, name, context)
        if path and getattr(self, "staging", None) is not None:
            value = parameters[name]
            tmp = self.staging.stage(path)
            if isinstance(value, QgsProcessingOutputLayerDefinition):
                value = QgsProcessingOutputLayerDefinition(value)
                value.sink = QgsProperty.fromValue(tmp)
            else:
                value = tmp
            parameters = dict(parameters)
            parameters[name] = value
        return super().parameterAsSink(parameters, name, context, *args, **kwargs)

    def final_outputs(self, outputs, context):
        """After commit(): results, styles and layers to load name the final paths, not the staged ones."""
        final = self.staging.final_path
        for processor in self.post_processors:
            if hasattr(processor, "qml_path"):
                processor.qml_path = final(processor.qml_path)
        layers = context.layersToLoadOnCompletion()
        if any(final(k) != k for k in layers):
            # setLayersToLoadOnCompletion() (and setPostProcessor()) delete the post-processors they replace,
            # so the renamed entries are new details with copies of ours (a kept pointer would crash QGIS
            # when it loads the layer).
            from qgis.core import QgsProcessingContext

            from .styling import attach_processor

            renamed, copies = {}, {}
            for key, old in layers.items():
                details = QgsProcessingContext.LayerDetails(old.name, old.project, old.outputName,
                                                            old.layerTypeHint)
                details.forceName = old.forceName
                renamed[final(key)] = details
                processor = context.layerToLoadOnCompletionDetails(key).postProcessor()
                if processor is not None and hasattr(processor, "copy"):
                    copies[final(key)] = processor.copy()
            context.setLayersToLoadOnCompletion(renamed)
            for key, processor in copies.items():
                attach_processor(context, key, processor, self.post_processors)
        return {k: final(v) for k, v in (outputs or {}).items()}

    def perform(self, parameters, context, feedback):  # pragma: no cover - abstract
        raise NotImplementedError


def plugin_homepage():
    """metadata.txt's homepage: one address to replace for a release (make package checks it)."""
    import configparser
    from pathlib import Path

    meta = configparser.RawConfigParser()
    meta.read(Path(__file__).resolve().parents[2] / "metadata.txt", encoding="utf-8")
    return meta.get("general", "homepage", fallback="")


def progress_callback(feedback, start=0.0, end=100.0):
    """A core-style callback `fraction -> cancelled?` that drives a Processing feedback range."""

    def report(fraction):
        if feedback is not None:
            feedback.setProgress(start + (end - start) * max(0.0, min(1.0, fraction)))
            return feedback.isCanceled()
        return False

    return report


def report_stride_error(feedback, stride_error):
    """The stride's measured interpolation error in the log; a warning when it is too large to ignore."""
    if stride_error is None:
        return
    feedback.pushInfo(stride_error.sentence())
    warning = stride_error.warning()
    if warning:
        feedback.pushWarning(warning)


def parse_number_list(text, what):
    """'1, 2,3' -> [1.0, 2.0, 3.0], or a clear error naming the parameter."""
    try:
        values = [float(v) for v in str(text).replace(";", ",").split(",") if v.strip()]
    except ValueError as exc:
        raise QgsProcessingException(f"The {what} must be numbers separated by commas, e.g. 1,2,3 (got '{text}').") \
            from exc
    if not values:
        raise QgsProcessingException(f"Give at least one value for the {what}.")
    return values
