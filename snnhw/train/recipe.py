"""Recipes: one declarative TOML file per experiment (``models/<name>.toml``).

Sections and keys (anything else is a one-line error naming the key):

``[recipe]``  ``name``, ``description``.
``[data]``    ``dataset`` (see :data:`snnhw.data.DATASETS`), ``encoding`` (see
              :data:`snnhw.data.ENCODINGS`), ``steps`` (encoded time steps per sample), ``pad_steps``
              (silent steps appended: the pipeline adds one step of delay per layer), ``split_seed``,
              ``verify_samples`` (test samples verified on Lava), ``eval_samples`` (test samples used
              for the per-epoch accuracy; 0 = all), ``levels``/``lo``/``hi`` (thermometer),
              ``duration_s`` (event datasets: the binned window), ``max_samples`` (event datasets).
``[model]``   ``layers``: a list of tables, each with ``kind`` ("dense", "conv", "pool", "flatten")
              and ``name``; dense: ``out``, ``recurrent``; conv: ``channels``, ``kernel``, ``stride``,
              ``padding``; pool: ``kernel``, ``weight`` (mantissa); any layer may override ``i_decay``,
              ``v_decay``, ``vth_mant``. ``bias`` (bool, all dense/conv layers). The last layer's
              neurons are the classes.
``[neuron]``  ``i_decay``, ``v_decay`` (netx units 0..4096), ``vth_mant`` (optional: init chooses it).
``[init]``    ``method`` (see :mod:`snnhw.init`), ``target_rate`` (spikes/neuron/step, measured on the
              steps that carry input), ``calib_samples``, ``identity`` (hardware methods only: share of
              a square hidden layer's input variance on one-to-one weights, see :func:`snnhw.init.init_spec`).
``[train]``   ``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``optimizer`` ("adam"),
              ``schedule`` ("cosine" or "constant"), ``surrogate`` (arctan, fast_sigmoid, lavadl,
              triangle), ``seed``, ``logit_scale`` (cross-entropy on ``logit_scale * spike counts``),
              ``rate_reg`` (weight of a penalty keeping hidden rates >= ``min_rate``), ``min_rate``,
              ``readout_lr`` (multiplier of ``lr`` for the output layer, 1.0).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Dict, List
from snnhw.errors import InputError

try:
    import tomllib  # type: ignore[attr-defined]
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "models"

DEFAULTS: Dict[str, Dict] = {
    "recipe": {"name": "", "description": ""},
    "data": {"dataset": "digits", "encoding": "regular", "steps": 16, "split_seed": 0, "verify_samples": 256, "pad_steps": 0,
             "eval_samples": 0, "levels": 16, "lo": 0.0, "hi": 1.0, "duration_s": 0.0, "max_samples": 0},
    "model": {"layers": [], "bias": False},
    "neuron": {"i_decay": 1024, "v_decay": 128, "vth_mant": 0},
    "init": {"method": "hardware", "target_rate": 0.1, "calib_samples": 256, "identity": 0.0},
    "train": {"epochs": 10, "batch_size": 64, "lr": 0.003, "weight_decay": 0.0, "optimizer": "adam",
              "schedule": "cosine", "surrogate": "arctan", "seed": 0, "logit_scale": 1.0, "rate_reg": 0.0,
              "min_rate": 0.01, "readout_lr": 1.0},
}
LAYER_KEYS = {
    "dense": {"kind", "name", "out", "recurrent", "i_decay", "v_decay", "vth_mant"},
    "conv": {"kind", "name", "channels", "kernel", "stride", "padding", "i_decay", "v_decay", "vth_mant"},
    "pool": {"kind", "name", "kernel", "weight", "i_decay", "v_decay", "vth_mant"},
    "flatten": {"kind", "name"},
}


class RecipeError(InputError):
    """A recipe is malformed; the message is one line naming the file and key."""


def available_recipes() -> List[str]:
    return sorted(p.stem for p in MODELS_DIR.glob("*.toml"))


def recipe_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" and p.exists():
        return p
    p = MODELS_DIR / f"{name_or_path}.toml"
    if not p.exists():
        raise RecipeError(f"unknown recipe '{name_or_path}'; choose one of {', '.join(available_recipes())} "
                          f"or give a path to a .toml file")
    return p


def _check_type(where: str, key: str, value, default) -> None:
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, list):
        ok = isinstance(value, list)
    else:
        ok = True
    if not ok:
        raise RecipeError(f"{where}: '{key}' must be {type(default).__name__}, got {value!r}")


def parse_recipe(d: Dict, where: str = "recipe") -> Dict:
    """Validate a recipe dict and fill defaults. Raises :class:`RecipeError` (one line)."""
    out = copy.deepcopy(DEFAULTS)
    for section, values in d.items():
        if section not in DEFAULTS:
            raise RecipeError(f"{where}: unknown section '[{section}]' (known: {', '.join(DEFAULTS)})")
        if not isinstance(values, dict):
            raise RecipeError(f"{where}: '{section}' must be a table")
        for key, value in values.items():
            if key not in DEFAULTS[section]:
                raise RecipeError(f"{where}: unknown key '{section}.{key}' "
                                  f"(known: {', '.join(DEFAULTS[section])})")
            _check_type(where, f"{section}.{key}", value, DEFAULTS[section][key])
            out[section][key] = value
    layers = out["model"]["layers"]
    if not layers:
        raise RecipeError(f"{where}: [model] layers is empty")
    names = set()
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or "kind" not in layer:
            raise RecipeError(f"{where}: model.layers[{i}] needs a 'kind'")
        kind = layer["kind"]
        if kind not in LAYER_KEYS:
            raise RecipeError(f"{where}: model.layers[{i}] has unknown kind '{kind}' "
                              f"(known: {', '.join(LAYER_KEYS)})")
        bad = sorted(set(layer) - LAYER_KEYS[kind])
        if bad:
            raise RecipeError(f"{where}: unknown key 'model.layers[{i}].{bad[0]}' for a {kind} layer "
                              f"(known: {', '.join(sorted(LAYER_KEYS[kind]))})")
        layer.setdefault("name", f"{kind}{i + 1}")
        if layer["name"] in names:
            raise RecipeError(f"{where}: duplicate layer name '{layer['name']}'")
        names.add(layer["name"])
        required = {"dense": ["out"], "conv": ["channels", "kernel"], "pool": ["kernel"], "flatten": []}[kind]
        for key in required:
            if not isinstance(layer.get(key), int) or isinstance(layer.get(key), bool) or layer[key] < 1:
                raise RecipeError(f"{where}: model.layers[{i}] ({layer['name']}) needs a positive integer '{key}'")
    if out["data"]["steps"] < 1:
        raise RecipeError(f"{where}: data.steps must be >= 1")
    if out["train"]["epochs"] < 0 or out["train"]["batch_size"] < 1:
        raise RecipeError(f"{where}: train.epochs must be >= 0 and train.batch_size >= 1")
    if not out["train"]["readout_lr"] > 0:
        raise RecipeError(f"{where}: train.readout_lr must be > 0, got {out['train']['readout_lr']}")
    if not 0.0 <= out["init"]["identity"] < 1.0:
        raise RecipeError(f"{where}: init.identity must lie in [0, 1), got {out['init']['identity']}")
    if out["train"]["optimizer"] != "adam":
        raise RecipeError(f"{where}: train.optimizer '{out['train']['optimizer']}' is not supported (adam)")
    if out["train"]["schedule"] not in ("cosine", "constant"):
        raise RecipeError(f"{where}: train.schedule must be 'cosine' or 'constant'")
    if not out["recipe"]["name"]:
        out["recipe"]["name"] = where
    return out


def load_recipe(name_or_path: str) -> Dict:
    """Load and validate ``models/<name>.toml`` (or a path)."""
    p = recipe_path(name_or_path)
    try:
        with open(p, "rb") as f:
            d = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"recipe {p}: {str(e).splitlines()[0]}") from None
    r = parse_recipe(d, where=f"recipe {p.stem}")
    if r["recipe"]["name"] == f"recipe {p.stem}":
        r["recipe"]["name"] = p.stem
    return r
