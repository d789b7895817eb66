"""core.blas: the plugin's matrix products equal numpy's bit for bit, and stay on OpenBLAS when GSL's CBLAS
comes first in the process, as it does inside qgis_process and the QGIS desktop (bench/bench_qgis_blas.py);
elsewhere they are numpy's own.

The interposition is reproduced in plain Python with LD_PRELOAD=libgslcblas: exactly what qgis_process.bin's
link order does to numpy's cblas_* calls.
"""

import ctypes.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from janja_plugin.core import blas

REPO = Path(__file__).resolve().parents[2]
SHAPES = [(1000, 300, 200), (3, 700, 513), (2049, 15, 75), (500, 1, 9), (33, 17, 1), (1, 700, 513), (1, 50, 1)]


def numpy_is_the_reference():
    assert not blas.gsl_cblas_in_front(), "numpy's product is GSL's here (LD_PRELOAD?): it is no reference"


def layouts(a, b):
    """C order, Fortran order, strided views, vectors: what numpy passes to BLAS with flags or strides."""
    pad = np.zeros((a.shape[0] + 2, a.shape[1] + 3), a.dtype)
    pad[1:-1, 2:-1] = a
    yield a, b
    yield np.asfortranarray(a), b
    yield a, np.asfortranarray(b)
    yield pad[1:-1, 2:-1], b
    yield a[0], b
    yield a, b[:, 0]
    yield a[0], np.ascontiguousarray(b[:, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_fortran_matmul_equals_numpy_bit_for_bit(dtype, shape):
    numpy_is_the_reference()
    m, k, n = shape
    rng = np.random.default_rng(m * k + n)
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    for x, y in layouts(a, b):
        got, want = blas.fortran_matmul(x, y), np.matmul(x, y)
        assert np.shape(got) == np.shape(want) and np.asarray(got).dtype == want.dtype
        assert np.array_equal(got, want), (x.shape, y.shape, x.strides, y.strides)


def test_fortran_matmul_leaves_other_products_to_numpy():
    ints = np.arange(6).reshape(2, 3)
    got = blas.fortran_matmul(ints, ints.T)
    assert np.array_equal(got, ints @ ints.T) and got.dtype == ints.dtype
    mixed = blas.fortran_matmul(np.ones((2, 3), np.float32), np.ones((3, 2)))
    assert mixed.dtype == np.float64 and np.all(mixed == 3.0)
    assert blas.fortran_matmul(np.ones((0, 3)), np.ones((3, 4))).shape == (0, 4)
    with pytest.raises(ValueError):
        blas.fortran_matmul(np.ones((2, 3)), np.ones((4, 2)))


def test_fortran_matmul_each_equals_numpy_batched():
    numpy_is_the_reference()
    rng = np.random.default_rng(7)
    m = rng.standard_normal((75, 15)).astype(np.float32)
    x = rng.standard_normal((4, 3, 15, 75)).astype(np.float32)
    got = blas.fortran_matmul_each(m, x)
    assert got.shape == (4, 3, 75, 75) and np.array_equal(got, np.matmul(m, x))


def gslcblas():
    name = ctypes.util.find_library("gslcblas")
    assert name, "libgslcblas (GSL's CBLAS, which QGIS links) is not installed: apt-get install libgslcblas0"
    return name


PROBE = textwrap.dedent("""
    import json, sys
    import numpy as np
    sys.path.insert(0, {repo!r})
    from janja_plugin.core import blas
    from janja_plugin.core.inference import windows as wn
    a = np.random.default_rng(3).standard_normal((400, 300)).astype(np.float32)
    b = np.random.default_rng(4).standard_normal((300, 200)).astype(np.float32)
    win = np.random.default_rng(5).standard_normal((3, 40, 15, 15)).astype(np.float32)
    prep = wn._Preparer.__new__(wn._Preparer)  # only what _resize reads: the card's 15 -> 75 px windows
    prep.rh = prep.rw = wn.resize_matrix(15, 75)
    prep.identity_map = True
    rw = prep.rw
    numpy_resize = np.matmul(prep.rh, (np.ascontiguousarray(win.transpose(1, 0, 2, 3)).reshape(-1, 15) @ rw.T)
                             .reshape(40, 3, 15, 75))
    mapped = [l.split()[-1] for l in open("/proc/self/maps") if "gslcblas" in l]
    json.dump({{"numpy": (a @ b).tobytes().hex(), "janja": blas.matmul(a, b).tobytes().hex(),
               "numpy_resize": numpy_resize.tobytes().hex(), "janja_resize": prep._resize(win).tobytes().hex(),
               "gsl_mapped": bool(mapped), "in_front": blas.gsl_cblas_in_front()}}, sys.stdout)
""")


def run_probe(preload):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    proc = subprocess.run([sys.executable, "-c", PROBE.format(repo=str(REPO))], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_products_stay_on_openblas_when_gsl_cblas_comes_first():
    """Inside QGIS numpy's own product is GSL's (other roundings); the plugin's are OpenBLAS's, as in Python."""
    plain, gsl = run_probe(None), run_probe(gslcblas())
    assert gsl["gsl_mapped"] and not plain["gsl_mapped"]
    assert "gslcblas" in gsl["in_front"] and plain["in_front"] == ""  # Fortran route there, numpy's here
    # the premise, so this test can fail: with GSL first, numpy's float32 products round differently
    assert gsl["numpy"] != plain["numpy"] or gsl["numpy_resize"] != plain["numpy_resize"]
    assert gsl["janja"] == plain["numpy"]
    assert gsl["janja_resize"] == plain["numpy_resize"]  # janja:prospectivity's window resize


def test_loading_the_engines_does_not_import_scipy_linalg():
    """scipy.linalg is only needed where GSL took numpy's BLAS: plugin load stays light elsewhere."""
    import subprocess
    import sys

    code = ("import sys; import janja_plugin.core.inference.windows, janja_plugin.core.geostatistics.kriging, "
            "janja_plugin.core.inference.dense; print('scipy.linalg' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert out.stdout.strip() == "False"
