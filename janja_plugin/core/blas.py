"""Matrix products that stay on numpy's optimised BLAS inside QGIS, where numpy's own do not.

QGIS 3.22's executables (qgis_process, the desktop) link GSL, whose reference CBLAS (libgslcblas) then comes
first in the process's symbol scope: numpy's products call cblas_sgemm/cblas_dgemm and bind to GSL's plain
loops, 10-20x slower than OpenBLAS and rounded differently (bench/bench_qgis_blas.py, README "Speed inside
QGIS"). GSL defines only the cblas_* names, so the Fortran BLAS that scipy.linalg.blas calls (sgemm_, dgemm_,
dgemv_) still binds to the library numpy was built with. fortran_matmul makes the very kernel calls numpy
makes there (row-major C = A B as the column-major C^T = B^T A^T), so its results equal numpy's in a plain
Python process bit for bit. matmul uses it only when GSL has taken numpy's symbols: elsewhere (plain Python,
the in-process tests, Dask workers, other platforms) numpy's product is as fast and is used as is.
"""

import ctypes
import os
from functools import lru_cache

import numpy as np

_NAMES = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}


def _kernel(name, a, b):
    """scipy's Fortran BLAS routine `name` (gemm, gemv, dot) for a and b's dtype; None when it has none."""
    if a.dtype != b.dtype or a.dtype not in _NAMES:
        return None
    try:  # imported here: scipy.linalg costs ~0.1 s, and only a process where GSL took numpy's BLAS needs it
        from scipy.linalg import blas as fblas
    except ImportError:  # pragma: no cover - scipy is a dependency wherever QGIS ships numpy
        return None
    return getattr(fblas, _NAMES[a.dtype] + name)


def _transposed(x):
    """x^T for Fortran BLAS without a copy where possible: (array, trans flag), op(array) = x^T."""
    if x.flags.c_contiguous:
        return x.T, 0
    if x.flags.f_contiguous:
        return x, 1
    return np.ascontiguousarray(x).T, 0


class _DlInfo(ctypes.Structure):
    _fields_ = [("fname", ctypes.c_char_p), ("fbase", ctypes.c_void_p), ("sname", ctypes.c_char_p),
                ("saddr", ctypes.c_void_p)]


@lru_cache(maxsize=1)
def gsl_cblas_in_front():
    """The path of GSL's CBLAS when it defines numpy's cblas_* calls in this process, else ''."""
    try:
        process = ctypes.CDLL(None)  # the global scope: the executable, its libraries, LD_PRELOAD
        if not hasattr(process, "cblas_sgemm"):
            return ""  # numpy's cblas_* then bind inside its own BLAS
        info = _DlInfo()
        if not process.dladdr(ctypes.cast(process.cblas_sgemm, ctypes.c_void_p), ctypes.byref(info)):
            return ""
        path = os.path.realpath(info.fname.decode())
    except Exception:  # no dlopen/dladdr (Windows, macOS): no interposition there either
        return ""
    return path if "gslcblas" in os.path.basename(path) else ""


def matmul(a, b):
    """np.matmul(a, b), on the Fortran BLAS when GSL's CBLAS would take numpy's (QGIS 3.22's executables)."""
    return fortran_matmul(a, b) if gsl_cblas_in_front() else np.matmul(a, b)


def matmul_each(m, x):
    """np.matmul(m, x) for a matrix m and a stack x (..., p, q), as matmul chooses: one GEMM per matrix."""
    return fortran_matmul_each(m, x) if gsl_cblas_in_front() else np.matmul(m, x)


def fortran_matmul(a, b):
    """a @ b for float32/float64 matrices and vectors (not batched): as np.matmul, on the Fortran BLAS.

    As numpy does, a product with one row or one column is a matrix-vector product, 1 x 1 a dot product.
    Anything else (batched stacks, integers, mixed dtypes, empty operands) is np.matmul's.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim not in (1, 2) or b.ndim not in (1, 2) or a.shape[-1] != b.shape[0] or 0 in a.shape + b.shape:
        return np.matmul(a, b)
    if a.ndim == 1 or b.ndim == 1:
        out = fortran_matmul(a.reshape(1, -1) if a.ndim == 1 else a, b.reshape(-1, 1) if b.ndim == 1 else b)
        return out.reshape(a.shape[:-1] + b.shape[1:])[()]
    (m, _), n = a.shape, b.shape[1]
    gemm, gemv, dot = (_kernel(name, a, b) for name in ("gemm", "gemv", "dot"))
    if gemm is None:
        return np.matmul(a, b)
    if m == 1 and n == 1:  # numpy strides a non-contiguous vector (another summation order): it does that
        x, y = a[0], b[:, 0]
        if not (x.flags.contiguous and y.flags.contiguous):
            return np.matmul(a, b)
        return np.full((1, 1), dot(x, y), dtype=a.dtype)
    if n == 1:  # (m, k) x (k,): y = a x, with a^T in column-major order transposed back
        at, ta = _transposed(a)
        return gemv(1.0, at, b[:, 0], trans=1 - ta)[:, None]
    if m == 1:  # (k,) x (k, n): y = b^T x
        bt, tb = _transposed(b)
        return gemv(1.0, bt, a[0], trans=tb)[None, :]
    bt, tb = _transposed(b)
    at, ta = _transposed(a)
    return gemm(1.0, bt, at, trans_a=tb, trans_b=ta).T


def fortran_matmul_each(m, x):
    """m @ x[k] for every matrix of the stack x (..., p, q), m (r, p): np.matmul(m, x), one GEMM each."""
    m, x = np.asarray(m), np.asarray(x)
    gemm = _kernel("gemm", m, x)
    if gemm is None or x.ndim < 2 or m.ndim != 2 or m.shape[1] != x.shape[-2] or 0 in m.shape + x.shape:
        return np.matmul(m, x)
    stack = x.reshape(-1, *x.shape[-2:])
    out = np.empty((stack.shape[0], m.shape[0], x.shape[-1]), dtype=x.dtype)
    for k in range(stack.shape[0]):
        out[k] = fortran_matmul(m, stack[k])
    return out.reshape(*x.shape[:-2], m.shape[0], x.shape[-1])
