"""The South Tianshan gridded survey (../shared/data/south_tianshan_gkdcn) as a janja element stack + deposits.

Its 39 element grids (1 km cells, EPSG:32645) become one GeoTIFF with the study's five elements named
like janja:krige's bands (Au_ppb, Ag_ppb, Cu_ppm, Pb_ppm, Zn_ppm; units are the usual RGNR convention,
see PROVENANCE.md), and its 10 Au deposit cells (label_cells_array_index.csv, aligned by array index as
the provenance notes require) become a point layer (GeoJSON) in the stack's CRS.
"""

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import rasterio

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "south_tianshan_gkdcn"
ELEMENTS = [("Au", "Au_ppb"), ("Ag", "Ag_ppb"), ("Cu", "Cu_ppm"), ("Pb", "Pb_ppm"), ("Zn", "Zn_ppm")]


def make_stack(out_dir, source=SOURCE):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stack_path = out_dir / "tianshan_stack_1000m.tif"
    bands = []
    for element, _ in ELEMENTS:
        with rasterio.open(source / "Geochemical_data" / f"{element}.tif") as src:
            profile, transform = src.profile, src.transform
            data = src.read(1).astype(np.float32)
            if src.nodata is not None:
                data[data == np.float32(src.nodata)] = np.nan
            bands.append(data)
    data = np.stack(bands)
    data[~np.isfinite(data)] = -9999.0
    profile.update(count=len(ELEMENTS), dtype="float32", nodata=-9999.0, compress="deflate")
    with rasterio.open(stack_path, "w", **profile) as dst:
        dst.write(data)
        for i, (_, name) in enumerate(ELEMENTS):
            dst.set_band_description(i + 1, name)
    features = []
    with open(source / "label_cells_array_index.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["kind"] != "Au_deposit":
                continue
            r, c = int(row["row"]), int(row["col"])  # array index in the geochem grid: its cell centre
            x, y = transform * (c + 0.5, r + 0.5)
            features.append({"type": "Feature", "properties": {"row": r, "col": c},
                             "geometry": {"type": "Point", "coordinates": [x, y]}})
    deposits = out_dir / "tianshan_au_deposits.geojson"
    deposits.write_text(json.dumps({"type": "FeatureCollection", "features": features,
                                    "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32645"}}}))
    return stack_path, deposits


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(REPO / "out" / "tianshan"))
    args = parser.parse_args()
    print(*make_stack(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
