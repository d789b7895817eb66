"""The `janja` Processing provider: lists the algorithms; algorithm modules import nothing heavy."""

from pathlib import Path

from qgis.core import QgsApplication, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

ICON_PATH = Path(__file__).resolve().parents[2] / "resources" / "icons" / "janja.svg"


def algorithm_classes():
    """Every algorithm class the provider offers, in toolbox order."""
    from .anomaly_score import AnomalyScoreAlgorithm
    from .download_model import DownloadModelAlgorithm
    from .evaluate import EvaluateAlgorithm
    from .fractal import FractalAlgorithm
    from .krige import KrigeAlgorithm
    from .multivariate import RobustMahalanobisAlgorithm
    from .prospectivity import ProspectivityAlgorithm
    from .spatial_anomaly import SpatialAnomalyAlgorithm
    from .thresholds import ThresholdsAlgorithm

    return [KrigeAlgorithm, ThresholdsAlgorithm, FractalAlgorithm, RobustMahalanobisAlgorithm, EvaluateAlgorithm,
            ProspectivityAlgorithm, SpatialAnomalyAlgorithm, AnomalyScoreAlgorithm, DownloadModelAlgorithm]


class JanjaProvider(QgsProcessingProvider):
    def __init__(self):
        super().__init__()
        self.reload_pending = False

    def id(self):
        return "janja"

    def name(self):
        return "Geochemical prospectivity"

    def longName(self):
        return "Janja geochemical prospectivity (kriging, anomalies, ONNX classifier)"

    def icon(self):
        return QIcon(str(ICON_PATH))

    def svgIconPath(self):
        return str(ICON_PATH)

    def loadAlgorithms(self):
        for cls in algorithm_classes():
            self.addAlgorithm(cls())
        self.add_workflow()

    def add_workflow(self):
        """janja:workflow, the shipped .model3 (resources/models/janja_workflow.model3).

        A model finds its steps (janja:krige, ...) in the Processing registry, which holds this provider
        only once it has loaded: the first load leaves the model out and reloads when the provider is in.
        """
        from .workflow import WORKFLOW_PATH, WorkflowAlgorithm

        if not WORKFLOW_PATH.is_file():
            return
        registry = QgsApplication.processingRegistry()
        if registry.providerById(self.id()) is self:
            self.addAlgorithm(WorkflowAlgorithm())
        elif not self.reload_pending:
            self.reload_pending = True
            registry.providerAdded.connect(self.reload_when_registered)

    def reload_when_registered(self, provider_id):
        if provider_id != self.id():
            return
        QgsApplication.processingRegistry().providerAdded.disconnect(self.reload_when_registered)
        self.refreshAlgorithms()
        self.reload_pending = False
