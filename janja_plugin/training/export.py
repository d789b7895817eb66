"""Export the trained classifier to ONNX with its model card, checked against torch and the plugin's loader."""

import datetime
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from ..core.inference import model_card
from .backbone import PROVENANCE
from .baselines import verdict as verdict_sentence
from .dataset import resize_windows
from .head import exportable_head
from .training_data import for_elements

TORCH_TOLERANCE = 1e-4
FP16_TOLERANCE = 1e-3


def build_card(cfg, prep, stack, summary, pretrained):
    subset = "+".join(prep.elements)
    means = [m for m in summary.get("experiment_means", []) if m["subset"] == subset and m["split"] == "blocks"]
    proto = summary.get("protocol")
    metrics = {"window_cv_auc_spatial_blocks": summary["subsets"][subset]["cv_auc"],
               "window_cv_auc_sd": summary["subsets"][subset]["cv_auc_sd"],
               "experiment": {f"pretrained={m['pretrained']},gan={m['gan']}": {
                   k: round(m[k], 4) for k in ("auc", "auc_sd", "accuracy", "cross_entropy")} for m in means}}
    baselines = summary.get("baselines") or {}
    if baselines:  # computed on this run's own survey (training/baselines.py), never copied from another
        metrics["baselines"] = {k: {"auc": _finite(b["auc"]), "sd": _finite(b["sd"]), "how": b["how"]}
                               for k, b in baselines.items()}
    if getattr(cfg, "baselines", None):
        metrics["baselines_given_in_config"] = cfg.baselines
    logistic = summary.get("dense_logistic")
    if logistic:  # the chosen C and smoothing, the fold table and the nested protocol beside the baselines
        metrics["dense_logistic"] = {k: v for k, v in logistic.items()
                                     if k not in ("feature_seconds", "final_logit_at_samples")}
    if proto:
        metrics["protocol_auc_held_out_blocks"] = round(proto["auc_mean"], 4)
        metrics["protocol_auc_sd"] = round(proto["auc_sd"], 4)
        metrics["protocol_min_distance_km"] = proto.get("min_distance_km", cfg.protocol_min_distance_km)
        verdict = verdict_sentence(proto["auc_mean"], proto["auc_sd"], baselines, protocol=True)
    else:
        s = summary["subsets"][subset]
        verdict = verdict_sentence(s["cv_auc"], s["cv_auc_sd"], baselines, protocol=False)
    c = summary["counts"]
    tuned = summary.get("finetune")
    if tuned:
        verdict += (f" The exported model's last {tuned['blocks']} Inception block(s) were then fine-tuned for "
                    f"{tuned['epochs']} epoch(s) on all windows; the validation figures are for the frozen trunk.")
    epsg = _epsg(stack.crs_wkt)
    return {
        "schema_version": 1,
        "name": cfg.name,
        "description": (f"Inception-v3 transfer-learning classifier of {subset} windows ({cfg.window_pixels} cells of "
                        f"{stack.cell:g} m) for deposit proximity.{verdict}"),
        "model_kind": "supervised_classifier",
        "elements": prep.specs,
        "input": {"channels": len(prep.elements), "height": cfg.input_size, "width": cfg.input_size,
                  "channel_map": list(range(len(prep.elements))), "resize": "bilinear_half_pixel"},
        "window_pixels": cfg.window_pixels,
        "cell_size": float(stack.cell),
        "cell_size_tolerance": 0.01,
        "crs": None,
        "class_names": ["background", "deposit"],
        "prospective_class": "deposit",
        "output_kind": "probabilities",
        "training": {
            "summary": (f"Trained on {Path(cfg.stack).name} ({epsg or 'projected CRS'}) and {c['positive']} positive "
                        f"windows (centre within {cfg.positive_within:g} m of {c['deposits_with_positive_cells']} "
                        f"deposits) against {c['negative_used']} negative windows (beyond {cfg.negative_beyond:g} m); "
                        f"frozen {'ImageNet' if pretrained else 'randomly initialised'} trunk, head retrained"
                        + (" on shared-trunk features (one trunk pass over the stack)"
                           if getattr(cfg, "head_features", "window") == "dense" else "")
                        + (f" as an L2 logistic regression (C {logistic['c']:g}) on "
                           f"{logistic['pca']['components']} principal components, its logit map smoothed at "
                           f"{logistic['map_smoothing_spacings']:g} sample spacings" if logistic else "")
                        + (", WGAN-GP synthetic positives in training folds only" if True in cfg.variants_gan else "")
                        + "."),
            "counts": c,
            "head": summary["subsets"][subset]["search"][0][0],
            "deposits": Path(cfg.deposits).name,
        },
        "validation": {
            "method": "spatial_blocks",
            "description": (f"{cfg.folds}-fold cross-validation over {cfg.block_size:g} m blocks; a deposit's windows "
                            "stay in one fold; "
                            + ("C and the map smoothing chosen inside each fold's training folds (nested)"
                               if logistic else "synthetic windows only in training folds")
                            + "; protocol AUC from out-of-fold scores at the samples (OpenGADBench sample protocol)."),
            "metrics": metrics,
        },
        "pretrained": {"source": PROVENANCE if pretrained else "none (random initialisation)"},
        "libraries": _libraries(),
        "date": datetime.date.today().isoformat(),
        **({"training_data": for_elements(summary["training_data"], prep.elements)}
           if "training_data" in summary else {}),
    }


