"""make train-smoke: the whole training pipeline on a tiny synthetic stack with planted deposits.

Random-initialised trunk, small input, one repeat, a short GAN; then the exported model is run over
the whole stack by the plugin's own inference engine (core.inference.windows.predict, as janja:prospectivity
does) and must rank the planted deposit cells above the background.
"""

import json
from pathlib import Path

import numpy as np

ELEMENTS = ["Au_ppb", "Ag_ppm", "Cu_ppm"]


def synthetic_survey(out_dir, size=64, cell=100.0, n_deposits=12, seed=7):
    """A smooth lognormal background with Au/Ag/Cu halos around planted deposits; GeoTIFF + deposits CSV."""
    import rasterio
    from rasterio.transform import from_origin
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = rng.integers(6, size - 6, n_deposits)
    cols = rng.integers(6, size - 6, n_deposits)
    rr, cc = np.mgrid[0:size, 0:size]
    halo = np.zeros((size, size))
    for r, c in zip(rows, cols):
        halo += np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * 2.0 ** 2))
    bands = []
    for base, gain in [(5.0, 1.6), (0.1, 1.0), (30.0, 1.2)]:
        noise = gaussian_filter(rng.normal(size=(size, size)), 3) * 6
        bands.append(base * np.exp(0.5 * noise + gain * np.minimum(halo, 1.5)))
    data = np.stack(bands).astype(np.float32)
    x0, y0 = 500000.0, 7000000.0
    stack = out_dir / "synthetic_stack.tif"
    with rasterio.open(stack, "w", driver="GTiff", width=size, height=size, count=3, dtype="float32",
                       crs="EPSG:32750", transform=from_origin(x0, y0, cell, cell), nodata=-9999.0) as dst:
        dst.write(data)
        for i, name in enumerate(ELEMENTS):
            dst.set_band_description(i + 1, name)
    dep = out_dir / "planted_deposits.csv"
    xs, ys = x0 + (cols + 0.5) * cell, y0 - (rows + 0.5) * cell
    dep.write_text("id,x,y\n" + "".join(f"{i},{x},{y}\n" for i, (x, y) in enumerate(zip(xs, ys))))
    vrt = out_dir / "planted_deposits.vrt"
    vrt.write_text(f"""<OGRVRTDataSource><OGRVRTLayer name="planted_deposits">
<SrcDataSource>{dep}</SrcDataSource><GeometryType>wkbPoint</GeometryType><LayerSRS>EPSG:32750</LayerSRS>
<GeometryField encoding="PointFromColumns" x="x" y="y"/></OGRVRTLayer></OGRVRTDataSource>""")
    return stack, vrt, rows, cols


def smoke_config(stack_path, deposits, **overrides):
    """The smoke run's config (random-initialised trunk, one repeat, a short GAN)."""
    from .config import Config

    settings = dict(stack=str(stack_path), deposits=str(deposits), name="smoke_model", units="synthetic",
                    subsets=[ELEMENTS], window_pixels=9, input_size=75, positive_within=150.0, negative_beyond=600.0,
                    max_negatives=400, block_size=1600.0, folds=3, repeats=1, head_epochs=15, gan_steps=150,
                    max_synthetic=200, variants_pretrained=[False], variants_gan=[True],
                    random_split_comparison=False, fp16=False, seed=0)
    settings.update(overrides)
    return Config(**settings)


def run_smoke(out_dir):
    from ..core.evaluation.evaluate import auc_mann_whitney
    from ..core.inference import model_card
    from ..core.inference.windows import RasterStack, predict
    from .pipeline import run

    out_dir = Path(out_dir)
    stack_path, deposits, rows, cols = synthetic_survey(out_dir / "data")
    cfg = smoke_config(stack_path, deposits)
    summary = run(cfg, out_dir)
    model = model_card.load_model(summary["export"]["onnx"])
    with RasterStack(str(stack_path)) as stack:
        bands = model_card.match_stack(model.card, stack.names)
        prob, valid, stats = predict(model, stack, bands)
    rr, cc = np.mgrid[0:prob.shape[0], 0:prob.shape[1]]
    d = np.min([np.hypot(rr - r, cc - c) for r, c in zip(rows, cols)], axis=0)
    planted = prob[d == 0]
    background = prob[d > 6]
    auc = float(auc_mann_whitney(planted, background))
    result = {"planted_auc": auc, "windows_per_second": stats.windows_per_second, "onnx": summary["export"]["onnx"],
              "seconds": summary["seconds"], "cv_auc": summary["subsets"]["+".join(ELEMENTS)]["cv_auc"]}
    (out_dir / "smoke_result.json").write_text(json.dumps(result, indent=1))
    return result
