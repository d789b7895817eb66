"""The plugin runs without rasterio: QGIS does not ship it on Windows or macOS (issue 14).

A child process makes rasterio unimportable (sys.modules['rasterio'] = None), imports every processing
module, then krige -> prospectivity (stack and single-band inputs) -> thresholds on a raster, in QGIS.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from testdata import MEUSE, REPO

CHILD = textwrap.dedent("""
    import importlib, os, pkgutil, sys
    sys.modules["rasterio"] = None  # `import rasterio` (and rasterio.*) now raises ImportError
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    sys.path[:0] = ["/usr/share/qgis/python/plugins", {plugins!r}, {tests_core!r}, {repo!r}]
    tmp = {tmp!r}
    from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsVectorLayer
    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing
    Processing.initialize()
    import janja, janja.janja_plugin.processing as pkg
    for m in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module("janja.janja_plugin.processing." + m.name)
    plugin = janja.classFactory(None)
    plugin.initProcessing()
    import processing
    from test_model_card import build_model, card_dict

    layer = QgsVectorLayer("file://{meuse}?delimiter=,&xField=x&yField=y&crs=EPSG:28992", "meuse", "delimitedtext")
    k = processing.run("janja:krige", {{
        "INPUT": layer, "FIELDS": ["zinc", "copper"], "CELL_SIZE": 250.0, "OUTPUT": tmp + "/stack.tif",
        "VARIANCE": tmp + "/var.tif", "CV_TABLE": None, "REPORT": tmp + "/k.html"}})
    card = card_dict(elements=[("zinc", "ppm", "log10", 2.5, 0.3), ("copper", "ppm", "log10", 1.5, 0.3)],
                     channels=2, window=3, size=6)
    build_model(tmp + "/m.onnx", card, pool=True)
    p = processing.run("janja:prospectivity", {{
        "STACK": k["OUTPUT"], "MODEL": tmp + "/m.onnx", "PROBABILITY": tmp + "/p.tif",
        "CLASSES": tmp + "/c.tif", "TARGETS": tmp + "/t.gpkg", "REPORT": tmp + "/p.html"}})
    t = processing.run("janja:thresholds", {{"RASTER": p["PROBABILITY"], "BAND": 1, "METHOD": 3,
                                             "PERCENTILES": "50,90", "OUTPUT_RASTER": tmp + "/cls.tif",
                                             "REPORT": None}})
    out = QgsRasterLayer(p["PROBABILITY"], "p")
    stats = out.dataProvider().bandStatistics(1)
    print("RESULT", out.width(), out.height(), round(stats.minimumValue, 4), round(stats.maximumValue, 4),
          os.path.exists(t["OUTPUT_RASTER"]), "rasterio" in sys.modules and sys.modules["rasterio"] is None)
    del layer, out
    QgsProject.instance().clear()
    plugin.unload()
    app.exitQgis()
""")


def test_krige_prospectivity_and_raster_inputs_without_rasterio(tmp_path):
    from testdata import make_plugin_folder

    plugins = make_plugin_folder(tmp_path / "plugins")
    script = CHILD.format(plugins=str(plugins), tests_core=str(REPO / "tests" / "core"), repo=str(REPO),
                          tmp=str(tmp_path), meuse=MEUSE / "meuse.csv")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    result = [line for line in proc.stdout.splitlines() if line.startswith("RESULT")]
    assert proc.returncode == 0 and result, proc.stdout[-3000:] + proc.stderr[-3000:]
    width, height, pmin, pmax, thresholds_written, blocked = result[0].split()[1:]
    assert int(width) > 5 and int(height) > 5
    assert 0.0 <= float(pmin) <= float(pmax) <= 1.0 and float(pmax) > 0
    assert thresholds_written == "True" and blocked == "True"
    assert Path(tmp_path / "stack.tif").exists() and Path(tmp_path / "c.tif").exists()
