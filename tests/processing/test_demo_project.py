"""tools/demo_project.py: demo.qgz opens on the survey, not on an empty canvas at 1:1 (issue 14).

QGIS's desktop uses the project's default view extent when the file holds no map-canvas state, which is
the case for a project written headless (checked by hand under Xvfb: scale 1 and an empty extent without
it, the survey with it).
"""

import sys

import numpy as np
from testdata import REPO

sys.path.insert(0, str(REPO / "tools"))
from demo_project import PROJECT, WORKFLOW_OUTPUTS, build_project  # noqa: E402

from janja_plugin.core.raster_grid import Grid, write_stack  # noqa: E402


def test_demo_project_opens_zoomed_to_the_survey(qgis_app, tmp_path):
    from qgis.core import QgsProject

    grid = Grid(380000.0, 6250000.0, 1000.0, 60, 40)
    write_stack(tmp_path / WORKFLOW_OUTPUTS["krige:elements"], [np.ones((40, 60))], ["Au_ppm"], grid, "EPSG:32750")
    project = build_project(tmp_path)
    project.clear()
    del project
    opened = QgsProject()
    assert opened.read(str(tmp_path / PROJECT))
    view = opened.viewSettings().defaultViewExtent()
    assert view.crs().authid() == "EPSG:32750" and opened.crs().authid() == "EPSG:32750"
    assert view.contains(grid.xmin + 1, grid.ymin + 1) and view.contains(grid.xmax - 1, grid.ymax - 1)
    assert view.width() < 1.1 * 60000 and view.height() < 1.1 * 40000
    opened.clear()
    del opened, view
