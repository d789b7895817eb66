"""Folders the plugin owns in the QGIS profile (survive plugin upgrades) and the installed models.

<profile>/janja/models holds downloaded models, <profile>/janja/python the packages that
Install dependencies puts there. The plugin's own models/ folder is searched after the profile.
"""

from pathlib import Path

from qgis.core import QgsApplication, QgsSettings

from ..core.inference import model_store

BASE_URL_SETTING = "janja/model_base_url"


def janja_dir():
    return Path(QgsApplication.qgisSettingsDirPath()) / "janja"


def profile_models_dir():
    return janja_dir() / "models"


def packages_dir():
    return janja_dir() / "python"


def model_folders(plugin_models=None):
    return [(profile_models_dir(), "profile"), (plugin_models or model_store.REPO_MODELS_DIR, "plugin")]


def installed_models(kind=None, plugin_models=None):
    models = model_store.installed_models(model_folders(plugin_models))
    return [m for m in models if kind is None or m.kind == kind]


def recommended_model(kind="supervised_classifier", plugin_models=None):
    """The catalogue's recommended model if installed (profile first), else the first of its kind, or None."""
    try:
        catalogue = model_store.load_catalogue()
    except (OSError, ValueError, KeyError):
        catalogue = None
    return model_store.recommended_model(installed_models(plugin_models=plugin_models), catalogue, kind=kind)


def base_url_setting():
    return QgsSettings().value(BASE_URL_SETTING, "", type=str)


def set_base_url_setting(url):
    QgsSettings().setValue(BASE_URL_SETTING, url or "")
