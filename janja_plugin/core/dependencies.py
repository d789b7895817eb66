"""Python packages QGIS lacks (onnxruntime), installed without a terminal into a plugin-owned folder.

Debian 12's Python refuses `pip install --user` (PEP 668), and Windows/macOS QGIS users have no
terminal habit: the plugin runs `pip install --target <folder in the QGIS profile>` itself, with a
constraints file pinning numpy to the version QGIS has already loaded, so QGIS's own scipy and GDAL
keep working. The folder is appended to sys.path at plugin load (after QGIS's own packages).
No QGIS import here: the glue passes the folder and a progress callback.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from .errors import JanjaInputError

# What the plugin's algorithms import beyond what QGIS ships (numpy, scipy, GDAL come with QGIS).
PACKAGES = {"onnxruntime": "onnxruntime"}
INSTALL_BUTTON = "Plugins ▸ Janja ▸ Install dependencies"
MODELS_BUTTON = "Plugins ▸ Janja ▸ Models…"


class InstallCancelled(Exception):  # noqa: N818 - named like the other Cancelled exceptions
    """The user cancelled the install; what pip had already written stays in the folder."""


def missing(modules):
    """The import names among `modules` that cannot be imported."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def missing_sentence(modules, purpose):
    """The refusal an algorithm gives before any work, or None when everything is there."""
    absent = missing(modules)
    if not absent:
        return None
    return (f"{' and '.join(absent)} {'is' if len(absent) == 1 else 'are'} needed for {purpose} but not "
            f"installed for QGIS's Python: click {INSTALL_BUTTON} (no terminal needed), then run again.")


def add_to_path(folder):
    """Append the plugin's package folder to sys.path (after QGIS's own numpy/scipy); True if added."""
    folder = str(folder)
    if Path(folder).is_dir() and folder not in sys.path:
        sys.path.append(folder)
        importlib.invalidate_caches()
        return True
    return False


def python_executable():
    """The Python interpreter of the running QGIS (sys.executable is the qgis binary inside QGIS)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    prefix = Path(sys.exec_prefix)
    candidates = [Path(sys.executable), prefix / "bin" / f"python{version}", prefix / "bin" / "python3",
                  prefix / "python.exe", prefix / "python3.exe", Path("/usr/bin") / f"python{version}"]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK) and path.name.lower().startswith("python"):
            return str(path)
    raise JanjaInputError(
        f"Could not find QGIS's Python interpreter (looked in {prefix}): install the packages "
        f"{', '.join(PACKAGES.values())} with your system's package manager instead.")


def write_constraints(path):
    """A pip constraints file pinning numpy to the version QGIS has loaded."""
    import numpy

    Path(path).write_text(f"numpy=={numpy.__version__}\n", encoding="utf-8")
    return Path(path)


def pip_command(target, requirements, constraints, python=None, extra_args=()):
    return [python or python_executable(), "-m", "pip", "install", "--disable-pip-version-check",
            "--no-input", "--upgrade", "--target", str(target), "-c", str(constraints), *extra_args,
            *requirements]


def install(target, requirements=None, progress=None, extra_args=(), python=None):
    """pip install --target `target`; progress(fraction, line) -> True cancels. Returns pip's log.

    pip prints one line per step; progress advances on each "Collecting"/"Installing" line so the bar
    moves. A failure raises JanjaInputError with pip's last lines (no network, no wheel for this
    platform...).
    """
    requirements = list(requirements or PACKAGES.values())
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    constraints = write_constraints(target.parent / "janja-constraints.txt")
    cmd = pip_command(target, requirements, constraints, python=python, extra_args=extra_args)
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    log, steps = [], 0
    expected = 4 * len(requirements) + 4
    for line in proc.stdout:
        log.append(line.rstrip())
        if line.startswith(("Collecting", "Downloading", "Installing", "Successfully", "Processing")):
            steps += 1
        if progress is not None and progress(min(0.95, steps / expected), line.rstrip()):
            proc.kill()
            proc.wait()
            raise InstallCancelled("Install cancelled; run Install dependencies again to finish it.")
    rc = proc.wait()
    if rc != 0:
        tail = " | ".join(line for line in log[-4:] if line.strip())
        raise JanjaInputError(
            f"Installing {', '.join(requirements)} into {target} failed (pip exit {rc}): {tail}. Check the "
            f"internet connection (pip needs https://pypi.org), then click {INSTALL_BUTTON} again.")
    add_to_path(target)
    if progress is not None:
        progress(1.0, "done")
    return "\n".join(log)
