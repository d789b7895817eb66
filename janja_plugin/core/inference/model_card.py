"""Model card: the contract between a trained ONNX model and the stack it is run over.

The card is JSON beside the .onnx (<model>.json) and the same JSON inside the ONNX metadata_props
(key 'janja_model_card', with Deepness-style keys beside it), so one .onnx is self-describing.
It is validated against resources/model_card.schema.json by a small validator for the subset of
JSON Schema used there (QGIS's Python may lack the jsonschema package), then across fields.
"""

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import JanjaInputError, require

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "resources" / "model_card.schema.json"
METADATA_KEY = "janja_model_card"
DEFAULT_CELL_TOLERANCE = 0.01


@dataclass(frozen=True)
class ElementSpec:
    """One stack band feeding the model: its transform and the statistics it was standardised with."""

    name: str
    unit: str
    transform: str  # "log10", "ln" or "none"
    mean: float
    std: float
    offset: float = 0.0


@dataclass(frozen=True)
class ModelCard:
    name: str
    model_kind: str  # "supervised_classifier" or "unsupervised_anomaly"
    elements: tuple  # ElementSpec, in the order channel_map refers to
    channels: int
    input_height: int
    input_width: int
    channel_map: tuple  # element index per model channel
    resize: str  # "bilinear_half_pixel" or "bilinear_align_corners"
    window_pixels: int
    cell_size: float
    cell_size_tolerance: float
    crs: str | None
    class_names: tuple
    prospective_class: str
    output_kind: str  # "probabilities", "logits" or "score"
    training: dict
    validation: dict
    pretrained: dict
    libraries: dict
    date: str
    dense: dict | None = None  # optional shared-trunk parts (schema field "dense"; core/dense.py)
    raw: dict = field(repr=False, compare=False, default_factory=dict)

    @property
    def element_names(self):
        return [e.name for e in self.elements]

    @property
    def training_data(self):
        """The card's record of its training survey (input percentiles, spacing, sites), or None (older cards)."""
        return self.raw.get("training_data")

    @property
    def prospective_index(self):
        return self.class_names.index(self.prospective_class)

    def describe(self):
        """One sentence for reports: name, kind, date, elements, window and cell size."""
        return (
            f"Model '{self.name}' ({self.model_kind.replace('_', ' ')}), {self.date}: elements "
            f"{', '.join(f'{e.name} ({e.unit}, {e.transform})' for e in self.elements)}; window "
            f"{self.window_pixels} x {self.window_pixels} cells resized to {self.input_height} x {self.input_width}; "
            f"trained at {self.cell_size:g} m cells."
        )

    def to_dict(self):
        return json.loads(json.dumps(self.raw))


# --- a validator for the subset of JSON Schema the card schema uses -------------------------------

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_SUPPORTED = {
    "$schema", "$id", "title", "description", "type", "required", "additionalProperties", "properties",
    "items", "enum", "minimum", "maximum", "exclusiveMinimum", "minItems", "minLength", "pattern",
}