def _finite(v):
    return None if v is None or not np.isfinite(v) else float(v)


def _epsg(wkt):
    if not wkt:
        return None
    try:
        from rasterio.crs import CRS

        code = CRS.from_wkt(wkt).to_epsg()
        return f"EPSG:{code}" if code else None
    except Exception:
        return None


def _libraries():
    import onnx
    import onnxruntime
    import torchvision

    return {"torch": torch.__version__, "torchvision": torchvision.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "numpy": np.__version__}


def fp16_storage(model, keep_first=0, min_size=1024):
    """A copy whose large float weights are stored as float16 and cast back to float32 when the session loads.

    onnxruntime folds the casts at load time, so the model computes in float32 at float32 speed; only the
    weights are rounded. The first `keep_first` weight tensors (the stem, where rounding errors grow the most
    through the network) stay float32.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    floats = [i for i in g.initializer if i.data_type == TensorProto.FLOAT]
    keep = {i.name for i in floats[:keep_first]}
    casts, halves = [], []
    for init in floats:
        if init.name in keep or int(np.prod(init.dims)) < min_size:
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "__fp16")
        halves.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
        g.initializer.remove(init)
    g.initializer.extend(halves)
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    return out


MAX_MODEL_BYTES = 50_000_000


def pick_precision(model, clf, batch):
    """(model, is_fp16, diff): float16 weight storage with as few float32 stem tensors as keep the agreement
    within FP16_TOLERANCE and the file under MAX_MODEL_BYTES; else the float32 model."""
    best_diff = float("inf")
    for keep in (0, 20, 40, 60, 80):
        half = fp16_storage(model, keep)
        if half.ByteSize() > MAX_MODEL_BYTES:
            break
        diff = max_abs_diff(half, clf, batch)
        best_diff = min(best_diff, diff)
        if diff <= FP16_TOLERANCE:
            half.doc_string = f"float16 weight storage (first {keep} weight tensors float32), float32 compute"
            return half, True, diff
    return model, False, best_diff


def export_model(cfg, prep, fit, pretrained, stack, summary, out_dir, log, clf=None, dense_fields=None):
    """Write <name>.onnx + <name>.json into out_dir; returns paths and the measured agreements.

    clf: an already assembled classifier (fine-tuned); default: trunk + adapter rebuilt, `fit`'s head.
    dense_fields: extra card fields "dense" of a shared-trunk head (the logistic head's "head_output": "logits"
    and "map_smoothing_cells"; training/dense_logistic.py).
    """
    import onnx

    from .pipeline import make_classifier

    out_dir = Path(out_dir)
    if clf is None:
        clf = make_classifier(len(prep.elements), pretrained, prep.components, cfg.seed)
        clf.head = exportable_head(fit)
    clf.eval()
    card = build_card(cfg, prep, stack, summary, pretrained)
    card = model_card.card_from_dict(card, "the exported card").to_dict()  # validate before writing
    onnx_path = out_dir / f"{cfg.name}.onnx"
    tmp = out_dir / f".{cfg.name}.onnx.part"
    batch = resize_windows(prep.windows[: min(64, len(prep.windows))], cfg.input_size)
    model = export_onnx(clf, len(prep.elements), cfg.input_size, tmp)
    diff32 = max_abs_diff(model, clf, batch)
    result = {"max_abs_diff_fp32_vs_torch": diff32, "fp16": False}
    log(f"  ONNX fp32 vs torch: max |diff| {diff32:.2e}")
    if diff32 > TORCH_TOLERANCE:
        raise RuntimeError(f"ONNX export disagrees with torch by {diff32:.2e} (> {TORCH_TOLERANCE})")
    if cfg.fp16:
        model, result["fp16"], result["max_abs_diff_fp16_vs_torch"] = pick_precision(model, clf, batch)
        log(f"  ONNX fp16 vs torch: max |diff| {result['max_abs_diff_fp16_vs_torch']:.2e} -> "
            f"{'fp16' if result['fp16'] else 'fp32 kept'}")
    card["libraries"]["weights_precision"] = model.doc_string if result["fp16"] else "float32"
    card["validation"]["metrics"]["onnx_vs_torch_max_abs_diff"] = result.get(
        "max_abs_diff_fp16_vs_torch" if result["fp16"] else "max_abs_diff_fp32_vs_torch")
    if cfg.head_features == "dense":
        # the head was fit on shared-trunk features: its trunk and head parts ARE the model (janja:prospectivity
        # uses them by default for this card); the per-window .onnx stays for tools that need one
        from .export_dense import export_dense_parts

        extra = dict(dense_fields or {})
        card = export_dense_parts(clf, onnx_path, card, head=clf.head,
                                  head_output=extra.pop("head_output", "probabilities"))
        card["dense"].update(extra)
        card["description"] += (" Its head was fit on shared-trunk features: janja:prospectivity runs the trunk once "
                                "over the stack (the card's dense parts), and that map is the model's; window by "
                                "window it is not.")
    model_card.card_from_dict(card, "the exported card")
    model_card.embed_card(model, card)
    onnx.save(model, str(tmp))
    os.replace(tmp, onnx_path)
    card_path = model_card.card_path_for(onnx_path)
    card_path.write_text(json.dumps(card, indent=1, sort_keys=True))
    # A per-window head gets no shared-trunk parts (export_dense.export_dense_parts): on them it gives a different,
    # meaningless map (bench/bench_prospectivity.py: max |dp| 1.0), and the fp32 trunk part alone is 87 MB.
    result["dense_parts"] = cfg.head_features == "dense"
    loaded = model_card.load_model(onnx_path)  # exactly what janja:prospectivity does
    result.update({"onnx": str(onnx_path), "card": str(card_path), "bytes": onnx_path.stat().st_size,
                   "card_name": loaded.card.name})
    log(f"  wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB) + {card_path.name}")
    return result


def export_onnx(clf, n_elements, input_size, path):
    """torch -> ONNX (opset 17, dynamic batch, TorchScript exporter: one self-contained file); returns the proto."""
    import onnx

    dummy = torch.zeros(2, n_elements, input_size, input_size)
    torch.onnx.export(clf, (dummy,), str(path), dynamo=False, opset_version=17, input_names=["windows"],
                      output_names=["probabilities"],
                      dynamic_axes={"windows": {0: "batch"}, "probabilities": {0: "batch"}})
    return onnx.load(str(path))


def max_abs_diff(model, clf, batch):
    """Largest |onnxruntime - torch| over the output probabilities of `batch`."""
    import onnxruntime as ort

    with torch.no_grad():
        ref = clf(torch.as_tensor(batch)).numpy()
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"windows": batch})[0]
    return float(np.abs(got - ref).max())


def default_classifier(models_dir):
    """The model janja:prospectivity and janja:workflow take when none is given: the first models/*.onnx (sorted)
    whose card beside it is a supervised classifier (processing/prospectivity.py), or None."""
    for path in sorted(Path(models_dir).glob("*.onnx")):
        card = model_card.card_path_for(path)
        try:
            if json.loads(card.read_text()).get("model_kind") == "supervised_classifier":
                return path
        except (OSError, ValueError):
            continue
    return None


def _card_line(path):
    try:
        c = json.loads(model_card.card_path_for(path).read_text())
        return f"'{c.get('name')}' of {c.get('date')}, cell {c.get('cell_size')} m: {c['training']['summary'][:160]}"
    except (OSError, ValueError, KeyError, TypeError):
        return "(no readable card)"


def bundle(onnx_path, models_dir):
    """Copy a trained model (+ card and any part files named after it) into models/.

    Returns (copied paths, lines saying what was replaced and which model is the plugin's default before and
    after), so that a bundle never changes the default model without saying so.
    """
    onnx_path = Path(onnx_path)
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    before = default_classifier(models_dir)
    before_line = _card_line(before) if before else None
    lines, copied = [], []
    for f in sorted(onnx_path.parent.glob(onnx_path.stem + "*")):
        if f.suffix in (".onnx", ".json") and not f.name.startswith("."):
            dst = models_dir / f.name
            if dst.exists() and dst.suffix == ".onnx":
                lines.append(f"replaced {dst} (was {_card_line(dst)})")
            shutil.copy2(f, dst)
            copied.append(dst)
    after = default_classifier(models_dir)
    if before != after or (before is not None and before in copied):
        lines.append(f"the plugin's default classifier (janja:prospectivity, janja:workflow without a MODEL) is now "
                     f"{after} ({_card_line(after)}); it was "
                     + (f"{before} ({before_line})" if before else "none"))
    else:
        lines.append(f"the plugin's default classifier is unchanged: {after}")
    return copied, lines
