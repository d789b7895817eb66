"""janja:download_model — fetch a catalogue model into the QGIS profile, sha256-verified.

For the modeler and qgis_process; the Models dialog does the same in a QgsTask. Nothing is kept on a
checksum mismatch, a broken-off transfer or cancel.
"""

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterString,
)

from ..core.errors import JanjaInputError
from ..core.inference import model_store
from . import profile
from .base import JanjaAlgorithm


class DownloadModelAlgorithm(JanjaAlgorithm):
    GROUP_ID = "models"
    GROUP = "Models"
    MODEL, BASE_URL = "MODEL", "BASE_URL"
    MODEL_PATH, MODEL_NAME = "MODEL_PATH", "MODEL_NAME"

    def __init__(self):
        super().__init__()
        try:
            self.catalogue = model_store.load_catalogue()
        except (OSError, ValueError, KeyError):
            self.catalogue = model_store.Catalogue("", [])

    def name(self):
        return "download_model"

    def displayName(self):
        return "Download a model"

    def tags(self):
        return super().tags() + ["model", "download", "onnx", "classifier", "install"]

    def shortHelpString(self):
        lines = "\n".join(f"• {e.label()}, {e.kind.replace('_', ' ')}" for e in self.catalogue.entries)
        return (
            "Downloads a model from the plugin's catalogue into the QGIS profile (janja/models), where it "
            "survives plugin upgrades, and checks every file against the catalogue's sha256 checksum; a "
            "damaged or interrupted download is refused and nothing is kept. janja:prospectivity and "
            "janja:workflow then list the model by name.\n\n"
            f"Models in the catalogue:\n{lines}\n\n"
            "Server address: this parameter, else the JANJA_MODEL_BASE_URL environment variable, else the "
            "address saved in the Models dialog, else the catalogue's own (not hosted yet: give your "
            "organisation's server)."
        )

    def initAlgorithm(self, config=None):
        names = [e.name for e in self.catalogue.entries]
        rec = self.catalogue.recommended()
        self.addParameter(QgsProcessingParameterEnum(
            self.MODEL, "Model", options=[e.label() for e in self.catalogue.entries],
            defaultValue=names.index(rec.name) if rec else 0))
        self.addParameter(QgsProcessingParameterString(
            self.BASE_URL, "Server address (folder URL holding the model files; empty = default)", optional=True))
        self.addOutput(QgsProcessingOutputFile(self.MODEL_PATH, "Installed model"))
        self.addOutput(QgsProcessingOutputString(self.MODEL_NAME, "Model name"))

    def perform(self, parameters, context, feedback):
        if not self.catalogue.entries:
            raise JanjaInputError("The plugin's model catalogue (resources/model_catalogue.json) is missing or "
                                  "unreadable: reinstall the plugin.")
        entry = self.catalogue.entries[self.parameterAsEnum(parameters, self.MODEL, context)]
        url = model_store.resolve_base_url(self.catalogue, self.parameterAsString(parameters, self.BASE_URL, context),
                                           profile.base_url_setting())
        dest = profile.profile_models_dir()
        feedback.pushInfo(f"Downloading {entry.label()} from {url} into {dest}.")

        def progress(fraction):
            feedback.setProgress(100.0 * fraction)
            return feedback.isCanceled()

        try:
            path = model_store.download_model(entry, url, dest, progress=progress)
        except model_store.DownloadCancelled:
            raise JanjaInputError("Download cancelled: nothing was kept.") from None
        feedback.pushInfo(f"Verified (sha256) and installed {path}.")
        return {self.MODEL_PATH: str(path), self.MODEL_NAME: entry.name}