def schema_errors(value, schema, where="card"):
    """Messages 'where: why' for every violation of `schema` (the subset listed in _SUPPORTED)."""
    unknown = set(schema) - _SUPPORTED
    if unknown:
        raise ValueError(f"schema keyword(s) {sorted(unknown)} at {where} are not supported by this validator")
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(_TYPES[t](value) for t in types):
            return [f"{where}: must be {' or '.join(types)}, not {json.dumps(value)[:60]}"]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: must be one of {schema['enum']}, not {json.dumps(value)}")
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: must be at least {schema['minimum']}, not {value}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: must be at most {schema['maximum']}, not {value}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errors.append(f"{where}: must be greater than {schema['exclusiveMinimum']}, not {value}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{where}: must not be empty")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: '{value}' does not match the pattern {schema['pattern']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{where}: needs at least {schema['minItems']} item(s)")
        if "items" in schema:
            for i, item in enumerate(value):
                errors.extend(schema_errors(item, schema["items"], f"{where}[{i}]"))
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{where}: the field '{key}' is missing")
        props = schema.get("properties", {})
        for key, item in value.items():
            if key in props:
                errors.extend(schema_errors(item, props[key], f"{where}.{key}"))
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{where}: unknown field '{key}' (a typo?)")
    return errors


def load_schema():
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return json.load(fh)


def card_from_dict(data, source="the model card"):
    """A validated ModelCard, or JanjaInputError naming each bad field and why."""
    errors = schema_errors(data, load_schema())
    if not errors:
        errors = _cross_field_errors(data)
    if errors:
        raise JanjaInputError(
            f"{source} is not valid: " + "; ".join(errors[:8]) + ("; ..." if len(errors) > 8 else "")
            + ". Fix the card (schema: resources/model_card.schema.json) or re-export the model."
        )
    elements = tuple(
        ElementSpec(e["name"], e["unit"], e["transform"], float(e["mean"]), float(e["std"]), float(e.get("offset", 0)))
        for e in data["elements"]
    )
    inp = data["input"]
    return ModelCard(
        name=data["name"], model_kind=data["model_kind"], elements=elements, channels=inp["channels"],
        input_height=inp["height"], input_width=inp["width"], channel_map=tuple(_channel_map(data)),
        resize=inp.get("resize", "bilinear_half_pixel"), window_pixels=data["window_pixels"],
        cell_size=float(data["cell_size"]),
        cell_size_tolerance=float(data.get("cell_size_tolerance", DEFAULT_CELL_TOLERANCE)),
        crs=data.get("crs"), class_names=tuple(data["class_names"]), prospective_class=data["prospective_class"],
        output_kind=data["output_kind"], training=data["training"], validation=data["validation"],
        pretrained=data["pretrained"], libraries=data["libraries"], date=data["date"],
        dense=json.loads(json.dumps(data["dense"])) if "dense" in data else None,
        raw=json.loads(json.dumps(data)),
    )


def _channel_map(data):
    n, channels = len(data["elements"]), data["input"]["channels"]
    if "channel_map" in data["input"]:
        return data["input"]["channel_map"]
    return list(range(n)) if n == channels else [0] * channels


def _cross_field_errors(data):
    errors = []
    names = [e["name"] for e in data["elements"]]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        errors.append(f"card.elements: the element(s) {dupes} appear twice")
    n, channels = len(names), data["input"]["channels"]
    if "channel_map" in data["input"]:
        cmap = data["input"]["channel_map"]
        if len(cmap) != channels:
            errors.append(f"card.input.channel_map: has {len(cmap)} entries but the model has {channels} channels")
        bad = [i for i in cmap if i >= n]
        if bad:
            errors.append(f"card.input.channel_map: element index(es) {bad} but the card lists only {n} element(s)")
    elif n != channels and n != 1:
        errors.append(
            f"card.input.channel_map: the card lists {n} elements for a {channels}-channel model; "
            "say which element feeds each channel"
        )
    if data["window_pixels"] % 2 == 0:
        errors.append(
            f"card.window_pixels: must be odd so the window is centred on its cell, not {data['window_pixels']}"
        )
    if data["prospective_class"] not in data["class_names"]:
        errors.append(
            f"card.prospective_class: '{data['prospective_class']}' is not one of class_names {data['class_names']}"
        )
    if data["output_kind"] == "score" and len(data["class_names"]) != 1:
        errors.append("card.class_names: a 'score' output has exactly one class name")
    errors.extend(_training_data_errors(data, names))
    return errors


def _training_data_errors(data, names):
    """The recorded training distribution must cover every element with ordered percentiles 1..99."""
    quantiles = (data.get("training_data") or {}).get("input_quantiles")
    if not quantiles:
        return []
    errors = []
    pct = quantiles["percent"]
    if any(b <= a for a, b in zip(pct, pct[1:])) or pct[0] > 1 or pct[-1] < 99:
        errors.append(f"card.training_data.input_quantiles.percent: must increase and span 1 to 99, not {pct}")
    for name in names:
        values = quantiles["values"].get(name)
        if values is None:
            errors.append(f"card.training_data.input_quantiles.values: no percentiles for the element '{name}'")
        elif (len(values) != len(pct) or not all(isinstance(v, int | float) and math.isfinite(v) for v in values)
              or any(b < a for a, b in zip(values, values[1:]))):
            errors.append(f"card.training_data.input_quantiles.values.{name}: needs {len(pct)} finite, "
                          "non-decreasing numbers, one per percent")
    return errors


# --- the card inside the .onnx ----------------------------------------------------------------------

def metadata_props(card_dict):
    """The ONNX metadata_props (all strings) that carry the card: the full JSON plus Deepness-style keys.

    Deepness (QGIS plugin) reads model_type, class_names ({id: name}), resolution (cm per pixel) and
    tiles_size (pixels); 'tile_size' is written too because it is the spelling people look for.
    """
    return {
        METADATA_KEY: json.dumps(card_dict, sort_keys=True),
        "model_type": card_dict["model_kind"],
        "class_names": json.dumps({str(i): n for i, n in enumerate(card_dict["class_names"])}),
        "resolution": repr(float(card_dict["cell_size"]) * 100.0),
        "tiles_size": str(card_dict["window_pixels"]),
        "tile_size": str(card_dict["window_pixels"]),
    }


def embed_card(onnx_model, card_dict):
    """Write the card into an onnx.ModelProto's metadata_props (replacing earlier copies). For exporters/tests."""
    props = metadata_props(card_dict)
    keep = [p for p in onnx_model.metadata_props if p.key not in props]
    del onnx_model.metadata_props[:]
    for p in keep:
        onnx_model.metadata_props.add(key=p.key, value=p.value)
    for key, value in props.items():
        onnx_model.metadata_props.add(key=key, value=value)
    return onnx_model


def card_path_for(onnx_path):
    return Path(onnx_path).with_suffix(".json")


# --- loading a model ----------------------------------------------------------------------------------

@dataclass
class LoadedModel:
    """An onnxruntime session with the card that describes it."""

    path: Path
    card: ModelCard
    session: object
    input_name: str
    fixed_batch: int | None  # the batch size when the model's batch axis is not dynamic
    threads: int
    notes: list = field(default_factory=list)


def load_model(onnx_path, card_path=None, threads=None):
    """Open `onnx_path` with onnxruntime and its card; refuse clearly when they do not fit together.

    The card comes from `card_path` (default <model>.json beside it) and from the file's metadata;
    when both exist they must agree. threads: onnxruntime intra-op threads (default all cores).
    """
    ort = require("onnxruntime", "running the prospectivity model")
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise JanjaInputError(f"The model file {onnx_path} does not exist. Choose an existing .onnx file.")
    threads = int(threads) if threads else (os.cpu_count() or 1)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise JanjaInputError(
            f"The model file {onnx_path} could not be read as an ONNX model ({str(exc).splitlines()[0][:200]}). "
            "It is damaged or not an ONNX file: download or export it again."
        ) from exc
    meta = session.get_modelmeta().custom_metadata_map
    notes = []
    embedded = None
    if METADATA_KEY in meta:
        try:
            embedded = json.loads(meta[METADATA_KEY])
        except ValueError as exc:
            raise JanjaInputError(
                f"The model card inside {onnx_path.name} (metadata '{METADATA_KEY}') is not valid JSON ({exc}). "
                "Re-export the model with its card."
            ) from exc
    card_path = Path(card_path) if card_path else card_path_for(onnx_path)
    beside = None
    if card_path.is_file():
        try:
            with open(card_path, encoding="utf-8") as fh:
                beside = json.load(fh)
        except (OSError, ValueError) as exc:
            raise JanjaInputError(
                f"The model card {card_path} could not be read as JSON ({exc}). Fix or replace it."
            ) from exc
    if embedded is None and beside is None:
        raise JanjaInputError(
            f"The model {onnx_path.name} has no model card: none inside the file (metadata '{METADATA_KEY}') and "
            f"no {card_path.name} beside it. Without a card the elements, transform and window size are unknown: "
            "put the card JSON that came with the model beside it."
        )
    if embedded is not None and beside is not None and embedded != beside:
        diff = sorted(k for k in set(embedded) | set(beside) if embedded.get(k) != beside.get(k))
        raise JanjaInputError(
            f"The model card {card_path.name} disagrees with the card inside {onnx_path.name} in the field(s) "
            f"{diff}. One of them was edited or belongs to another model: use the pair that was exported together."
        )
    if beside is None:
        notes.append(f"Card read from inside {onnx_path.name} (no {card_path.name} beside it).")
    elif embedded is None:
        notes.append(f"Card read from {card_path.name}; the .onnx carries no embedded card.")
    data = beside if beside is not None else embedded
    card = card_from_dict(data, f"The model card of {onnx_path.name}")
    if card.training_data is None:
        notes.append(
            f"Warning: the card of {onnx_path.name} does not record its training data (card field training_data: "
            "input percentiles, sample spacing, training sites), so this run cannot tell precisely whether the "
            "stack is like the training survey, nor whether evaluated deposits were training labels. Re-export "
            "the model with a current janja_plugin.training to record them."
        )
    if embedded is not None:
        _check_deepness_keys(meta, data, onnx_path)
    fixed_batch = _check_io(session, card, onnx_path)
    return LoadedModel(onnx_path, card, session, session.get_inputs()[0].name, fixed_batch, threads, notes)


def _check_deepness_keys(meta, data, onnx_path):
    expected = metadata_props(data)
    bad = [k for k in expected if k != METADATA_KEY and k in meta and meta[k] != expected[k]]
    if bad:
        raise JanjaInputError(
            f"The metadata {bad} of {onnx_path.name} disagree with its embedded model card "
            f"({', '.join(f'{k}={meta[k]!r} but the card gives {expected[k]!r}' for k in bad)}). Re-export the model."
        )


def _check_io(session, card, onnx_path):
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise JanjaInputError(f"The model {onnx_path.name} has {len(inputs)} inputs; a window classifier has one.")
    shape = inputs[0].shape
    if len(shape) != 4:
        raise JanjaInputError(
            f"The model {onnx_path.name} takes a {len(shape)}-dimensional input {shape}; a window classifier takes "
            "N x channels x height x width."
        )
    expected = (card.channels, card.input_height, card.input_width)
    for axis, (got, want) in enumerate(zip(shape[1:], expected)):
        if isinstance(got, int) and got != want:
            what = ("channels", "height", "width")[axis]
            raise JanjaInputError(
                f"The model {onnx_path.name} expects input {shape} (N x channels x height x width) but its card says "
                f"{want} {what} ({card.channels} x {card.input_height} x {card.input_width}). The card belongs to "
                "another model: use the card exported with this .onnx."
            )
    outputs = session.get_outputs()
    n_out = outputs[0].shape[-1] if outputs[0].shape else None
    want_out = len(card.class_names)
    if isinstance(n_out, int) and n_out != want_out:
        raise JanjaInputError(
            f"The model {onnx_path.name} gives {n_out} outputs per window but its card names {want_out} class(es) "
            f"{list(card.class_names)}. Use the card exported with this .onnx."
        )
    return shape[0] if isinstance(shape[0], int) else None


def match_stack(card, band_names):
    """Indices of the stack bands holding the card's elements, in card order; refuse naming what is missing."""
    index = {name: i for i, name in enumerate(band_names)}
    lower = {name.lower(): i for i, name in enumerate(band_names)}
    missing, found = [], []
    for name in card.element_names:
        i = index.get(name, lower.get(name.lower()))
        if i is None:
            missing.append(name)
        found.append(i)
    if missing:
        have = ", ".join(n or "(no description)" for n in band_names) or "no bands"
        raise JanjaInputError(
            f"The element stack lacks {', '.join(missing)}, which the model '{card.name}' needs "
            f"(it needs {', '.join(card.element_names)}). The stack has: {have}. Krige the missing element(s) with "
            "janja:krige, or name the bands so their descriptions match the card."
        )
    return found


def check_grid(card, cell_size, crs_wkt=None):
    """Refuse a stack whose cell size (or CRS, when the card requires one) the model was not trained for."""
    tol = card.cell_size_tolerance
    if abs(cell_size - card.cell_size) > tol * card.cell_size + 1e-9:
        raise JanjaInputError(
            f"The stack's cell size is {cell_size:g} m but the model '{card.name}' was trained at {card.cell_size:g} m "
            f"(±{tol:.0%} accepted): its windows would cover a different ground area. Resample the stack to "
            f"{card.cell_size:g} m (Processing 'Warp (reproject)' with that resolution) or re-run janja:krige with "
            f"cell size {card.cell_size:g}."
        )
    if card.crs and crs_wkt:
        from osgeo import osr

        want, have = osr.SpatialReference(), osr.SpatialReference()
        want.SetFromUserInput(card.crs)
        have.SetFromUserInput(crs_wkt)
        if not want.IsSame(have):
            name = have.GetName() or "unknown"
            raise JanjaInputError(
                f"The stack is in '{name}' but the model '{card.name}' requires {card.crs}. Reproject the stack "
                f"(Processing 'Warp (reproject)') to {card.crs} at {card.cell_size:g} m cells."
            )
