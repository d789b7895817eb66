"""Build the zip that QGIS's "Install from ZIP" accepts: the plugin folder at the zip's root.

Only what the plugin needs at run time goes in: no tests, venv, outputs, benchmarks, tools or the offline
training package. Models too large for plugins.qgis.org (the 47 MB Inception-v3 classifier) stay out of the
zip unless --all-models is given; the algorithms take them by path (MODEL parameter), see models/README.md.
"""

import argparse
import configparser
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGIN_NAME = "janja"
INCLUDE = ["metadata.txt", "__init__.py", "LICENSE", "README.md", "janja_plugin", "models", "resources"]
SKIP_PARTS = {"__pycache__", ".pytest_cache", "training"}
SKIP_SUFFIXES = {".pyc"}
MAX_PLUGIN_REPO_BYTES = 25_000_000  # plugins.qgis.org refuses larger uploads
MAX_BUNDLED_MODEL_BYTES = 20_000_000


def too_large_models():
    """Stems of models/ .onnx files over MAX_BUNDLED_MODEL_BYTES (left out with their cards by default)."""
    return {f.with_suffix("") for f in (REPO / "models").rglob("*.onnx") if f.stat().st_size > MAX_BUNDLED_MODEL_BYTES}


def plugin_files(skip_stems=()):
    for name in INCLUDE:
        path = REPO / name
        if path.is_file():
            yield path
        elif path.is_dir():
            for f in sorted(path.rglob("*")):
                rel_parts = set(f.relative_to(REPO).parts)
                if (f.is_file() and not SKIP_PARTS & rel_parts and f.suffix not in SKIP_SUFFIXES
                        and f.with_suffix("") not in skip_stems):
                    yield f


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="dist")
    parser.add_argument("--all-models", action="store_true", help="include models over 20 MB too")
    args = parser.parse_args()
    skip = set() if args.all_models else too_large_models()
    meta = configparser.ConfigParser()
    meta.read(REPO / "metadata.txt")
    version = meta["general"]["version"]
    out_dir = REPO / args.out
    out_dir.mkdir(exist_ok=True)
    target = out_dir / f"{PLUGIN_NAME}-{version}.zip"
    partial = target.with_suffix(".zip.part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in plugin_files(skip):
            zf.write(f, f"{PLUGIN_NAME}/{f.relative_to(REPO)}")
    partial.replace(target)
    size = target.stat().st_size
    print(f"wrote {target} ({size / 1e6:.1f} MB)")
    for stem in sorted(skip):
        print(f"left out {stem.relative_to(REPO)}.onnx (+ .json): too large for plugins.qgis.org; give it to the "
              "algorithms by path or copy it into the installed plugin's models/ folder (models/README.md)")
    if size > MAX_PLUGIN_REPO_BYTES:
        print("warning: over the 25 MB limit of plugins.qgis.org; ship large models separately")


if __name__ == "__main__":
    main()
