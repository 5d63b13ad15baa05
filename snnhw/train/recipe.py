"""Recipes: one declarative TOML file per experiment (``models/<name>.toml``), read into a :class:`Recipe`.

Each TOML table is a dataclass below; its fields are the legal keys and their defaults, the legal
values are declared beside them and checked by :func:`snnhw.config.parse_table` (anything else is a
one-line :class:`RecipeError` naming the key). Sections:

``[recipe]``  ``name``, ``description``.
``[data]``    ``dataset`` (see :data:`snnhw.data.DATASETS`), ``encoding`` (see
              :data:`snnhw.data.ENCODINGS`), ``steps`` (encoded time steps per sample), ``pad_steps``
              (silent steps appended: the pipeline adds one step of delay per layer), ``split_seed``,
              ``verify_samples`` (test samples verified on Lava), ``val_fraction`` (share of the
              training split held out, stratified and seeded by ``split_seed``, as the validation
              split: each epoch is scored on it and the best epoch's weights are exported; 0 = no
              validation, the last epoch is exported), ``val_fold`` (which disjoint share of that size is held
              out, 0..round(1/val_fraction)-1; k-fold cross-validation, ``benchmarks/cv.py``), ``eval_samples`` (validation samples scored
              per epoch; 0 = all), ``levels``/``lo``/``hi``/``window`` (series encodings:
              thermometer, delta, thermometer_delta; see :mod:`snnhw.data.encoders`),
              ``duration_s`` (event datasets: the binned window), ``max_samples`` (event datasets).
``[model]``   ``layers``: a list of tables, each with ``kind`` ("dense", "conv", "pool", "flatten")
              and ``name``; dense: ``out``, ``recurrent``; conv: ``channels``, ``kernel``, ``stride``,
              ``padding``; pool: ``kernel``, ``weight`` (mantissa); any layer may override ``i_decay``,
              ``v_decay``, ``vth_mant``. ``bias`` (bool, all dense/conv layers). The last layer's
              neurons are the classes. ``readout``: "spikes" (the class with the most output spikes)
              or "voltage" (the last layer, dense and not recurrent, never fires: threshold
              :data:`snnhw.loihi.READOUT_VTH_MANT`; the class with the highest mean v; see
              :mod:`snnhw.train.evaluate`).
``[neuron]``  ``i_decay``, ``v_decay`` (netx units 0..4096), ``vth_mant`` (0: init chooses it).
``[init]``    ``method`` (see :data:`snnhw.init.METHODS`), ``target_rate`` (spikes/neuron/step, measured
              on the steps that carry input), ``calib_samples``, ``identity`` (hardware methods only:
              share of a square hidden layer's input variance on one-to-one weights, see
              :func:`snnhw.init.init_spec`).
``[train]``   ``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``optimizer`` ("adam": weight decay
              as L2 in the gradient; "adamw": decoupled, see :func:`snnhw.train.loop.make_optimizer`),
              ``schedule`` ("cosine" or "constant"), ``surrogate`` (see
              :data:`snnhw.core.surrogate.SURROGATES`), ``seed``, ``logit_scale`` (cross-entropy on
              ``logit_scale * spike counts``), ``label_smoothing`` (training loss only: the target puts
              this share of its mass evenly on all classes; 0 = off), ``rate_reg`` (weight of a penalty
              keeping hidden rates >= ``min_rate``), ``min_rate``, ``rate_reg_readout`` (the penalty holds
              the output layer's rate too: a readout that falls silent early in training predicts class 0
              for every sample), ``readout_lr`` (multiplier of ``lr`` for the output layer),
              ``augment_shift`` (image datasets: each epoch shifts every training image by up to this
              many whole pixels per axis, zero fill, seeded; 0 = off), ``select`` (which epoch is
              exported: "val_accuracy" — best validation accuracy, ties lower validation loss;
              "val_loss" — lowest validation loss; "last"), ``ema`` (0 = off; else the decay of an
              exponential moving average of the weights, updated every step, that is validated,
              selected and exported instead of the raw weights: :class:`snnhw.train.loop._Average`).

Chip ranges (decays, threshold, pool weight) come from :data:`snnhw.loihi.RANGES`. A layer key left out
of the file stays ``None`` (the builder's default applies: stride 1, padding 0, pool weight 64, the
``[neuron]`` values), so :meth:`Recipe.to_dict` returns exactly what the file said plus the defaults.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Union

from snnhw.config import option, parse_sections, parse_table, read_toml, to_table
from snnhw.core.surrogate import SURROGATES
from snnhw.data.datasets import DATASETS, EVENT_DATASETS
from snnhw.data.encoders import ENCODINGS
from snnhw.errors import InputError
from snnhw.init import METHODS
from snnhw.loihi import RANGES
from snnhw.resources import data_dir
from snnhw.spec import READOUTS

MODELS_DIR = data_dir("models")


class RecipeError(InputError):
    """A recipe is malformed; the message is one line naming the file and key."""


def _chip(name: str, default: Any = None) -> Any:
    """A field holding a chip parameter: legal values are :data:`snnhw.loihi.RANGES` ``[name]``."""
    lo, hi = RANGES[name]
    return option(default, lo=lo, hi=hi)


@dataclass
class RecipeInfo:
    name: str = ""
    description: str = ""


@dataclass
class DataConfig:
    dataset: str = option("digits", choices=DATASETS)
    encoding: str = option("regular", choices=ENCODINGS)
    steps: int = option(16, lo=1)
    split_seed: int = 0
    verify_samples: int = option(256, lo=1)
    pad_steps: int = option(0, lo=0)
    eval_samples: int = option(0, lo=0)
    val_fraction: float = option(0.1, lo=0, hi=1, hi_open=True)
    val_fold: int = option(0, lo=0)
    levels: int = option(16, lo=1)
    window: int = option(1, lo=1)
    lo: float = 0.0
    hi: float = 1.0
    duration_s: float = option(0.0, lo=0)
    max_samples: int = option(0, lo=0)


@dataclass
class _Layer:
    kind: str = ""
    name: Optional[str] = None


@dataclass
class _NeuronOverrides:
    i_decay: Optional[int] = _chip("i_decay")
    v_decay: Optional[int] = _chip("v_decay")
    vth_mant: Optional[int] = _chip("vth_mant")


@dataclass
class DenseLayer(_NeuronOverrides, _Layer):
    out: Optional[int] = option(None, lo=1, required=True)
    recurrent: Optional[bool] = None


@dataclass
class ConvLayer(_NeuronOverrides, _Layer):
    channels: Optional[int] = option(None, lo=1, required=True)
    kernel: Optional[int] = option(None, lo=1, required=True)
    stride: Optional[int] = option(None, lo=1)
    padding: Optional[int] = option(None, lo=0)


@dataclass
class PoolLayer(_NeuronOverrides, _Layer):
    kernel: Optional[int] = option(None, lo=1, required=True)
    weight: Optional[int] = _chip("weight")


@dataclass
class FlattenLayer(_Layer):
    pass


LayerConfig = Union[DenseLayer, ConvLayer, PoolLayer, FlattenLayer]
LAYER_KINDS = {"dense": DenseLayer, "conv": ConvLayer, "pool": PoolLayer, "flatten": FlattenLayer}


@dataclass
class ModelConfig:
    layers: List[Any] = option(default_factory=list)
    bias: bool = False
    readout: str = option("spikes", choices=READOUTS)


@dataclass
class NeuronConfig:
    i_decay: int = _chip("i_decay", 1024)
    v_decay: int = _chip("v_decay", 128)
    vth_mant: int = _chip("vth_mant", 0)


@dataclass
class InitConfig:
    method: str = option("hardware", choices=METHODS)
    target_rate: float = option(0.1, lo=0, lo_open=True)
    calib_samples: int = option(256, lo=1)
    identity: float = option(0.0, lo=0, hi=1, hi_open=True)


@dataclass
class TrainConfig:
    epochs: int = option(10, lo=0)
    batch_size: int = option(64, lo=1)
    lr: float = option(0.003, lo=0)
    weight_decay: float = option(0.0, lo=0)
    optimizer: str = option("adam", choices=("adam", "adamw"))
    schedule: str = option("cosine", choices=("cosine", "constant"))
    surrogate: str = option("arctan", choices=tuple(SURROGATES))
    seed: int = 0
    logit_scale: float = 1.0
    label_smoothing: float = option(0.0, lo=0, hi=1, hi_open=True)
    rate_reg: float = option(0.0, lo=0)
    min_rate: float = 0.01
    rate_reg_readout: bool = False
    readout_lr: float = option(1.0, lo=0, lo_open=True)
    augment_shift: int = option(0, lo=0)
    select: str = option("val_accuracy", choices=("val_accuracy", "val_loss", "last"))
    ema: float = option(0.0, lo=0, hi=1, hi_open=True)


SECTIONS = {"recipe": RecipeInfo, "data": DataConfig, "model": ModelConfig, "neuron": NeuronConfig,
            "init": InitConfig, "train": TrainConfig}


@dataclass
class Recipe:
    """A validated recipe: one attribute per TOML section."""

    recipe: RecipeInfo = field(default_factory=RecipeInfo)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    init: InitConfig = field(default_factory=InitConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def name(self) -> str:
        return self.recipe.name

    def to_dict(self) -> Dict[str, Dict]:
        """The resolved recipe as nested dicts (what the run report stores under ``recipe.resolved``)."""
        return to_table(self)

    def with_overrides(self, overrides: Mapping[str, Any], where: str = "recipe") -> "Recipe":
        """A copy with ``{"train.seed": 3, ...}`` replaced, checked like the file's own values."""
        d = self.to_dict()
        for key, value in overrides.items():
            section, name = key.split(".")
            d[section][name] = value
        return parse_recipe(d, where=where)


