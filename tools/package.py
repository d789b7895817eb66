"""Build the zip that QGIS's "Install from ZIP" accepts: the plugin folder at the zip's root.

Only what the plugin needs at run time goes in: no tests, venv, outputs, benchmarks or tools.
"""

import argparse
import configparser
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGIN_NAME = "janja"
INCLUDE = ["metadata.txt", "__init__.py", "LICENSE", "README.md", "janja_plugin", "models", "resources"]
SKIP_PARTS = {"__pycache__", ".pytest_cache"}
SKIP_SUFFIXES = {".pyc"}
MAX_PLUGIN_REPO_BYTES = 25_000_000  # plugins.qgis.org refuses larger uploads


def plugin_files():
    for name in INCLUDE:
        path = REPO / name
        if path.is_file():
            yield path
        elif path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file() and not SKIP_PARTS & set(f.parts) and f.suffix not in SKIP_SUFFIXES:
                    yield f


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="dist")
    args = parser.parse_args()
    meta = configparser.ConfigParser()
    meta.read(REPO / "metadata.txt")
    version = meta["general"]["version"]
    out_dir = REPO / args.out
    out_dir.mkdir(exist_ok=True)
    target = out_dir / f"{PLUGIN_NAME}-{version}.zip"
    partial = target.with_suffix(".zip.part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in plugin_files():
            zf.write(f, f"{PLUGIN_NAME}/{f.relative_to(REPO)}")
    partial.replace(target)
    size = target.stat().st_size
    print(f"wrote {target} ({size / 1e6:.1f} MB)")
    if size > MAX_PLUGIN_REPO_BYTES:
        print("warning: over the 25 MB limit of plugins.qgis.org; ship large models separately")


if __name__ == "__main__":
    main()
