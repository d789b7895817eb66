"""The reduced form of `make bench` inside `make test`: each benchmark runs end to end and prints its
comparison against the alternatives (no timing is asserted: speed figures live in bench/, not tests)."""

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(script, *args, timeout=600):
    p = subprocess.run([sys.executable, str(REPO / "bench" / script), *args], capture_output=True, text=True,
                       timeout=timeout, cwd=REPO)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def test_quick_kriging_bench_prints_ratios_against_pykrige_and_the_variogram_step():
    args = ["--quick"] + ([] if shutil.which("Rscript") else ["--skip-gstat"])
    out = run("bench_kriging.py", *args)
    row = next(line for line in out.splitlines() if line.startswith("(q) 2,000 -> 200x200"))
    cells = [c.split() for c in row.split("|")]
    assert float(cells[0][-4]) > 0 and float(cells[0][-1]) < 1e-8  # our time; agreement with plain LU
    if importlib.util.find_spec("pykrige"):  # a dev requirement: the host venv has it, the QGIS chroots do not
        assert float(cells[1][2]) > 0 and float(cells[1][3]) < 1e-6  # PyKrige ratio and its difference to ours
        assert "threads used by pykrige: numpy's BLAS: openblas 1" in out
    else:
        assert cells[1][0] == "n/a" and "PyKrige not installed" in out, out  # the header says why
    vario = [line for line in out.splitlines() if re.match(r"\s+5,000 ours", line)]
    assert len(vario) == 2, out  # sampled pairs against the exact all-pairs table
    assert re.search(r"\(\d+\.\d SE\)", vario[0])


def test_quick_tiled_bench_prints_whole_grid_and_tiled_rows():
    out = run("bench_tiled.py", "--sizes", "500x100", "--threads", "1")
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("500 ")]
    assert [r[2] for r in rows] == ["whole", "tiled"], out
    assert all(float(r[3]) > 0 and float(r[4]) > 0 for r in rows)  # time and peak memory of each
