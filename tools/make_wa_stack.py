"""Krige the bundled Western Australia survey (Au, Ag, Cu, Pb, Zn) into an element stack at a given cell size.

The stack that training (make train), the anomaly model and the prospectivity benchmark start from;
the same janja:krige call as `make demo`, through qgis_process, only the cell size differs.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from qgis_headless import PLUGIN_NAME, REPO, qgis_environment, run_qgis_process

GPKG = REPO / "resources" / "sample_data" / "wa_sample_data.gpkg"
ELEMENTS = ["Au_ppm", "Ag_ppm", "Cu_ppm", "Pb_ppm", "Zn_ppm"]


def make_stack(cell_size, out_dir):
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"wa_stack_{cell_size:g}m"
    stack = stem.with_suffix(".tif")
    if stack.exists():
        return stack
    with tempfile.TemporaryDirectory() as tmp:
        env = qgis_environment(Path(tmp))
        run_qgis_process(["plugins", "enable", PLUGIN_NAME], env)
        run_qgis_process(["run", "janja:krige", "--json", "--", f"INPUT={GPKG}|layername=samples",
                          *[f"FIELDS={f}" for f in ELEMENTS], "TRANSFORM=0", f"CELL_SIZE={cell_size}",
                          "NEIGHBOURS=0", f"OUTPUT={stack}", f"VARIANCE={stem}_variance.tif",
                          f"REPORT={stem}_report.html"], env)
    return stack


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cell-size", type=float, default=250.0)
    parser.add_argument("--out", default=str(REPO / "out" / "wa"))
    args = parser.parse_args()
    print(make_stack(args.cell_size, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
