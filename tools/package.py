"""Build the zip that QGIS's "Install from ZIP" accepts: the plugin folder at the zip's root.

Only what the plugin needs at run time goes in: no tests, venv, outputs, benchmarks, tools or the offline
training package. Models too large for plugins.qgis.org (the 44 MB Inception-v3 classifier) stay out of the
zip unless --all-models is given; the plugin fetches them from its catalogue (Models dialog,
janja:download_model).

A release zip (--release) is refused while placeholders remain: example.org addresses in metadata.txt or
the catalogue's PLACEHOLDER model server. Without --release a development zip is built
(janja-<version>-dev.zip) whose metadata and DEVELOPMENT_BUILD.txt say which placeholders it carries.
"""

import argparse
import configparser
import io
import json
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGIN_NAME = "janja"
INCLUDE = ["metadata.txt", "__init__.py", "LICENSE", "README.md", "janja_plugin", "models", "resources"]
SKIP_PARTS = {"__pycache__", ".pytest_cache", "training"}
SKIP_SUFFIXES = {".pyc"}
MAX_PLUGIN_REPO_BYTES = 25_000_000  # plugins.qgis.org refuses larger uploads
MAX_BUNDLED_MODEL_BYTES = 20_000_000
PLACEHOLDER_MARKS = ("example.org", "example.com", "PLACEHOLDER")
REQUIRED_METADATA = ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email",
                     "homepage", "tracker", "repository", "tags", "icon", "changelog")


def too_large_models(repo=REPO):
    """Stems of models/ .onnx files over MAX_BUNDLED_MODEL_BYTES (left out with their cards by default)."""
    return {f.with_suffix("") for f in (repo / "models").rglob("*.onnx") if f.stat().st_size > MAX_BUNDLED_MODEL_BYTES}


def plugin_files(skip_stems=(), repo=REPO):
    for name in INCLUDE:
        path = repo / name
        if path.is_file():
            yield path
        elif path.is_dir():
            for f in sorted(path.rglob("*")):
                rel_parts = set(f.relative_to(repo).parts)
                if (f.is_file() and not SKIP_PARTS & rel_parts and f.suffix not in SKIP_SUFFIXES
                        and f.with_suffix("") not in skip_stems):
                    yield f


def read_metadata(repo=REPO):
    meta = configparser.RawConfigParser()
    meta.optionxform = str  # keys are case-sensitive (qgisMinimumVersion)
    meta.read(repo / "metadata.txt", encoding="utf-8")
    return meta


def placeholders(repo=REPO):
    """What stands in for a real address: ['metadata.txt homepage=https://example.org/...', ...]."""
    found = []
    general = read_metadata(repo)["general"]
    for key in REQUIRED_METADATA:
        value = general.get(key, "")
        if not value.strip():
            found.append(f"metadata.txt {key} is empty")
        elif any(mark.lower() in value.lower() for mark in PLACEHOLDER_MARKS):
            found.append(f"metadata.txt {key}={value.splitlines()[0][:80]}")
    icon = general.get("icon", "")
    if icon and not (repo / icon).is_file():
        found.append(f"metadata.txt icon={icon} does not exist")
    for f in sorted((repo / "janja_plugin").rglob("*.py")):
        if "training" not in f.parts and any(m in f.read_text(encoding="utf-8") for m in PLACEHOLDER_MARKS[:2]):
            found.append(f"{f.relative_to(repo)} holds an example.org/.com address")
    catalogue = repo / "resources" / "model_catalogue.json"
    if catalogue.is_file():
        base_url = json.loads(catalogue.read_text(encoding="utf-8")).get("base_url", "")
        if not base_url or any(mark.lower() in base_url.lower() for mark in PLACEHOLDER_MARKS):
            found.append(f"resources/model_catalogue.json base_url={base_url[:60]} (models not hosted)")
    return found


def dev_metadata(repo, marks):
    """metadata.txt for a development zip: version suffixed, experimental, the placeholders named."""
    meta = read_metadata(repo)
    general = meta["general"]
    general["version"] = general["version"] + "-dev"
    general["experimental"] = "True"
    general["description"] = "DEVELOPMENT BUILD, not for the plugin repository. " + general["description"]
    general["about"] = (general["about"] + "\n\nDEVELOPMENT BUILD: it still carries placeholders (" +
                        "; ".join(marks) + ").")
    out = io.StringIO()
    meta.write(out, space_around_delimiters=False)
    return out.getvalue()


def build(out_dir, release=False, all_models=False, repo=REPO):
    """Write the zip; return (path, size, left-out stems). A release with placeholders raises SystemExit."""
    marks = placeholders(repo)
    if release and marks:
        raise SystemExit("make package: refusing a release zip while placeholders remain:\n  - " +
                         "\n  - ".join(marks) + "\nReplace them (metadata.txt; tools/make_model_catalogue.py "
                         "--base-url URL once the models are hosted), or build a development zip without --release.")
    skip = set() if all_models else too_large_models(repo)
    version = read_metadata(repo)["general"]["version"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PLUGIN_NAME}-{version}{'' if release else '-dev'}.zip"
    partial = target.with_suffix(".zip.part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in plugin_files(skip, repo):
            rel = f.relative_to(repo)
            if not release and str(rel) == "metadata.txt":
                zf.writestr(f"{PLUGIN_NAME}/metadata.txt", dev_metadata(repo, marks))
            else:
                zf.write(f, f"{PLUGIN_NAME}/{rel}")
        if not release:
            zf.writestr(f"{PLUGIN_NAME}/DEVELOPMENT_BUILD.txt",
                        "Development build of the Janja plugin, not for plugins.qgis.org.\nPlaceholders:\n" +
                        "".join(f"- {m}\n" for m in marks or ["none (build with --release)"]))
    partial.replace(target)
    return target, target.stat().st_size, skip


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="dist")
    parser.add_argument("--release", action="store_true", help="a zip for plugins.qgis.org (no placeholders)")
    parser.add_argument("--all-models", action="store_true", help="include models over 20 MB too")
    args = parser.parse_args()
    out = Path(args.out) if Path(args.out).is_absolute() else REPO / args.out
    target, size, skip = build(out, release=args.release, all_models=args.all_models)
    print(f"wrote {target} ({size / 1e6:.1f} MB, {'release' if args.release else 'DEVELOPMENT build'})")
    if not args.release:
        for mark in placeholders():
            print(f"  placeholder: {mark}")
    for stem in sorted(skip):
        print(f"left out {stem.relative_to(REPO)}.onnx (+ .json): too large for plugins.qgis.org; users fetch it "
              "with Plugins ▸ Janja ▸ Models… or janja:download_model (resources/model_catalogue.json)")
    if size > MAX_PLUGIN_REPO_BYTES:
        print("warning: over the 25 MB limit of plugins.qgis.org; ship large models separately", file=sys.stderr)
        if args.release:
            sys.exit(1)


if __name__ == "__main__":
    main()