def available_recipes() -> List[str]:
    return sorted(p.stem for p in MODELS_DIR.glob("*.toml"))


def _parse_layers(raw: Any, where: str) -> List[LayerConfig]:
    if not raw:
        raise RecipeError(f"{where}: [model] layers is empty")
    layers, names = [], set()
    for i, table in enumerate(raw):
        if not isinstance(table, Mapping) or "kind" not in table:
            raise RecipeError(f"{where}: model.layers[{i}] needs a 'kind'")
        kind = table["kind"]
        if kind not in LAYER_KINDS:
            raise RecipeError(f"{where}: model.layers[{i}] has unknown kind '{kind}' "
                              f"(known: {', '.join(LAYER_KINDS)})")
        layer = parse_table(LAYER_KINDS[kind], table, where, f"model.layers[{i}]", RecipeError)
        if layer.name is None:
            layer.name = f"{kind}{i + 1}"
        if layer.name in names:
            raise RecipeError(f"{where}: duplicate layer name '{layer.name}'")
        names.add(layer.name)
        layers.append(layer)
    return layers


def parse_recipe(d: Mapping, where: str = "recipe") -> Recipe:
    """Validate a recipe dict (a parsed TOML file) and fill defaults. Raises :class:`RecipeError` (one line).

    A recipe without ``[recipe] name`` is named ``where``."""
    sections = parse_sections(d, SECTIONS, where, RecipeError)
    r = Recipe(**sections)
    r.model = dataclasses.replace(r.model, layers=_parse_layers(r.model.layers, where))
    if r.data.encoding == "events" and r.data.dataset not in EVENT_DATASETS:
        raise RecipeError(f"{where}: encoding 'events' needs an event dataset "
                          f"({', '.join(EVENT_DATASETS)}), not '{r.data.dataset}'")
    last = r.model.layers[-1]
    if r.model.readout == "voltage" and (last.kind != "dense" or last.recurrent):
        raise RecipeError(f"{where}: model.readout = 'voltage' needs a non-recurrent dense last layer; "
                          f"'{last.name}' is {'recurrent' if last.kind == 'dense' else last.kind}")
    if r.model.readout == "voltage" and r.train.rate_reg_readout:
        raise RecipeError(f"{where}: train.rate_reg_readout holds the output layer's firing rate up, and a voltage "
                          f"readout (model.readout) never fires; set it to false")
    if not r.recipe.name:
        r.recipe.name = where
    return r


def load_recipe(name_or_path: str) -> Recipe:
    """Load and validate ``models/<name>.toml`` (or a path); the recipe's name defaults to the file's."""
    p, d = read_toml(name_or_path, MODELS_DIR, "recipe", RecipeError)
    where = f"recipe {p.stem}"
    r = parse_recipe(d, where=where)
    if r.recipe.name == where:
        r.recipe.name = p.stem
    return r
