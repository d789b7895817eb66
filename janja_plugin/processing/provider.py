"""The `janja` Processing provider: lists the algorithms; algorithm modules import nothing heavy."""

from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

ICON_PATH = Path(__file__).resolve().parents[2] / "resources" / "icons" / "janja.svg"


def algorithm_classes():
    """Every algorithm class the provider offers, in toolbox order."""
    from .evaluate import EvaluateAlgorithm
    from .fractal import FractalAlgorithm
    from .krige import KrigeAlgorithm
    from .multivariate import RobustMahalanobisAlgorithm
    from .prospectivity import ProspectivityAlgorithm
    from .thresholds import ThresholdsAlgorithm

    return [KrigeAlgorithm, ThresholdsAlgorithm, FractalAlgorithm, RobustMahalanobisAlgorithm, EvaluateAlgorithm,
            ProspectivityAlgorithm]


class JanjaProvider(QgsProcessingProvider):
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
