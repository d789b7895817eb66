"""Link this checkout into the user's default QGIS profile and enable it (for development)."""

import configparser
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGIN_NAME = "janja"


def main():
    base = Path(os.environ.get("QGIS_CUSTOM_CONFIG_PATH", Path.home() / ".local/share/QGIS/QGIS3"))
    profile = base / "profiles" / "default"
    plugins = profile / "python" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / PLUGIN_NAME
    if link.is_symlink() or link.exists():
        if link.resolve() != REPO:
            raise SystemExit(f"{link} exists and is not a link to this checkout; remove it first.")
    else:
        link.symlink_to(REPO, target_is_directory=True)
    ini = profile / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True, exist_ok=True)
    config = configparser.RawConfigParser()
    config.optionxform = str  # QGIS keys are case-sensitive
    config.read(ini)
    if not config.has_section("PythonPlugins"):
        config.add_section("PythonPlugins")
    config.set("PythonPlugins", PLUGIN_NAME, "true")
    with open(ini, "w") as fh:
        config.write(fh, space_around_delimiters=False)
    print(f"linked {link} -> {REPO} and enabled it in {ini}")
    print("The plugin adds this checkout's .venv (onnxruntime, for the classifier) to QGIS's Python path "
          "by itself; restart QGIS to load it.")


if __name__ == "__main__":
    main()
