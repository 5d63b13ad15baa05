"""Checkpoints, written atomically (temp file in the same directory + ``os.replace``).

A checkpoint holds the float shadow parameters (``state_dict``), the per-layer integer constants that
are not parameters (neuron decays and ``vth_mant``, ``weight_exp``, ``rec_exp``, pool mantissa), the
optimizer and scheduler state, the number of completed epochs, the training history and the init
report — everything :func:`snnhw.train.loop.train` needs to resume exactly where the epoch began.
"""
from __future__ import annotations

import io
import os
import tempfile
from typing import Dict

import torch

from snnhw.core.layers import SpikingDense, SpikingNet, SpikingSumPool
from snnhw.spec import Neuron


def atomic_write_bytes(path: str, data: bytes) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def model_constants(model: SpikingNet):
    out = []
    for l in model.neuron_layers():
        c = {"name": l.name, "neuron": dict(vars(l.neuron)), "weight_exp": l.weight_exp}
        if isinstance(l, SpikingDense):
            c["rec_exp"] = l.rec_exp
        if isinstance(l, SpikingSumPool):
            c["pool_weight"] = l.pool_weight
        out.append(c)
    return out


def load_model_constants(model: SpikingNet, constants) -> None:
    by_name = {c["name"]: c for c in constants}
    for l in model.neuron_layers():
        c = by_name[l.name]
        l.neuron = Neuron(**c["neuron"])
        l.weight_exp = c["weight_exp"]
        if "rec_exp" in c:
            l.rec_exp = c["rec_exp"]
        if "pool_weight" in c:
            l.pool_weight = c["pool_weight"]


def save_checkpoint(path: str, model: SpikingNet, optimizer, scheduler, epoch: int, extra: Dict) -> None:
    state = {"format": "snnhw-checkpoint-1", "epoch": int(epoch), "model": model.state_dict(),
             "constants": model_constants(model), "optimizer": optimizer.state_dict() if optimizer else None,
             "scheduler": scheduler.state_dict() if scheduler else None, **extra}
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str) -> Dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file
        raise ValueError(f"cannot read checkpoint {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    if not isinstance(state, dict) or state.get("format") != "snnhw-checkpoint-1":
        raise ValueError(f"{path} is not an snnhw checkpoint")
    return state
