"""Size of janja:evaluate's outputs (CSV table, HTML report) on a WA-sized score raster.

A smooth random score on the WA survey's 250 m grid (about 520 x 620 cells, every value distinct, as a
probability map is), the 32 WA gold sites as deposits. Issue 14 measured 8 MB of evaluation files: every
distinct score was a step of the ROC and success-rate curves, written to the CSV and drawn into the SVG.

    .venv/bin/python bench/bench_evaluation_size.py [--repo PATH_TO_A_CHECKOUT] [--out DIR]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]))
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    repo = Path(args.repo).resolve()
    sys.path[:0] = ["/usr/share/qgis/python/plugins", str(repo), str(repo / "tools")]
    from qgis.core import (
        QgsApplication,
        QgsCoordinateReferenceSystem,
        QgsCoordinateTransform,
        QgsProject,
        QgsVectorLayer,
    )

    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    from qgis_headless import make_plugin_folder

    out = Path(args.out or tempfile.mkdtemp(prefix="evalsize_"))
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(make_plugin_folder(out / "plugins")))
    import janja

    plugin = janja.classFactory(None)
    plugin.initProcessing()
    import processing
    from janja.janja_plugin.core.raster_grid import grid_for_extent, write_stack

    gpkg = repo / "resources" / "sample_data" / "wa_sample_data.gpkg"
    samples = QgsVectorLayer(f"{gpkg}|layername=samples", "s", "ogr")
    utm = QgsCoordinateReferenceSystem("EPSG:32750")
    box = QgsCoordinateTransform(samples.crs(), utm, QgsProject.instance()).transformBoundingBox(samples.extent())
    grid = grid_for_extent(box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum(), 250.0, margin=500.0)
    rng = np.random.default_rng(0)
    coarse = rng.random((grid.nrows // 20 + 2, grid.ncols // 20 + 2))
    rows = np.linspace(0, coarse.shape[0] - 1.001, grid.nrows)
    cols = np.linspace(0, coarse.shape[1] - 1.001, grid.ncols)
    r0, c0 = rows.astype(int), cols.astype(int)
    fr, fc = (rows - r0)[:, None], (cols - c0)[None, :]
    score = ((1 - fr) * (1 - fc) * coarse[r0][:, c0] + fr * (1 - fc) * coarse[r0 + 1][:, c0]
             + (1 - fr) * fc * coarse[r0][:, c0 + 1] + fr * fc * coarse[r0 + 1][:, c0 + 1])
    score += 1e-6 * rng.random(score.shape)  # every cell distinct, as in a model's probability map
    raster = write_stack(out / "score.tif", [score], ["probability"], grid, "EPSG:32750")
    t0 = time.perf_counter()
    processing.run("janja:evaluate", {
        "SCORE_RASTER": str(raster), "BAND": 1, "DEPOSITS": f"{gpkg}|layername=au_sites",
        "TABLE": str(out / "evaluation.csv"), "REPORT": str(out / "evaluation.html")})
    seconds = time.perf_counter() - t0
    print(f"repo {repo}; grid {grid.ncols} x {grid.nrows} = {grid.n_cells:,} cells; evaluate {seconds:.1f} s")
    for name in ("evaluation.csv", "evaluation.html"):
        print(f"{name}: {(out / name).stat().st_size / 1e6:.3f} MB")
    del samples
    QgsProject.instance().clear()
    plugin.unload()
    app.exitQgis()


if __name__ == "__main__":
    main()
