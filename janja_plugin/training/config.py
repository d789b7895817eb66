"""The training config: one JSON file, every key a field below (README: "Training config keys").

Kept free of torch so that `python -m janja_plugin.training check` starts in a second.
Paths in the file are relative to the file itself.
"""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import JanjaInputError
from .logistic import DENSE_C_GRID, SMOOTH_SPACINGS


@dataclass
class Config:
    stack: str
    deposits: str
    deposits_layer: str | None = None
    samples: str | None = None  # for the AUC by the published sample protocol
    samples_layer: str | None = None
    name: str = "model"
    units: str = "ppm"
    subsets: list = field(default_factory=lambda: [["Au_ppm"]])
    bundle_subset: list | None = None  # None: the subset with the best mean validation AUC
    target_element: str | None = None  # for the optional percentile rule on negatives
    negative_percentile: float | None = None
    window_pixels: int = 15
    input_size: int = 75
    positive_within: float | None = None  # None: scaled with the survey (check.scaled_defaults)
    negative_beyond: float | None = None
    max_negatives: int = 2500
    block_size: float | None = None
    folds: int = 4
    repeats: int = 10
    grid: str = "default"  # or "full"
    head_epochs: int = 40
    gan_steps: int = 600
    max_synthetic: int = 2000
    variants_pretrained: list = field(default_factory=lambda: [True, False])
    variants_gan: list = field(default_factory=lambda: [True, False])
    random_split_comparison: bool = True
    threads: int | None = None
    seed: int = 0
    protocol_min_distance_km: float | None = None  # None: the benchmark's per-area rule from the sample spacing
    baselines: dict = field(default_factory=dict)  # AUCs you measured elsewhere, quoted in the card as given
    fp16: bool = True
    finetune_blocks: int = 0  # > 0: also train the last n Inception blocks of the final model (slow on a CPU)
    finetune_epochs: int = 1
    finetune_lr: float = 1e-4
    # "window": the head reads each window classified alone (the study's way); "dense": it is fit on the shared-trunk
    # features janja:prospectivity reads off one trunk pass over the stack, so that fast mode IS the model
    head_features: str = "window"
    # with head_features "dense": "mlp" (the study's head on the dense features) or "logistic": an L2 logistic
    # regression on 64 label-free principal components whose logit map is smoothed (a Gaussian of sigma sample
    # spacings), C and sigma chosen by spatial-block CV (training/dense_logistic.py; bench/detect_dense.py's model)
    dense_head: str = "mlp"
    map_smoothing_spacings: list = field(default_factory=lambda: list(SMOOTH_SPACINGS))
    logistic_c: list = field(default_factory=lambda: list(DENSE_C_GRID))

    @classmethod
    def from_json(cls, path):
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise JanjaInputError(f"Cannot read the training config {path}: {exc}.") from exc
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise JanjaInputError(f"The training config {path} has unknown key(s) {unknown}: check the spelling "
                                  f"against the README's table of config keys.")
        missing = [k for k in ("stack", "deposits") if k not in data]
        if missing:
            raise JanjaInputError(f"The training config {path} lacks {missing}: name the element stack and the "
                                  "deposits layer (paths relative to the config file).")
        base = Path(path).resolve().parent
        for key in ("stack", "deposits", "samples"):
            if data.get(key) and not Path(data[key]).is_absolute():
                data[key] = str((base / data[key]).resolve())
        return cls(**data)
