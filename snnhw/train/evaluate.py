"""Evaluation of a trained network: class decision, test accuracy, firing rates, synaptic operations.

Class decision (everywhere in snnhw): the output neuron with the most spikes over the sample's steps;
ties go to the lowest index (``numpy.argmax``). A silent output layer predicts class 0. Firing rates
are spikes per neuron per time step.
"""
from __future__ import annotations

import copy
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from snnhw.core.layers import SpikingConv, SpikingDense, SpikingNet, SpikingSumPool
from snnhw.data import Dataset, Encoder

EVAL_BATCH = 256  # test samples per forward pass in evaluate()


def predict(out_spikes) -> np.ndarray:
    """Class per sample from output spikes [samples, steps, classes]: most spikes, ties -> lowest index."""
    counts = np.asarray(out_spikes).sum(axis=1)
    return np.argmax(counts, axis=1)


def encode_split(encoder: Encoder, x: np.ndarray, idx: np.ndarray, offset: int = 0) -> torch.Tensor:
    """Spikes of samples ``x[idx]``; ``offset + idx`` are their dataset indices (the rate encoder's seeds:
    the test split's indices follow the training split's)."""
    return encoder(x[idx], index=idx + offset)


def evaluate(model: SpikingNet, data: Dataset, encoder: Encoder, n: int = 0, batch: int = EVAL_BATCH,
             device: str = "cpu", offset: Optional[int] = None) -> Dict:
    """Test-split accuracy and per-layer rates of ``model`` on the first ``n`` test samples (0 = all):
    ``{"accuracy", "n", "rates"}``."""
    n = len(data.y_test) if not n else min(n, len(data.y_test))
    offset = len(data.y_train) if offset is None else offset
    preds, rates = [], None
    model.eval()
    with torch.no_grad():
        for start in range(0, n, batch):
            idx = np.arange(start, min(n, start + batch))
            x = encode_split(encoder, data.x_test, idx, offset).to(device)
            out, spikes = model(x, return_all=True)
            preds.append(predict(out.cpu().numpy()))
            r = np.array([float(s.sum()) for s in spikes])
            rates = r if rates is None else rates + r
    model.train()
    sizes = np.array([int(np.prod(l.out_shape)) for l in model.neuron_layers()])
    pred = np.concatenate(preds)
    return {"accuracy": float(np.mean(pred == data.y_test[:n])), "n": int(n),
            "rates": (rates / (sizes * n * encoder.total_steps)).tolist()}


def float_twin(model: SpikingNet) -> SpikingNet:
    """The same network with the float shadow weights and the float CUBA LIF (no quantization)."""
    twin = copy.deepcopy(model)
    twin.quantized = False
    for l in twin.neuron_layers():
        l.quantized = False
    return twin


def spike_rates(layer_spikes) -> List[float]:
    """Mean of each layer's spike array (spikes per neuron per step)."""
    return [float(np.asarray(s, dtype=np.float64).mean()) for s in layer_spikes]


def _pool_or_conv_events(layer, s_in: torch.Tensor) -> float:
    B, T = s_in.shape[:2]
    x = s_in.reshape(B * T, *layer.input_shape)
    c = layer.input_shape[0]
    if isinstance(layer, SpikingConv):
        ones = torch.ones(1, c, *layer.weight.shape[2:])
        cnt = F.conv2d(x, ones, stride=layer.stride, padding=layer.padding).sum() * layer.weight.shape[0]
    else:
        ones = torch.ones(c, 1, *layer.kernel)
        cnt = F.conv2d(x, ones, stride=layer.kernel, groups=c).sum()
    return float(cnt)


def synops(model: SpikingNet, inputs: np.ndarray, layer_spikes) -> float:
    """Mean synaptic events per inference: for every layer, each input spike times the number of
    neurons it reaches (recurrent spikes included)."""
    total = 0.0
    s_in = torch.as_tensor(np.asarray(inputs) != 0, dtype=torch.float32)
    k = 0
    for layer in model.layers:
        if not hasattr(layer, "neuron"):
            continue
        out = torch.as_tensor(np.asarray(layer_spikes[k]) != 0, dtype=torch.float32)
        if isinstance(layer, SpikingDense):
            total += float(s_in.sum()) * layer.n_out
            if layer.weight_rec is not None:
                total += float(out.sum()) * layer.n_out
        elif isinstance(layer, (SpikingConv, SpikingSumPool)):
            total += _pool_or_conv_events(layer, s_in)
        s_in = out
        k += 1
    return total / max(1, len(inputs))
