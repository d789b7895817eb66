"""Inside qgis_process the plugin's numbers are OpenBLAS's, as in plain Python (README: Speed inside QGIS).

QGIS 3.22's qgis_process.bin links GSL, whose reference CBLAS then takes numpy's cblas_* calls: 10-20x
slower, rounded differently (bench/bench_qgis_blas.py). The plugin's products go through core/blas.py.
Reference: the same qgis_process run with OpenBLAS preloaded (LD_PRELOAD), i.e. OpenBLAS first.
"""

import sys

import numpy as np
import pytest
from testdata import PLUGIN_NAME, REPO, qgis_environment, run_qgis_process

sys.path.insert(0, str(REPO / "tools"))
from standin_model import build_standin_model  # noqa: E402

OPENBLAS_FIRST = "libblas.so.3"  # Debian's BLAS alternative (OpenBLAS), which numpy and scipy link

PROBE = """
import numpy as np, sys
sys.path.insert(0, {repo!r})
from janja_plugin.core import blas
a = np.random.default_rng(3).standard_normal((300, 200)).astype(np.float32)
b = np.random.default_rng(4).standard_normal((200, 100)).astype(np.float32)
np.save({out!r}, np.stack([a @ b, blas.matmul(a, b)]))
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = qgis_environment(tmp_path_factory.mktemp("qp"))
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
    return env


def stack_tif(path, rows=30, cols=36, cell=500.0):
    """A small lognormal element stack (the stand-in model's elements) in UTM 50S."""
    import rasterio
    from rasterio.transform import from_origin
    from standin_model import STATS

    rng = np.random.default_rng(11)
    with rasterio.open(path, "w", driver="GTiff", width=cols, height=rows, count=len(STATS), dtype="float32",
                       crs="EPSG:32750", transform=from_origin(580000, 6300000, cell, cell), nodata=-9999) as dst:
        for i, (name, (mean, sd)) in enumerate(STATS.items(), start=1):
            field = rng.standard_normal((rows, cols)).cumsum(axis=0).cumsum(axis=1) / 20
            dst.write((10 ** (mean + sd * field)).astype(np.float32), i)
            dst.set_band_description(i, name)
    return path


def test_plugin_products_in_qgis_process_equal_openblas(env, tmp_path):
    out = {}
    for tag, preload in (("default", None), ("openblas", OPENBLAS_FIRST)):
        probe = tmp_path / f"probe_{tag}.py"
        out[tag] = tmp_path / f"products_{tag}.npy"
        probe.write_text(PROBE.format(repo=str(REPO), out=str(out[tag])))
        run_env = dict(env, PYQGIS_STARTUP=str(probe))
        if preload:
            run_env["LD_PRELOAD"] = preload
        run_qgis_process(["plugins"], run_env)  # a command that starts Python (and so PYQGIS_STARTUP) on every version
    default, openblas = np.load(out["default"]), np.load(out["openblas"])
    assert np.array_equal(openblas[0], openblas[1])  # the reference: numpy on OpenBLAS
    assert np.array_equal(default[1], openblas[0])  # the plugin's product under qgis_process as it starts


def test_prospectivity_in_qgis_process_equals_openblas_run(env, tmp_path):
    import rasterio

    model = build_standin_model(tmp_path / "standin.onnx", 500.0)  # 5-cell windows resized to 8 px
    stack = stack_tif(tmp_path / "stack.tif")
    maps = {}
    for tag, preload in (("default", None), ("openblas", OPENBLAS_FIRST)):
        maps[tag] = tmp_path / f"p_{tag}.tif"
        run_env = dict(env)
        if preload:
            run_env["LD_PRELOAD"] = preload
        run_qgis_process(["run", "janja:prospectivity", "--", f"STACK={stack}", f"MODEL={model}", "STRIDE=1",
                          "THREADS=1", f"PROBABILITY={maps[tag]}", f"CLASSES={tmp_path / f'c_{tag}.tif'}"], run_env)
    with rasterio.open(maps["default"]) as a, rasterio.open(maps["openblas"]) as b:
        pa, pb = a.read(1, masked=True), b.read(1, masked=True)
    assert pa.count() > 500 and np.array_equal(pa.mask, pb.mask)
    differ = pa.filled(0) != pb.filled(0)
    assert not differ.any(), f"{differ.mean():.1%} of the cells differ from the run with OpenBLAS first"
