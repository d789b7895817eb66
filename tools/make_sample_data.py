"""Make resources/sample_data/ from ../shared/data/gswa_geochemad (run once; the output is committed).

Keeps the raw values (with -9999 and negative detection-limit codes: they are the realistic test of
the parser) and all 1392 rows (duplicates too), for the columns the demo uses.
"""

import csv
from pathlib import Path

from osgeo import ogr, osr

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "gswa_geochemad"
TARGET = REPO / "resources" / "sample_data"
SAMPLE_TEXT = ["WAMEX_A_NO", "SAMPLEID", "COMPSAMPID"]
ELEMENTS = ["Au_ppm", "Ag_ppm", "Cu_ppm", "Pb_ppm", "Zn_ppm", "As_ppm"]
SITE_TEXT = ["SITE_CODE", "SHORT_NAME", "SITE_TYPE_", "SITE_COMMO"]


def write_csv(rows, columns, path):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows([r[c] for c in columns] for r in rows)


def add_layer(ds, name, rows, text_fields, real_fields, srs):
    layer = ds.CreateLayer(name, srs, ogr.wkbPoint)
    for f in text_fields:
        layer.CreateField(ogr.FieldDefn(f, ogr.OFTString))
    for f in real_fields:
        layer.CreateField(ogr.FieldDefn(f, ogr.OFTReal))
    for r in rows:
        feature = ogr.Feature(layer.GetLayerDefn())
        for f in text_fields:
            feature.SetField(f, r[f])
        for f in real_fields:
            feature.SetField(f, float(r[f]))
        point = ogr.Geometry(ogr.wkbPoint)
        point.AddPoint_2D(float(r["X"]), float(r["Y"]))
        feature.SetGeometry(point)
        layer.CreateFeature(feature)


def main():
    TARGET.mkdir(parents=True, exist_ok=True)
    with open(SOURCE / "area1_sediment_au.csv", newline="") as fh:
        samples = list(csv.DictReader(fh))
    with open(SOURCE / "area1_sediment_au_site.csv", newline="") as fh:
        sites = list(csv.DictReader(fh))
    write_csv(samples, ["X", "Y", *SAMPLE_TEXT, *ELEMENTS], TARGET / "wa_stream_sediments.csv")
    write_csv(sites, ["X", "Y", *SITE_TEXT], TARGET / "wa_au_sites.csv")
    gpkg = TARGET / "wa_sample_data.gpkg"
    gpkg.unlink(missing_ok=True)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4283)  # GDA94 geographic: GSWA's usual datum (PROVENANCE.md)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(gpkg))
    add_layer(ds, "samples", samples, SAMPLE_TEXT, ELEMENTS, srs)
    add_layer(ds, "au_sites", sites, SITE_TEXT, [], srs)
    ds = None
    print(f"wrote {len(samples)} samples and {len(sites)} sites into {TARGET}")


if __name__ == "__main__":
    main()
