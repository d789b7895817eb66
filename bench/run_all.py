"""`make bench`: every benchmark in bench/, each printing its ratios against the alternatives, sized to finish
in under 30 minutes on a 2-core machine (each script's own flags run larger or smaller cases).

- bench_kriging.py: ours against PyKrige and gstat at 155 (Meuse), 2,000, 50,000 and 1,000,000 samples
  (kriging time and peak memory, and the variogram step's time, memory and error against the exact table);
- bench_tiled.py: the whole job (variogram, kriging, leave-one-out, GeoTIFF) whole-grid against streamed
  tiles, time and peak memory, up to 10^6 samples x 2.25 x 10^6 cells;
- bench_prospectivity.py: inference with the bundled model (models/wa_au_inception.onnx) against bare
  onnxruntime, stride errors, and the whole WA 250 m survey's time and peak memory;
- bench_evaluation_size.py: janja:evaluate's output sizes;
- bench_qgis_blas.py: janja:krige and janja:prospectivity through qgis_process against plain Python, and which
  BLAS numpy's products bind to inside QGIS (README: Speed inside QGIS).
Every contender inside a script runs on the same thread budget (--threads, default 1 for kriging).

    python bench/run_all.py [--threads 1] [--only kriging,tiled,prospectivity,evaluation_size,qgis_blas]
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def plan(threads):
    """(script, arguments) in the order they run."""
    t = ["--threads", str(threads)]
    return [
        ("bench_kriging.py", t),
        ("bench_tiled.py", t + ["--sizes", "2000x1000,50000x2000,1000000x1500", "--whole-max", "4000000"]),
        ("bench_prospectivity.py", t + ["--rounds", "4"]),
        ("bench_evaluation_size.py", []),
        ("bench_qgis_blas.py", t + ["--stride", "4"]),
    ]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="thread budget of every contender")
    ap.add_argument("--only", default=None, help="comma-separated script names without bench_ and .py")
    args = ap.parse_args(argv)
    only = None if args.only is None else {f"bench_{name.strip()}.py" for name in args.only.split(",")}
    status, times, start = 0, [], time.perf_counter()
    for script, script_args in plan(args.threads):
        if only is not None and script not in only:
            continue
        print(f"\n=== {script} {' '.join(script_args)} ===", flush=True)
        t = time.perf_counter()
        rc = subprocess.run([sys.executable, str(HERE / script), *script_args]).returncode
        times.append((script, time.perf_counter() - t, rc))
        status |= rc
    print("\n=== make bench: wall time per script ===")
    for script, seconds, rc in times:
        print(f"{script:28s} {seconds / 60:6.1f} min{'' if rc == 0 else f'  FAILED (exit {rc})'}")
    print(f"{'total':28s} {(time.perf_counter() - start) / 60:6.1f} min (goal: under 30 min on 2 cores)")
    return status


if __name__ == "__main__":
    sys.exit(main())
