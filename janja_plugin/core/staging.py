"""Outputs that appear all together or not at all, with the file mode colleagues can read.

Every algorithm writes each output to a hidden temporary name beside its destination; only when all
of them were written are they moved into place (a rename in the same folder). If anything fails, the
temporary files are removed and the destinations are left as they were. Before any work starts,
every destination is checked for being writable, so a bad path fails in seconds, not after an hour.
"""

import os
import secrets
import tempfile
from pathlib import Path

from .errors import JanjaInputError

_TAG = ".janja-part-"


def umask_mode(base=0o666):
    """The mode a plain `open()` would give a new file (mkstemp gives 0600, unreadable to colleagues)."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def make_readable(path):
    """Give a file made by mkstemp the usual umask-respecting mode."""
    os.chmod(path, umask_mode())


def check_writable(path, what):
    """Raise JanjaInputError, with a sentence naming the output and what to do, unless `path` can be
    written (its folder exists and is writable, or can be created)."""
    p = Path(path)
    if p.is_dir():
        raise JanjaInputError(f"The {what} destination '{p}' is a folder: give a file name inside it.")
    ancestor = p.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise JanjaInputError(
            f"The {what} destination '{p}' lies under '{ancestor}', which is a file, not a folder: "
            "choose a path inside a folder.")
    try:
        fd, probe = tempfile.mkstemp(dir=ancestor, prefix=".janja-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise JanjaInputError(
            f"The {what} destination '{p}' cannot be written: the folder '{ancestor}' refuses new files "
            f"({exc.strerror}). Choose a folder you can write to.") from None
    if p.exists() and not os.access(p, os.W_OK):
        raise JanjaInputError(
            f"The {what} destination '{p}' exists and is read-only: choose another name or make it writable.")


class StagedOutputs:
    """Destinations of one run: stage() gives each a temporary name, commit() moves all into place."""

    def __init__(self):
        self.staged = []  # (folder, temporary stem, final path)
        self.committed = False
        self.made_folders = []

    def stage(self, path):
        """The temporary name to write instead of `path` (same folder and extension, hidden)."""
        final = Path(path)
        missing = final.parent
        while not missing.parent.exists() and missing != missing.parent:
            missing = missing.parent
        if not missing.exists():
            self.made_folders.append(missing)  # removed again by discard() if the run fails
        final.parent.mkdir(parents=True, exist_ok=True)
        stem = f".{final.stem}{_TAG}{secrets.token_hex(4)}"
        self.staged.append((final.parent, stem, final))
        return str(final.with_name(stem + final.suffix))

    @staticmethod
    def _belongs(name, stem):
        return name == stem or name.startswith(stem + ".")

    def _parts(self, folder, stem):
        """The files written under a temporary stem: the file and its sidecars (.qml, .aux.xml,
        shapefile parts, .gpkg-wal), all sharing the stem."""
        try:
            return [f for f in folder.iterdir() if self._belongs(f.name, stem)]
        except OSError:
            return []

    def final_path(self, path):
        """Where a staged file (or one of its sidecars) will be after commit(); other paths unchanged."""
        if not isinstance(path, str) or _TAG not in path:
            return path
        p = Path(path)
        for folder, stem, final in self.staged:
            if p.parent == folder and self._belongs(p.name, stem):
                return str(final.with_name(final.stem + p.name[len(stem):]))
        return path

    def commit(self):
        """Move every staged file and its sidecars into place."""
        for folder, stem, _final in self.staged:
            for part in self._parts(folder, stem):
                os.replace(part, self.final_path(str(part)))
        self.committed = True

    def discard(self):
        """Remove everything written under a temporary name; the destinations are untouched (no-op
        after commit())."""
        if self.committed:
            return
        for folder, stem, _final in self.staged:
            for part in self._parts(folder, stem):
                try:
                    part.unlink()
                except OSError:
                    pass
        for folder in reversed(self.made_folders):
            for sub in sorted(folder.rglob("*"), reverse=True):  # only empty folders this run made
                if sub.is_dir() and not any(sub.iterdir()):
                    sub.rmdir()
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        self.staged = []
        self.made_folders = []
