"""Paths and headless-QGIS helpers shared by every test tier (imports nothing from QGIS)."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from qgis_headless import (  # noqa: E402,F401 - re-exported for the test tiers
    PLUGIN_NAME,
    make_plugin_folder,
    qgis_environment,
    run_qgis_process,
)

TEST_DATA = REPO / "tests" / "data"
MEUSE = TEST_DATA / "meuse"  # R gstat 2.1 reference outputs, see its PROVENANCE.md
SAMPLE_DATA = REPO / "resources" / "sample_data"


def processing_error(alg_id, params, feedback=None):
    """Run a Processing algorithm that must fail; return its message.

    The exception's traceback is dropped here: its frames hold the processing context and its
    layers, which would otherwise live until exitQgis and crash the test process at exit (rc 139).
    """
    import processing
    from qgis.core import QgsProcessingException

    try:
        processing.run(alg_id, params, feedback=feedback)
    except QgsProcessingException as exc:
        message = str(exc)
        exc.__traceback__ = None
        return message
    raise AssertionError(f"{alg_id} succeeded but should have refused its input")


def read_csv_table(path):
    """A CSV with a header as a numpy structured array (the gstat reference tables)."""
    import numpy as np

    return np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding=None)
