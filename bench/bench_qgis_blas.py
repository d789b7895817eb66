"""numpy's BLAS inside QGIS: which library its matrix products bind to, and what that costs janja's runs.

QGIS 3.22's executables (qgis_process.bin, qgis.bin) link libgsl, whose reference CBLAS (libgslcblas) then
sits in the process's global symbol scope ahead of OpenBLAS. numpy's products call cblas_sgemm/cblas_dgemm,
so inside qgis_process and the desktop they bind to GSL's slow reference loops; a Python process that imports
qgis (the in-process tests, this bench's "python" rows) loads GSL locally and keeps OpenBLAS. Fortran BLAS
(dgemm_, LAPACK, scipy.linalg.blas) is not affected: GSL defines only cblas_* symbols.

Each measurement runs three ways, all with the same thread budget (OMP/OPENBLAS_NUM_THREADS = --threads):
  python          the plugin's algorithm through processing.run in a plain Python process (no GSL ahead)
  qgis_process    `qgis_process.bin run janja:...` as users and `make demo` run it
  qgis_process+ob the same with LD_PRELOAD=OpenBLAS's libblas.so.3 (the control: OpenBLAS first)
and prints qgis_process / python and qgis_process / qgis_process+ob (qgis_process times are net of its start-up,
timed as `qgis_process.bin help ALG`, a few seconds). Rows:
  (a) a 1000 x 1000 float64 product, and one batch of the bundled model's window resize (256 windows x 3
      elements, 15 -> 75 px, the two products of janja:prospectivity's windows): numpy's products against the
      plugin's (core.blas, windows._Preparer._resize), timed at QGIS start-up through PYQGIS_STARTUP, with the
      library that numpy's cblas_dgemm resolves to;
  (b) janja:krige on the bundled survey (Au, Ag, Cu; 32 nearest neighbours, --cell-size);
  (c) janja:prospectivity with the bundled wa_au_inception model on a block of that stack (stride --stride);
and whether each qgis_process output equals the python one (max |difference|).

    .venv/bin/python bench/bench_qgis_blas.py [--threads 2] [--cell-size 500] [--stride 2] [--rounds 1]
    .venv/bin/python bench/bench_qgis_blas.py --probes-only     # row (a) alone, in seconds
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO))

from qgis_headless import PLUGIN_NAME, make_plugin_folder, qgis_environment, run_qgis_process  # noqa: E402

OPENBLAS = "/usr/lib/x86_64-linux-gnu/libblas.so.3"  # Debian's alternative: OpenBLAS when installed
SAMPLES = f"{REPO / 'resources' / 'sample_data' / 'wa_sample_data.gpkg'}|layername=samples"
MODEL = REPO / "models" / "wa_au_inception.onnx"
FIELDS = ["Au_ppm", "Ag_ppm", "Cu_ppm"]
BLOCK = "575000,600000,6275000,6300000 [EPSG:32750]"  # around the Au sites: a small prospectivity block

PROBE = r'''
import ctypes, ctypes.util, json, os, sys, time
import numpy as np
sys.path.insert(0, {repo!r})
from janja_plugin.core import blas
from janja_plugin.core.inference import windows as wn


def _where(symbol):
    """The shared object that defines `symbol` for numpy: the global scope's, else numpy's own libblas."""
    class Info(ctypes.Structure):
        _fields_ = [("fname", ctypes.c_char_p), ("fbase", ctypes.c_void_p),
                    ("sname", ctypes.c_char_p), ("saddr", ctypes.c_void_p)]
    libdl = ctypes.CDLL(None)
    addr = ctypes.cast(getattr(libdl, symbol), ctypes.c_void_p).value if hasattr(libdl, symbol) else None
    if addr is None:
        return "numpy's own libblas.so.3 (not in the global scope)"
    info = Info()
    libdl.dladdr(ctypes.c_void_p(addr), ctypes.byref(info))
    return os.path.realpath(info.fname.decode())


a = np.random.default_rng(0).random((1000, 1000))
a @ a
blas.matmul(a, a)
t = time.perf_counter(); a @ a; numpy_s = time.perf_counter() - t
t = time.perf_counter(); blas.matmul(a, a); janja_s = time.perf_counter() - t
prep = wn._Preparer.__new__(wn._Preparer)  # one batch of the bundled model's windows: 256 x 3 x 15 -> 75 px
prep.rh = prep.rw = wn.resize_matrix(15, 75)
prep.identity_map = True
win = np.random.default_rng(1).standard_normal((3, 256, 15, 15)).astype(np.float32)


def numpy_resize(win):
    win = np.ascontiguousarray(win.transpose(1, 0, 2, 3))
    return np.matmul(prep.rh, (win.reshape(-1, 15) @ prep.rw.T).reshape(256, 3, 15, 75))


def best(f, n=5):
    f(win)
    times = []
    for _ in range(n):
        t = time.perf_counter(); f(win); times.append(time.perf_counter() - t)
    return min(times)


resize_numpy_s, resize_janja_s = best(numpy_resize), best(prep._resize)
# the shared-trunk features of one DEFAULT_TILE (64 x 256 cells + window halo, 3 elements, x5): dense.features
tile = np.random.default_rng(2).standard_normal((3, 80, 272)).astype(np.float32)
rr, rc = wn.resize_matrix(80, 400)[5:-5], wn.resize_matrix(272, 1360)[5:-5]
dense_numpy_s = best(lambda _: np.matmul(rr, (tile.reshape(-1, 272) @ rc.T).reshape(3, 80, -1)), 3)
dense_janja_s = best(lambda _: blas.matmul_each(rr, blas.matmul(tile.reshape(-1, 272), rc.T).reshape(3, 80, -1)),
                     3)
maps = sorted({{l.split()[-1] for l in open("/proc/self/maps") if "blas" in l}})
with open({out!r}, "w") as f:
    json.dump({{"numpy_s": numpy_s, "janja_s": janja_s, "resize_numpy_s": resize_numpy_s,
               "resize_janja_s": resize_janja_s, "dense_numpy_s": dense_numpy_s, "dense_janja_s": dense_janja_s,
               "cblas_dgemm": _where("cblas_dgemm"), "maps": maps}}, f)
'''

INPROCESS = r'''
import json, sys, time
sys.path.insert(0, "/usr/share/qgis/python/plugins")
from qgis.core import QgsApplication, QgsProject
app = QgsApplication([], False); app.initQgis()
from processing.core.Processing import Processing
Processing.initialize()
sys.path.insert(0, {plugins!r})
import janja
plugin = janja.classFactory(None); plugin.initProcessing()
import processing
exec(open({probe!r}).read())
t = time.perf_counter()
processing.run({alg!r}, json.loads({params!r}))
print("SECONDS", time.perf_counter() - t)
QgsProject.instance().clear(); plugin.unload(); app.exitQgis()
'''


def thread_env(env, threads):
    env = dict(env)
    env.update(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    return env


def params_for(alg, out, stack, threads, cell_size, stride):
    if alg == "janja:krige":
        return {"INPUT": SAMPLES, "FIELDS": FIELDS, "CELL_SIZE": cell_size, "NEIGHBOURS": 32,
                "OUTPUT": str(out / "stack.tif"), "VARIANCE": str(out / "var.tif")}
    return {"STACK": str(stack), "MODEL": str(MODEL), "STRIDE": stride, "THREADS": threads,
            "PROBABILITY": str(out / "p.tif"), "CLASSES": str(out / "c.tif")}


def cli_args(params):
    args = []
    for k, v in params.items():
        for item in v if isinstance(v, list) else [v]:
            args.append(f"{k}={item}")
    return args


def run_python(alg, params, tmp, threads):
    """The algorithm through processing.run in a plain Python process; (seconds, probe)."""
    probe_out = tmp / "probe_python.json"
    probe = tmp / "probe_python.py"
    probe.write_text(PROBE.format(repo=str(REPO), out=str(probe_out)))
    script = tmp / "inprocess.py"
    script.write_text(INPROCESS.format(plugins=str(make_plugin_folder(tmp / "plugins_py")), probe=str(probe),
                                       alg=alg, params=json.dumps(params)))
    env = thread_env(os.environ, threads)
    env["QT_QPA_PLATFORM"] = "offscreen"
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=3600)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("SECONDS")]
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"{alg} in Python failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    return float(line[0].split()[1]), json.loads(probe_out.read_text())


def run_qgis(alg, params, tmp, threads, preload):
    """The algorithm through qgis_process.bin; (seconds of the run command less its start-up, probe).

    Start-up (QGIS, providers, plugins) is timed as `qgis_process.bin help ALG` in the same environment.
    """
    tag = "ob" if preload else "qp"
    probe_out = tmp / f"probe_{tag}.json"
    probe = tmp / f"probe_{tag}.py"
    probe.write_text(PROBE.format(repo=str(REPO), out=str(probe_out)))
    env = thread_env(qgis_environment(tmp / f"qgis_{tag}"), threads)
    run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
    env["PYQGIS_STARTUP"] = str(probe)
    if preload:
        env["LD_PRELOAD"] = OPENBLAS
    t = time.perf_counter()
    run_qgis_process(["help", alg], env)
    startup = time.perf_counter() - t
    t = time.perf_counter()
    run_qgis_process(["run", alg, "--json", "--", *cli_args(params)], env, timeout=3600)
    return time.perf_counter() - t - startup, dict(json.loads(probe_out.read_text()), startup_s=startup)


def max_diff(a, b):
    import numpy as np
    import rasterio

    with rasterio.open(a) as sa, rasterio.open(b) as sb:
        x, y = sa.read(masked=True).astype(float), sb.read(masked=True).astype(float)
    if (x.mask != y.mask).any():
        return float("inf")
    return float(np.max(np.abs(x - y))) if x.count() else 0.0


def probe_only(tmp, threads):
    """The start-up probes alone (seconds): plain Python, qgis_process.bin help, the same with OpenBLAS first."""
    probes = {}
    for how in ("python", "qgis_process", "qgis_process+ob"):
        out = tmp / f"probe_{how}.json"
        script = tmp / f"probe_{how}.py"
        script.write_text(PROBE.format(repo=str(REPO), out=str(out)))
        env = thread_env(qgis_environment(tmp / f"qgis_{how}"), threads)
        if how == "python":
            subprocess.run([sys.executable, str(script)], env=env, check=True, timeout=600)
        else:
            run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
            env["PYQGIS_STARTUP"] = str(script)
            if how.endswith("+ob"):
                env["LD_PRELOAD"] = OPENBLAS
            t = time.perf_counter()
            run_qgis_process(["help", "janja:krige"], env)
            probes_startup = time.perf_counter() - t
        probes[how] = json.loads(out.read_text())
        if how != "python":
            probes[how]["startup_s"] = probes_startup
    return probes


def print_probes(probes):
    p, q, o = probes["python"], probes["qgis_process"], probes["qgis_process+ob"]
    rows = [("1000^2 a @ a (numpy)", "numpy_s", "1000 x 1000 float64"), ("1000^2 blas.matmul", "janja_s", ""),
            ("resize, numpy @", "resize_numpy_s", "one batch: 256 windows x 3 elements, 15 -> 75 px"),
            ("resize, janja", "resize_janja_s", "windows._Preparer._resize"),
            ("dense tile, numpy @", "dense_numpy_s", "shared-trunk features of a 64 x 256-cell tile, x5"),
            ("dense tile, janja", "dense_janja_s", "core.blas as dense.features calls it")]
    for label, key, note in rows:
        print(f"{label:20s} python {p[key] * 1e3:8.1f} ms | qgis_process {q[key] * 1e3:8.1f} ms "
              f"(x{q[key] / p[key]:.1f}) | qgis_process+ob {o[key] * 1e3:8.1f} ms   {note}")
    for how, pr in probes.items():
        print(f"numpy's cblas_dgemm in {how}: {pr['cblas_dgemm']}")
    print(f"qgis_process start-up: {q['startup_s']:.1f} s, +ob {o['startup_s']:.1f} s")
    print(f"BLAS libraries mapped in qgis_process: {', '.join(q['maps'])}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cell-size", type=float, default=500.0, help="janja:krige cell size (m)")
    parser.add_argument("--stride", type=int, default=2, help="janja:prospectivity stride")
    parser.add_argument("--rounds", type=int, default=1, help="repeats (the minimum is printed)")
    parser.add_argument("--probes-only", action="store_true", help="only the products, at start-up (seconds)")
    args = parser.parse_args()
    if args.probes_only:
        with tempfile.TemporaryDirectory() as tmpdir:
            print_probes(probe_only(Path(tmpdir), args.threads))
        return
    print(f"threads {args.threads} (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, prospectivity THREADS); "
          f"krige: 32 neighbours, {args.cell_size:g} m cells; prospectivity: stride {args.stride}, {MODEL.name}")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        # the prospectivity block: the python run's krige stack, cut to BLOCK, at the model's 250 m cells
        stack = tmp / "block_stack.tif"
        block_params = params_for("janja:krige", tmp, None, args.threads, 250.0, args.stride)
        block_params.update(EXTENT=BLOCK, OUTPUT=str(stack), VARIANCE=str(tmp / "block_var.tif"))
        (tmp / "setup").mkdir()
        run_python("janja:krige", block_params, tmp / "setup", args.threads)
        probes = {}
        for alg, cell in (("janja:krige", args.cell_size), ("janja:prospectivity", None)):
            times = {"python": [], "qgis_process": [], "qgis_process+ob": []}
            outs = {}
            for r in range(args.rounds):
                for how in times:
                    out = tmp / f"{alg.split(':')[1]}_{how}_{r}"
                    out.mkdir()
                    params = params_for(alg, out, stack, args.threads, cell, args.stride)
                    if how == "python":
                        s, probe = run_python(alg, params, out, args.threads)
                    else:
                        s, probe = run_qgis(alg, params, out, args.threads, preload=how.endswith("+ob"))
                    times[how].append(s)
                    probes[how] = probe
                    outs[how] = out / ("stack.tif" if alg == "janja:krige" else "p.tif")
            best = {k: min(v) for k, v in times.items()}
            diffs = {k: max_diff(outs["python"], outs[k]) for k in ("qgis_process", "qgis_process+ob")}
            print(f"{alg:20s} python {best['python']:7.2f} s | qgis_process {best['qgis_process']:7.2f} s "
                  f"(x{best['qgis_process'] / best['python']:.2f} python, "
                  f"x{best['qgis_process'] / best['qgis_process+ob']:.2f} +ob) | qgis_process+ob "
                  f"{best['qgis_process+ob']:7.2f} s | max |out - python|: qgis_process {diffs['qgis_process']:.3g}, "
                  f"+ob {diffs['qgis_process+ob']:.3g}", flush=True)
        print("qgis_process times above are net of its start-up (below)")
        print_probes(probes)

if __name__ == "__main__":
    main()
