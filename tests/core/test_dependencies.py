"""The no-terminal installer: pip --target into a plugin-owned folder, numpy pinned to the loaded one.

Local wheels only (pip --no-index --find-links): a package that needs numpy, and two fake numpy
wheels, the loaded version and a far newer one. Without the constraints file pip would take 99.0.
"""

import base64
import hashlib
import sys
import zipfile
from pathlib import Path

import numpy
import pytest

from janja_plugin.core import dependencies as deps
from janja_plugin.core.errors import JanjaInputError

SYSTEM_PY = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


def make_wheel(folder, name, version, requires=(), body="VALUE = 1\n"):
    """A minimal pure-Python wheel (what `pip wheel` would build), written by hand to stay offline."""
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": body,
             f"{dist}/METADATA": "Metadata-Version: 2.1\nName: {}\nVersion: {}\n{}".format(
                 name, version, "".join(f"Requires-Dist: {r}\n" for r in requires)),
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    wheel = Path(folder) / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


@pytest.fixture
def wheels(tmp_path):
    folder = tmp_path / "wheels"
    folder.mkdir()
    make_wheel(folder, "janjatestpkg", "1.0", requires=["numpy"])
    make_wheel(folder, "numpy", numpy.__version__, body="FAKE = 'loaded'\n")
    make_wheel(folder, "numpy", "99.0", body="FAKE = 'newer'\n")
    return folder


@pytest.fixture
def clean_path(monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))


def test_install_into_target_pins_numpy_and_reports_progress(wheels, tmp_path, clean_path):
    target = tmp_path / "profile" / "janja" / "python"
    seen = []
    deps.install(target, ["janjatestpkg"], progress=lambda f, line: seen.append(f) and False,
                 extra_args=["--no-index", "--find-links", str(wheels)], python=SYSTEM_PY)
    assert (target / "janjatestpkg" / "__init__.py").exists()
    installed = sorted(p.name for p in target.glob("numpy-*.dist-info"))
    assert installed == [f"numpy-{numpy.__version__}.dist-info"]
    assert (tmp_path / "profile" / "janja" / "janja-constraints.txt").read_text() == f"numpy=={numpy.__version__}\n"
    numpy_site = str(Path(numpy.__file__).parents[1])
    assert str(target) in sys.path and sys.path.index(str(target)) > sys.path.index(numpy_site)
    assert seen[-1] == 1.0 and len(seen) > 2


def test_failed_install_is_a_sentence_naming_the_button(wheels, tmp_path, clean_path):
    with pytest.raises(JanjaInputError, match=r"Installing nosuchjanjapkg .* failed .*Install dependencies again"):
        deps.install(tmp_path / "t", ["nosuchjanjapkg"], extra_args=["--no-index", "--find-links", str(wheels)],
                     python=SYSTEM_PY)


def test_cancel_stops_pip(wheels, tmp_path, clean_path):
    with pytest.raises(deps.InstallCancelled):
        deps.install(tmp_path / "t", ["janjatestpkg"], progress=lambda f, line: True,
                     extra_args=["--no-index", "--find-links", str(wheels)], python=SYSTEM_PY)


def test_missing_sentence_names_the_button():
    assert deps.missing_sentence(["numpy"], "x") is None
    sentence = deps.missing_sentence(["numpy", "nosuchjanjamodule"], "the prospectivity classifier")
    assert sentence.startswith("nosuchjanjamodule is needed for the prospectivity classifier")
    assert deps.INSTALL_BUTTON in sentence


def test_add_to_path_appends_after_qgis_packages(tmp_path, clean_path):
    assert deps.add_to_path(tmp_path) and sys.path[-1] == str(tmp_path)
    assert not deps.add_to_path(tmp_path) and not deps.add_to_path(tmp_path / "absent")
