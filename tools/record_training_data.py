"""Record a model's training data on its card (card field `training_data`) and re-embed the card in the .onnx.

For models exported before the card carried it (the bundled models/wa_au_inception and wa_anomaly): the
input percentiles of the stack the model was trained on (card-transformed, e.g. log10 ppm), the cell size,
the sample spacing (median distance between distinct sample locations) and the training sites, so that
janja:prospectivity can refuse a survey unlike the training one and janja:evaluate can label in-sample
deposits. Current training writes the field itself.

    .venv/bin/python tools/record_training_data.py --model models/wa_au_inception.onnx \
        --stack out/wa/wa_stack_250m.tif --samples resources/sample_data/wa_sample_data.gpkg --sites-layer au_sites
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from janja_plugin.core.inference import distribution as dist  # noqa: E402
from janja_plugin.core.inference import model_card as mc  # noqa: E402
from janja_plugin.core.inference.windows import RasterStack  # noqa: E402


def layer_xy(gpkg, layer, crs_wkt):
    """Point coordinates of a GeoPackage layer in the stack's CRS."""
    from osgeo import ogr, osr

    ds = ogr.Open(str(gpkg))
    lyr = ds.GetLayerByName(layer)
    target = osr.SpatialReference()
    target.ImportFromWkt(crs_wkt)
    source = lyr.GetSpatialRef()
    for srs in (source, target):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    transform = osr.CoordinateTransformation(source, target)
    out = []
    for feature in lyr:
        g = feature.GetGeometryRef()
        x, y, _ = transform.TransformPoint(g.GetX(), g.GetY())
        out.append((x, y))
    return np.array(out)


def sample_spacing_m(xy):
    from scipy.spatial import cKDTree

    xy = np.unique(xy, axis=0)
    d, _ = cKDTree(xy).query(xy, k=2)
    return float(np.median(d[:, 1]))


def training_data(card, stack_path, samples_gpkg=None, samples_layer="samples", sites_layer=None):
    with RasterStack(stack_path) as stack:
        bands = mc.match_stack(card, stack.names)
        columns = dist.read_columns(stack, bands)
        crs_wkt, cell = stack.crs_wkt, stack.cell_size
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromWkt(crs_wkt)
    code = srs.GetAuthorityCode(None)
    crs = f"EPSG:{code}" if code else crs_wkt
    spacing = sample_spacing_m(layer_xy(samples_gpkg, samples_layer, crs_wkt)) if samples_gpkg else None
    sites = layer_xy(samples_gpkg, sites_layer, crs_wkt).round(1).tolist() if sites_layer else []
    return {"input_quantiles": dist.input_quantiles(columns, card.elements), "cell_size": float(cell),
            "sample_spacing": None if spacing is None else round(spacing, 1), "sites": {"crs": crs, "xy": sites}}


def rewrite(model_path, data):
    import onnx

    model_path = Path(model_path)
    card_path = mc.card_path_for(model_path)
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["training_data"] = data
    mc.card_from_dict(card, card_path.name)  # validate before writing anything
    model = onnx.load(str(model_path))
    mc.embed_card(model, card)
    tmp = model_path.with_suffix(".onnx.part")
    onnx.save(model, str(tmp))
    tmp.replace(model_path)
    card_path.write_text(json.dumps(card, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return card


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--stack", required=True, help="the element stack the model was trained on")
    parser.add_argument("--samples", help="GeoPackage with the survey's samples (and sites)")
    parser.add_argument("--samples-layer", default="samples")
    parser.add_argument("--sites-layer", help="layer of the training sites (omit for unsupervised models)")
    args = parser.parse_args()
    card = mc.load_model(args.model, threads=1).card
    data = training_data(card, args.stack, args.samples, args.samples_layer, args.sites_layer)
    rewrite(args.model, data)
    mc.load_model(args.model, threads=1)  # the JSON beside and the card inside agree
    q = data["input_quantiles"]
    print(f"{args.model}: spacing {data['sample_spacing']} m, {len(data['sites']['xy'])} sites, percentiles "
          + "; ".join(f"{k} {v[1]:.3g}..{v[-2]:.3g}" for k, v in q["values"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
