"""Models this computer can use: the shipped catalogue, a checksum-verified download, the installed list.

The 44 MB classifier does not fit the plugin repository's 25 MB zip, so the plugin ships a catalogue
(resources/model_catalogue.json: name, version, elements, cell size, files with sha256 and size,
licence, held-out scores) and fetches the files into a folder the caller chooses (the QGIS profile,
which survives plugin upgrades). Nothing is kept unless every file arrived whole with its checksum.
No QGIS import here: the glue passes folders, the server address and a progress callback.
"""

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import JanjaInputError

CATALOGUE_PATH = Path(__file__).resolve().parents[3] / "resources" / "model_catalogue.json"
REPO_MODELS_DIR = Path(__file__).resolve().parents[3] / "models"
BASE_URL_ENV = "JANJA_MODEL_BASE_URL"
# The catalogue has no public server yet: its address says so, and `make package` refuses a release zip.
PLACEHOLDER_PREFIX = "PLACEHOLDER"
CHUNK = 1 << 20


class DownloadCancelled(Exception):  # noqa: N818 - named like the other Cancelled exceptions
    """The user cancelled; partial files are already removed."""


@dataclass
class ModelFile:
    name: str
    sha256: str
    size: int


@dataclass
class CatalogueEntry:
    name: str
    version: str
    kind: str
    description: str
    elements: list
    cell_size: float
    licence: str
    files: list
    scores: dict = field(default_factory=dict)
    recommended: bool = False

    @property
    def size(self):
        return sum(f.size for f in self.files)

    def label(self):
        """One line for lists: name, version, elements, cell size, size."""
        return (f"{self.name} {self.version} ({', '.join(self.elements)}; {self.cell_size:g} m cells; "
                f"{self.size / 1e6:.0f} MB)")


@dataclass
class Catalogue:
    base_url: str
    entries: list

    def entry(self, name):
        for e in self.entries:
            if e.name == name:
                return e
        known = ", ".join(e.name for e in self.entries)
        raise JanjaInputError(f"The model catalogue has no model named '{name}'; it lists: {known}.")

    def recommended(self):
        return next((e for e in self.entries if e.recommended), self.entries[0] if self.entries else None)


def load_catalogue(path=None):
    data = json.loads(Path(path or CATALOGUE_PATH).read_text(encoding="utf-8"))
    entries = [CatalogueEntry(
        name=m["name"], version=str(m["version"]), kind=m["kind"], description=m.get("description", ""),
        elements=list(m["elements"]), cell_size=float(m["cell_size"]), licence=m["licence"],
        files=[ModelFile(f["name"], f["sha256"].lower(), int(f["size"])) for f in m["files"]],
        scores=dict(m.get("scores", {})), recommended=bool(m.get("recommended", False)),
    ) for m in data["models"]]
    return Catalogue(base_url=data["base_url"], entries=entries)


def is_placeholder(url):
    return not url or url.strip().upper().startswith(PLACEHOLDER_PREFIX)


