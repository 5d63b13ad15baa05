"""From a recipe to a trainable :class:`~snnhw.core.layers.SpikingNet`: shapes, budget check, init.

:func:`plan_layers` computes every layer's shape, neurons and synapses from the recipe alone (no
weights allocated), so :meth:`snnhw.targets.Target.check_fit` can refuse a model before anything big
is built. :func:`build_model` creates the modules; :func:`initialize` fills weights, ``weight_exp``
and ``vth_mant`` through :func:`snnhw.init.init_spec` when that package is present, else through the
small built-in initializers here (``hardware``: per-layer threshold chosen on calibration data so the
layer fires at ``target_rate``; ``kaiming``/``pytorch``: float inits mapped to mantissas with lava-dl's
scale, 1.0 -> 64, threshold 1.25 -> vth_mant 80).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from snnhw import loihi
from snnhw.core.layers import (WEIGHT_MANT_MAX, FlattenLayer, SpikingConv, SpikingDense, SpikingNet,
                               SpikingSumPool)
from snnhw.core.surrogate import Surrogate
from snnhw.spec import Neuron
from snnhw.targets import LayerCost, Target


def input_shape_for(recipe: Dict, feature_shape: Sequence[int], n_channels: int) -> Tuple[int, ...]:
    """The network's input shape: (C, H, W) when the first layer is a conv, else (channels,)."""
    if recipe["model"]["layers"][0]["kind"] in ("conv", "pool"):
        if int(np.prod(feature_shape)) != n_channels or len(feature_shape) != 3:
            raise ValueError(f"a conv/pool first layer needs image features; this dataset gives {tuple(feature_shape)}")
        return tuple(int(v) for v in feature_shape)
    return (int(n_channels),)


def _neuron(recipe: Dict, layer: Dict) -> Neuron:
    n = recipe["neuron"]
    vth = layer.get("vth_mant", n.get("vth_mant", 0)) or 64
    return Neuron(i_decay=layer.get("i_decay", n["i_decay"]), v_decay=layer.get("v_decay", n["v_decay"]),
                  vth_mant=vth)


