"""Run QGIS headless the way a user would: qgis_process.bin with a throwaway profile and this plugin.

Shared by `make demo` and the end-to-end and desktop tests, so both exercise the same setup.
"""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLUGIN_NAME = "janja"
QGIS_PROCESS = "/usr/bin/qgis_process.bin"  # not Debian's wrapper: it adds --noversioncheck and fails


def extra_python_path() -> str:
    """What qgis_process and the desktop must add to their Python to see this interpreter's packages.

    In a venv that is its site-packages (they only see it through PYTHONPATH); in a chroot of the
    QGIS matrix it is the inherited PYTHONPATH (the pip --target folder of tools/qgis_chroot.sh).
    """
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if sys.prefix != sys.base_prefix:
        paths.insert(0, str(next(Path(sys.prefix).glob("lib/python3*/site-packages"))))
    return os.pathsep.join(paths)


def make_plugin_folder(root: Path) -> Path:
    """A folder holding the checkout under the plugin's installed name, for QGIS_PLUGINPATH."""
    root.mkdir(parents=True, exist_ok=True)
    link = root / PLUGIN_NAME
    if not link.exists():
        link.symlink_to(REPO, target_is_directory=True)
    return root


def qgis_environment(tmp: Path, headless=True) -> dict:
    """Environment for qgis_process / desktop QGIS with a throwaway profile and this plugin."""
    env = dict(os.environ)
    runtime = Path(f"/tmp/runtime-{os.getuid()}")
    runtime.mkdir(mode=0o700, exist_ok=True)
    profile = tmp / "profile"
    profile.mkdir(parents=True, exist_ok=True)
    env.update(
        XDG_RUNTIME_DIR=str(runtime),
        QGIS_CUSTOM_CONFIG_PATH=str(profile),
        QGIS_PLUGINPATH=str(make_plugin_folder(tmp / "plugins")),
        PYTHONPATH=extra_python_path(),
    )
    if headless:
        env["QT_QPA_PLATFORM"] = "offscreen"
    else:
        env.pop("QT_QPA_PLATFORM", None)
    return env


def run_qgis_process(args, env, timeout=600, check=True):
    """Run qgis_process.bin; with check, a failure raises with the tail of its output."""
    proc = subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"qgis_process {' '.join(map(str, args))} failed (rc {proc.returncode})\n"
            f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    return proc