def resolve_base_url(catalogue, override=None, setting=None):
    """Where to download from: the parameter, then the JANJA_MODEL_BASE_URL variable, then the QGIS
    setting, then the catalogue's own address (a placeholder until the models are hosted)."""
    for candidate in (override, os.environ.get(BASE_URL_ENV), setting, catalogue.base_url):
        if candidate and str(candidate).strip():
            return str(candidate).strip()
    return catalogue.base_url


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download_model(entry, base_url, dest_dir, progress=None, timeout=30.0):
    """Fetch every file of `entry` into `dest_dir`, verified; return the .onnx path.

    progress(fraction) -> True cancels. Files are written as hidden partials beside their final
    name and moved into place only after all of them matched their size and sha256, so an
    interrupted, cancelled or corrupt download leaves the folder as it was.
    """
    if is_placeholder(base_url):
        raise JanjaInputError(
            f"The model '{entry.name}' has no public download address yet (the catalogue says "
            f"'{base_url}'). Copy the model files from the project, or point the download at your "
            f"organisation's server: the Server address field of the Models dialog, the "
            f"BASE_URL parameter of janja:download_model, or the {BASE_URL_ENV} environment variable.")
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    for f in entry.files:  # leftovers of a download that QGIS was closed or killed during
        for stale in dest.glob(f".{f.name}.*.part"):
            stale.unlink()
    total = max(1, entry.size)
    done = 0
    partials = []
    try:
        for f in entry.files:
            partial = dest / f".{f.name}.{uuid.uuid4().hex[:8]}.part"
            partials.append((partial, dest / f.name))
            done = _fetch_one(f, _join(base_url, f.name), partial, done, total, progress, timeout)
        for partial, final in partials:
            os.replace(partial, final)
    finally:
        for partial, _ in partials:
            if partial.exists():
                partial.unlink()
    onnx = [final for _, final in partials if final.suffix == ".onnx"]
    return onnx[0] if onnx else partials[0][1]


def _join(base_url, name):
    return base_url.rstrip("/") + "/" + urllib.parse.quote(name)


def _fetch_one(f, url, partial, done, total, progress, timeout):
    host = urllib.parse.urlsplit(url).netloc or url
    digest = hashlib.sha256()
    got = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                out.write(block)
                digest.update(block)
                got += len(block)
                if got > f.size:
                    break
                if progress is not None and progress((done + got) / total):
                    raise DownloadCancelled(f"Download of {f.name} cancelled: nothing was kept.")
    except urllib.error.HTTPError as exc:
        raise JanjaInputError(
            f"The model server {host} answered '{exc.code} {exc.reason}' for {f.name}: check the server "
            f"address (Models dialog or {BASE_URL_ENV}); nothing was kept.") from None
    except urllib.error.URLError as exc:
        raise JanjaInputError(
            f"Could not reach the model server {host} ({exc.reason}): check the internet connection or "
            f"proxy, or point the download at a server you can reach; nothing was kept.") from None
    except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
        raise JanjaInputError(
            f"The download of {f.name} from {host} broke off after {got / 1e6:.1f} of {f.size / 1e6:.1f} MB "
            f"({type(exc).__name__}); nothing was kept. Try again.") from None
    if got != f.size:
        raise JanjaInputError(
            f"The download of {f.name} from {host} gave {got:,} bytes where the catalogue expects "
            f"{f.size:,}; nothing was kept. Try again, or check that the server holds this model version.")
    if digest.hexdigest() != f.sha256:
        raise JanjaInputError(
            f"The downloaded {f.name} does not match the catalogue's checksum (sha256 "
            f"{digest.hexdigest()[:12]}… instead of {f.sha256[:12]}…): refused, nothing was kept. "
            f"The server holds a different or damaged file.")
    return done + got


@dataclass
class InstalledModel:
    name: str
    path: Path
    kind: str
    where: str  # "profile" or "plugin"

    def label(self):
        return f"{self.name} ({self.where})"


def read_card_beside(model_path):
    try:
        return json.loads(Path(model_path).with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def installed_models(folders):
    """The .onnx models in `folders` [(path, where), ...], first folder winning a name clash."""
    seen, models = set(), []
    for folder, where in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.onnx")):
            if path.name.startswith("."):
                continue
            card = read_card_beside(path) or {}
            name = card.get("name") or path.stem
            if name in seen:
                continue
            seen.add(name)
            models.append(InstalledModel(name, path, card.get("model_kind", "supervised_classifier"), where))
    return models


def recommended_model(models, catalogue=None, kind="supervised_classifier"):
    """The catalogue's recommended model if installed, else the first installed model of `kind`."""
    of_kind = [m for m in models if m.kind == kind]
    if catalogue is not None:
        rec = catalogue.recommended()
        for m in of_kind:
            if rec is not None and m.name == rec.name:
                return m
    return of_kind[0] if of_kind else None