def plan_layers(recipe: Dict, input_shape: Sequence[int], n_classes: int) -> List[Dict]:
    """Per recipe layer: kind, name, in/out shape, neurons, synapses. Raises ValueError on shape errors."""
    shape = tuple(int(v) for v in input_shape)
    plan = []
    layers = recipe["model"]["layers"]
    for i, l in enumerate(layers):
        kind, name = l["kind"], l["name"]
        if kind == "dense":
            n_in = int(np.prod(shape))
            out = (l["out"],)
            syn = n_in * l["out"] + (l["out"] ** 2 if l.get("recurrent") else 0)
        elif kind == "flatten":
            out, syn = (int(np.prod(shape)),), 0
        else:
            if len(shape) != 3:
                raise ValueError(f"layer {name}: {kind} needs a (C, H, W) input, got {shape} (add no flatten before it)")
            c, h, w = shape
            k = l["kernel"]
            if kind == "conv":
                s, p = l.get("stride", 1), l.get("padding", 0)
                out = (l["channels"], (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
                syn = int(np.prod(out)) * c * k * k
            else:
                out = (c, (h - k) // k + 1, (w - k) // k + 1)
                syn = int(np.prod(out)) * k * k
            if min(out) < 1:
                raise ValueError(f"layer {name}: output shape {out} is empty (input {shape}, kernel {k})")
        plan.append({"kind": kind, "name": name, "in_shape": shape, "out_shape": tuple(out),
                     "neurons": 0 if kind == "flatten" else int(np.prod(out)), "synapses": int(syn)})
        shape = tuple(out)
    if int(np.prod(shape)) != n_classes or len(shape) != 1:
        raise ValueError(f"the last layer must have {n_classes} neurons (one per class); it has {shape}")
    return plan


def layer_costs(plan: List[Dict]) -> List[LayerCost]:
    return [LayerCost(p["name"], p["neurons"], p["synapses"]) for p in plan if p["kind"] != "flatten"]


def build_model(recipe: Dict, target: Target, input_shape: Sequence[int], n_classes: int) -> SpikingNet:
    """Create the modules (weights zero until :func:`initialize`)."""
    plan = plan_layers(recipe, input_shape, n_classes)
    q = target.quantized
    sur = Surrogate(recipe["train"]["surrogate"])
    bias = bool(recipe["model"]["bias"])
    mods = []
    for p, l in zip(plan, recipe["model"]["layers"]):
        kind = p["kind"]
        if kind == "dense":
            mods.append(SpikingDense(p["name"], int(np.prod(p["in_shape"])), l["out"], _neuron(recipe, l), quantized=q,
                                     recurrent=bool(l.get("recurrent", False)), bias=bias, surrogate=sur))
        elif kind == "conv":
            mods.append(SpikingConv(p["name"], p["in_shape"], l["channels"], l["kernel"], _neuron(recipe, l),
                                    stride=l.get("stride", 1), padding=l.get("padding", 0), quantized=q, bias=bias,
                                    surrogate=sur))
        elif kind == "pool":
            mods.append(SpikingSumPool(p["name"], p["in_shape"], l["kernel"], _neuron(recipe, l),
                                       pool_weight=l.get("weight", 64), quantized=q, surrogate=sur))
        else:
            mods.append(FlattenLayer(p["name"], p["in_shape"]))
    return SpikingNet(input_shape, mods, quantized=q, metadata={"recipe": recipe["recipe"]["name"]})


# ------------------------------------------------------------------------------------------------
# initialization
# ------------------------------------------------------------------------------------------------
def _has_init_package() -> bool:
    try:
        import snnhw.init  # noqa: F401
        return hasattr(snnhw.init, "init_spec")
    except ImportError:
        return False


def _layer_rate(layer, s_in: torch.Tensor) -> Tuple[float, torch.Tensor]:
    with torch.no_grad():
        out = layer(s_in)
    return float(out.mean()), out


def _fit_threshold(layer, s_in: torch.Tensor, target_rate: float) -> None:
    """Bisect vth_mant (integer, legal range) so the layer's mean rate on ``s_in`` is closest to target."""
    lo, hi = 1, loihi.RANGES["vth_mant"][1]
    best = None
    while lo <= hi:
        mid = (lo + hi) // 2
        layer.neuron.vth_mant = mid if layer.quantized else float(mid)
        r, _ = _layer_rate(layer, s_in)
        if best is None or abs(r - target_rate) < abs(best[1] - target_rate):
            best = (mid, r)
        if r > target_rate:
            lo = mid + 1
        else:
            hi = mid - 1
    layer.neuron.vth_mant = best[0] if layer.quantized else float(best[0])


def _builtin_init(model: SpikingNet, method: str, seed: int, calib: torch.Tensor, target_rate: float,
                  fixed_vth: Dict[str, bool]) -> Dict:
    g = torch.Generator().manual_seed(int(seed))
    s = calib
    report = {"method": method, "implementation": "snnhw.train.build (built-in)", "layers": []}
    for layer in model.layers:
        if isinstance(layer, FlattenLayer):
            continue
        entry = {"name": layer.name}
        if isinstance(layer, (SpikingDense, SpikingConv)):
            fan_in = int(layer.weight[0].numel())
            if method == "hardware":
                # mantissa std 32 (16 quantization steps) keeps the 8-bit grid well used; the threshold
                # then sets the scale (chosen on calibration data below)
                std = 32.0
                layer.weight_exp = 0
            elif method == "kaiming":
                std = 64.0 * math.sqrt(2.0 / fan_in)
            elif method == "pytorch":
                std = 64.0 / math.sqrt(3.0 * fan_in)  # U(+-1/sqrt(n)) has std 1/sqrt(3n)
            else:
                raise ValueError(f"unknown init method '{method}' (built-in: hardware, kaiming, pytorch)")
            with torch.no_grad():
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * std)
                if getattr(layer, "weight_rec", None) is not None:
                    layer.weight_rec.copy_(torch.randn(layer.weight_rec.shape, generator=g) * std * 0.5)
                if layer.bias is not None:
                    layer.bias.zero_()
            if method != "hardware" and not fixed_vth.get(layer.name):
                layer.neuron.vth_mant = 80 if layer.quantized else 80.0
        if method == "hardware" and not fixed_vth.get(layer.name):
            _fit_threshold(layer, s, target_rate)
        layer.legalize_constants()
        rate, s = _layer_rate(layer, s)
        entry.update({"vth_mant": layer.neuron.vth_mant, "weight_exp": layer.weight_exp, "calib_rate": rate})
        report["layers"].append(entry)
    return report


def initialize(model: SpikingNet, recipe: Dict, calib: torch.Tensor, seed: int, method: Optional[str] = None) -> Dict:
    """Fill the model's weights, weight exponents and thresholds; return the init report (a dict)."""
    method = method or recipe["init"]["method"]
    target_rate = float(recipe["init"]["target_rate"])
    fixed_vth = {l["name"]: bool(l.get("vth_mant") or recipe["neuron"].get("vth_mant"))
                 for l in recipe["model"]["layers"]}
    if _has_init_package():
        from snnhw.init import init_spec

        spec = model.to_spec()
        new_spec, rep = init_spec(spec, method, seed=int(seed), calib_input=calib.numpy(), target_rate=target_rate)
        model.load_spec(new_spec)
        d = rep.to_dict() if hasattr(rep, "to_dict") else dict(rep)
        d.setdefault("method", method)
        d["implementation"] = "snnhw.init.init_spec"
        return d
    return _builtin_init(model, method, seed, calib, target_rate, fixed_vth)

