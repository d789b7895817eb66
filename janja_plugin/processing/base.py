"""What every janja algorithm shares: error translation, progress/cancel bridging, groups."""

import functools
import html

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException

from ..core import dependencies
from ..core.errors import JanjaInputError, MissingDependencyError
from ..core.geostatistics.kriging import KrigingCancelled
from ..core.inference.windows import Cancelled as WindowsCancelled

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
        message = None
        try:
            return self.perform(parameters, context, feedback)
        except (JanjaInputError, MissingDependencyError) as exc:
            message = str(exc)
        except (KrigingCancelled, WindowsCancelled):
            message = "Cancelled: nothing was written."
        raise QgsProcessingException(message) from None

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
