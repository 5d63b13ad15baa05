"""Evaluation of a trained network: class decision, validation split, accuracy, firing rates, synaptic
operations.

Validation: :func:`carve_validation` holds out a stratified, seeded share of the *training* split
(recipe ``data.val_fraction``); training selects its epoch on it, and the test split is used only for
the final number.

Class decision (everywhere in snnhw, :func:`predict`): with the spike readout (recipe ``model.readout =
"spikes"``) the output neuron with the most spikes over the sample's steps; with the voltage readout
(``"voltage"``) the output neuron with the highest mean post-reset v over the sample's steps (state
units; the population never fires). Ties go to the lowest index (``numpy.argmax``); a silent spike
readout predicts class 0. The loss's logits (:func:`logits`): ``logit_scale`` times the spike counts,
or times the mean v divided by the model's ``readout_scale`` (the output layer's calibrated threshold
``vth_mant << 6``: the mean v in units of the threshold the layer would have had as a spiking layer).
Firing rates are spikes per neuron per time step.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from snnhw.core.layers import SpikingConv, SpikingDense, SpikingNet, SpikingSumPool
from snnhw.data import Dataset, Encoder
from snnhw.data.datasets import _split as stratified_split

EVAL_BATCH = 256  # test samples per forward pass in evaluate()
VAL_SEED_OFFSET = 1000003  # the validation carve shuffles with split_seed + VAL_SEED_OFFSET


@dataclasses.dataclass
class Validation:
    """The validation samples, as a :class:`Dataset` whose *test* arrays are the validation samples
    (so :func:`evaluate` runs on it unchanged), and their encoder index ``offset``."""

    data: Dataset
    offset: int


def carve_validation(data: Dataset, fraction: float, split_seed: int, fold: int = 0
                     ) -> "tuple[Dataset, Optional[Validation]]":
    """(training data without the validation samples, the validation samples) from ``data``: per class,
    the share ``fraction`` of the training split (seeded by ``split_seed``, stratified like the
    train/test split; ``fold`` k: the k-th disjoint share, for k-fold cross-validation, see
    ``benchmarks/cv.py``). The test split is untouched. ``fraction`` 0: ``(data, None)``.

    Encoder indices (the rate code's per-sample seeds): the kept training samples are 0..n-1, the test
    samples follow them, the validation samples follow the test samples."""
    if fraction <= 0:
        return data, None
    xtr, ytr, xval, yval = stratified_split(data.x_train, data.y_train, fraction, split_seed + VAL_SEED_OFFSET, fold)
    train = dataclasses.replace(data, x_train=xtr, y_train=ytr)
    view = dataclasses.replace(data, x_train=xtr, y_train=ytr, x_test=xval, y_test=yval)
    return train, Validation(view, len(ytr) + len(data.y_test))


def predict(out, readout: str = "spikes") -> np.ndarray:
    """Class per sample from the readout ``out`` [samples, steps, classes] (module docstring): output
    spikes -> most spikes; ``readout="voltage"``: the output v -> highest mean v over the steps (the
    same as the highest sum, taken in int64, or float64 for float v: exact for the chip's integers,
    |v| < 2**23). Ties -> lowest index."""
    out = np.asarray(out)
    if readout == "voltage":
        return np.argmax(out.sum(axis=1, dtype=np.float64 if out.dtype.kind == "f" else np.int64), axis=1)
    return np.argmax(out.sum(axis=1), axis=1)


def logits(out: torch.Tensor, model: SpikingNet, logit_scale: float) -> torch.Tensor:
    """The loss's logits [B, classes] from the model's readout ``out`` [B, T, classes] (module docstring)."""
    if model.readout == "voltage":
        return (logit_scale / float(model.readout_scale)) * out.mean(1)
    return logit_scale * out.sum(1)


def encode_split(encoder: Encoder, x: np.ndarray, idx: np.ndarray, offset: int = 0) -> torch.Tensor:
    """Spikes of samples ``x[idx]``; ``offset + idx`` are their dataset indices (the rate encoder's seeds:
    the test split's indices follow the training split's)."""
    return encoder(x[idx], index=idx + offset)


def evaluate(model: SpikingNet, data: Dataset, encoder: Encoder, n: int = 0, batch: int = EVAL_BATCH,
             device: str = "cpu", offset: Optional[int] = None, logit_scale: float = 1.0) -> Dict:
    """Test-split accuracy, per-layer rates and mean cross-entropy of the :func:`logits` of ``model`` on
    the first ``n`` test samples (0 = all): ``{"accuracy", "n", "rates", "loss"}``."""
    n = len(data.y_test) if not n else min(n, len(data.y_test))
    offset = len(data.y_train) if offset is None else offset
    preds, rates, loss = [], None, 0.0
    model.eval()
    with torch.no_grad():
        for start in range(0, n, batch):
            idx = np.arange(start, min(n, start + batch))
            x = encode_split(encoder, data.x_test, idx, offset).to(device)
            out, spikes = model(x, return_all=True)
            preds.append(predict(out.cpu().numpy(), model.readout))
            y = torch.as_tensor(data.y_test[idx], device=out.device)
            loss += float(F.cross_entropy(logits(out, model, logit_scale), y, reduction="sum"))
            r = np.array([float(s.sum()) for s in spikes])
            rates = r if rates is None else rates + r
    model.train()
    sizes = np.array([int(np.prod(l.out_shape)) for l in model.neuron_layers()])
    pred = np.concatenate(preds)
    return {"accuracy": float(np.mean(pred == data.y_test[:n])), "n": int(n),
            "rates": (rates / (sizes * n * encoder.total_steps)).tolist(), "loss": loss / max(1, n)}


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
