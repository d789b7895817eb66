"""QGIS API names that moved between QGIS 3.22 and 3.44, chosen in this one place.

QGIS 3.30-3.38 moved many enums into scoped `Qgis.*` enums and field types to QMetaType; the old
names are deprecated and gone in QGIS 4 (Qt 6), while QGIS 3.22 (Debian 12) lacks the new ones.
Each name is looked up by feature, not by version number, so a backport or a removal both work.
Qt's own enums need no guard: their scoped form (Qt.AlignmentFlag.AlignLeft) works on Qt 5 and 6.
"""

from qgis.core import (
    Qgis,
    QgsColorRampShader,
    QgsField,
    QgsProcessing,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant


def _scoped(enum_name, member, old):
    """Qgis.<enum_name>.<member> where this QGIS has it, else the old name."""
    enum = getattr(Qgis, enum_name, None)
    return getattr(enum, member) if enum is not None else old


# Processing (Qgis.Processing* since QGIS 3.36)
SOURCE_POINT = _scoped("ProcessingSourceType", "VectorPoint", getattr(QgsProcessing, "TypeVectorPoint", None))
SOURCE_POLYGON = _scoped("ProcessingSourceType", "VectorPolygon", getattr(QgsProcessing, "TypeVectorPolygon", None))
SOURCE_RASTER = _scoped("ProcessingSourceType", "Raster", getattr(QgsProcessing, "TypeRaster", None))
NUMBER_INTEGER = _scoped("ProcessingNumberParameterType", "Integer",
                         getattr(QgsProcessingParameterNumber, "Integer", None))
NUMBER_DOUBLE = _scoped("ProcessingNumberParameterType", "Double",
                        getattr(QgsProcessingParameterNumber, "Double", None))
FIELD_ANY = _scoped("ProcessingFieldParameterDataType", "Any", getattr(QgsProcessingParameterField, "Any", None))
FLAG_ADVANCED = _scoped("ProcessingParameterFlag", "Advanced",
                        getattr(QgsProcessingParameterDefinition, "FlagAdvanced", None))

# Geometry and rendering (Qgis.WkbType, Qgis.ShaderInterpolationMethod since QGIS 3.30)
WKB_POINT = _scoped("WkbType", "Point", getattr(QgsWkbTypes, "Point", None))
WKB_MULTIPOLYGON = _scoped("WkbType", "MultiPolygon", getattr(QgsWkbTypes, "MultiPolygon", None))
SHADER_DISCRETE = _scoped("ShaderInterpolationMethod", "Discrete", getattr(QgsColorRampShader, "Discrete", None))

# QgsField takes a QMetaType.Type since QGIS 3.38 (QVariant.Type is deprecated there, gone in Qt 6).
_QMETATYPE_FIELDS = Qgis.QGIS_VERSION_INT >= 33800


def field(name: str, kind: str) -> QgsField:
    """An attribute field of kind 'double', 'int' or 'string', built the way this QGIS expects."""
    if _QMETATYPE_FIELDS:
        from qgis.PyQt.QtCore import QMetaType

        types = {"double": QMetaType.Type.Double, "int": QMetaType.Type.Int, "string": QMetaType.Type.QString}
    else:
        types = {"double": QVariant.Double, "int": QVariant.Int, "string": QVariant.String}
    return QgsField(name, types[kind])


def parameter_as_strings(alg, parameters, name, context):
    """A field (or string) list parameter's values: parameterAsStrings since QGIS 3.32, where
    parameterAsFields is deprecated; QGIS 3.22 has only parameterAsFields."""
    if hasattr(alg, "parameterAsStrings"):
        return alg.parameterAsStrings(parameters, name, context)
    return alg.parameterAsFields(parameters, name, context)
