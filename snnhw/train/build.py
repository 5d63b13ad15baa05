"""From a recipe to a trainable :class:`~snnhw.core.layers.SpikingNet`: shapes, budget check, init.

:func:`plan_layers` computes every layer's shape, neurons and synapses from the recipe alone (no
weights allocated), so :meth:`snnhw.targets.Target.check_fit` can refuse a model before anything big
is built. :func:`build_model` creates the modules; :func:`initialize` fills weights, ``weight_exp``
and ``vth_mant`` through :func:`snnhw.init.init_spec` (any of its methods, on calibration data from
the recipe's training split).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from snnhw import loihi
from snnhw.core.layers import (FlattenLayer, SpikingConv, SpikingDense, SpikingNet,
                               SpikingSumPool)
from snnhw.core.surrogate import Surrogate
from snnhw.errors import InputError
from snnhw.init import init_spec
from snnhw.init.tensor import HARDWARE_METHODS
from snnhw.spec import Neuron
from snnhw.targets import LayerCost, Target
from snnhw.train.recipe import Recipe


def input_shape_for(recipe: Recipe, feature_shape: Sequence[int], n_channels: int) -> Tuple[int, ...]:
    """The network's input shape: (C, H, W) when the first layer is a conv, else (channels,)."""
    if recipe.model.layers[0].kind in ("conv", "pool"):
        if int(np.prod(feature_shape)) != n_channels or len(feature_shape) != 3:
            raise InputError(f"a conv/pool first layer needs image features; this dataset gives {tuple(feature_shape)}")
        return tuple(int(v) for v in feature_shape)
    return (int(n_channels),)


def _or(value, default):
    """A recipe layer key left out of the file is None: the default applies."""
    return default if value is None else value


def _neuron(recipe: Recipe, layer) -> Neuron:
    n = recipe.neuron
    vth = _or(getattr(layer, "vth_mant", None), n.vth_mant) or 64
    return Neuron(i_decay=_or(getattr(layer, "i_decay", None), n.i_decay),
                  v_decay=_or(getattr(layer, "v_decay", None), n.v_decay), vth_mant=vth)


def plan_layers(recipe: Recipe, input_shape: Sequence[int], n_classes: int) -> List[Dict]:
    """Per recipe layer: kind, name, in/out shape, neurons, synapses. Raises InputError on shape errors."""
    shape = tuple(int(v) for v in input_shape)
    plan = []
    layers = recipe.model.layers
    for i, l in enumerate(layers):
        kind, name = l.kind, l.name
        if kind == "dense":
            n_in = int(np.prod(shape))
            out = (l.out,)
            syn = n_in * l.out + (l.out ** 2 if l.recurrent else 0)
        elif kind == "flatten":
            out, syn = (int(np.prod(shape)),), 0
        else:
            if len(shape) != 3:
                raise InputError(f"layer {name}: {kind} needs a (C, H, W) input, got {shape} (add no flatten before it)")
            c, h, w = shape
            k = l.kernel
            if kind == "conv":
                s, p = _or(l.stride, 1), _or(l.padding, 0)
                out = (l.channels, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
                syn = int(np.prod(out)) * c * k * k
            else:
                out = (c, (h - k) // k + 1, (w - k) // k + 1)
                syn = int(np.prod(out)) * k * k
            if min(out) < 1:
                raise InputError(f"layer {name}: output shape {out} is empty (input {shape}, kernel {k})")
        plan.append({"kind": kind, "name": name, "in_shape": shape, "out_shape": tuple(out),
                     "neurons": 0 if kind == "flatten" else int(np.prod(out)), "synapses": int(syn)})
        shape = tuple(out)
    if int(np.prod(shape)) != n_classes or len(shape) != 1:
        raise InputError(f"the last layer must have {n_classes} neurons (one per class); it has {shape}")
    return plan


def layer_costs(plan: List[Dict]) -> List[LayerCost]:
    return [LayerCost(p["name"], p["neurons"], p["synapses"]) for p in plan if p["kind"] != "flatten"]


def build_model(recipe: Recipe, target: Target, input_shape: Sequence[int], n_classes: int) -> SpikingNet:
    """Create the modules (weights zero until :func:`initialize`)."""
    plan = plan_layers(recipe, input_shape, n_classes)
    q = target.quantized
    sur = Surrogate(recipe.train.surrogate)
    bias = bool(recipe.model.bias)
    mods = []
    for p, l in zip(plan, recipe.model.layers):
        kind = p["kind"]
        if kind == "dense":
            mods.append(SpikingDense(p["name"], int(np.prod(p["in_shape"])), l.out, _neuron(recipe, l), quantized=q,
                                     recurrent=bool(l.recurrent), bias=bias, surrogate=sur))
        elif kind == "conv":
            mods.append(SpikingConv(p["name"], p["in_shape"], l.channels, l.kernel, _neuron(recipe, l),
                                    stride=_or(l.stride, 1), padding=_or(l.padding, 0), quantized=q, bias=bias,
                                    surrogate=sur))
        elif kind == "pool":
            mods.append(SpikingSumPool(p["name"], p["in_shape"], l.kernel, _neuron(recipe, l),
                                       pool_weight=_or(l.weight, 64), quantized=q, surrogate=sur))
        else:
            mods.append(FlattenLayer(p["name"], p["in_shape"]))
    meta = {"recipe": recipe.name}
    if recipe.model.readout != "spikes":  # spike-readout specs stay as before (no key: "spikes")
        meta["readout"] = recipe.model.readout
    return SpikingNet(input_shape, mods, quantized=q, metadata=meta)


# ------------------------------------------------------------------------------------------------
# initialization
# ------------------------------------------------------------------------------------------------
def initialize(model: SpikingNet, recipe: Recipe, calib: torch.Tensor, seed: int, method: Optional[str] = None) -> Dict:
    """Fill the model's weights, weight exponents and thresholds; return the init report (a dict)."""
    method = method or recipe.init.method
    target_rate = float(recipe.init.target_rate)
    spec = model.to_spec()
    # identity belongs to the hardware-aware init; baselines (kaiming, ...) run as their papers state them
    hw = method in HARDWARE_METHODS
    opts = {"identity": float(recipe.init.identity)} if (hw and recipe.init.identity) else {}
    new_spec, rep = init_spec(spec, method, seed=int(seed), calib_input=calib.numpy(), target_rate=target_rate,
                              **opts)
    model.load_spec(new_spec)
    if model.readout == "voltage":  # the calibrated threshold becomes the loss's unit of v; the layer never fires
        last = model.layers[-1]
        model.readout_scale.fill_(float(last.vth_mant) * (1 << loihi.VTH_SHIFT))
        last.vth_mant = loihi.READOUT_VTH_MANT
    d = rep.to_dict()
    d["implementation"] = "snnhw.init.init_spec"
    return d
