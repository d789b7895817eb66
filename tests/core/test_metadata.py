"""metadata.txt states the QGIS versions the matrix tests: the host's 3.22 up to the newest chroot."""

import configparser
import re

from testdata import REPO


def metadata():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "metadata.txt", encoding="utf-8")
    return parser["general"]


def chroot_versions():
    """The QGIS versions tools/qgis_chroot.sh can build (its case over VERSION)."""
    text = (REPO / "tools" / "qgis_chroot.sh").read_text()
    return sorted(re.findall(r"^\s+(\d+\.\d+)\) SUITE=", text, re.M), key=lambda v: tuple(map(int, v.split("."))))


def test_qgis_versions_in_metadata_are_the_tested_ones():
    versions = chroot_versions()
    assert versions, "tools/qgis_chroot.sh names no QGIS version"
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^CHROOT_QGIS := " + " ".join(map(re.escape, versions)) + "$", makefile, re.M), \
        "make test does not run every chroot version"
    meta = metadata()
    assert meta["qgisMinimumVersion"] == "3.22"  # the host's QGIS (Debian 12)
    assert meta["qgisMaximumVersion"] == versions[-1]
