"""Checkpoints: everything :func:`snnhw.train.loop.train` needs to resume exactly where an epoch began.

A checkpoint is a dict saved with ``torch.save`` (atomically, :func:`snnhw.io.atomic.torch_save`):
``format`` (:data:`FORMAT`), ``epoch`` (completed epochs), ``model`` (the model's ``state_dict``: the
float shadow parameters and the per-layer chip constants, which are buffers), ``optimizer`` and
``scheduler`` (their ``state_dict``, or None), plus the caller's extra keys (history, init report,
training seconds).
"""
from __future__ import annotations

import os
import pickle
import zipfile
from typing import Dict

import torch

from snnhw.errors import FileFormatError, MissingFileError
from snnhw.io.atomic import torch_save

FORMAT = "snnhw-checkpoint-2"  # 1: constants stored beside the state_dict (before they were buffers)


def save_checkpoint(path: str, model: torch.nn.Module, optimizer, scheduler, epoch: int, extra: Dict) -> None:
    """Write the checkpoint of ``model`` after ``epoch`` completed epochs to ``path`` atomically."""
    state = {"format": FORMAT, "epoch": int(epoch), "model": model.state_dict(),
             "optimizer": optimizer.state_dict() if optimizer else None,
             "scheduler": scheduler.state_dict() if scheduler else None, **extra}
    torch_save(path, state)


def load_checkpoint(path: str) -> Dict:
    """The checkpoint dict at ``path``; :class:`~snnhw.errors.FileFormatError` (one line) for a file that
    is not an snnhw checkpoint of this format, :class:`~snnhw.errors.MissingFileError` if it is absent."""
    if not os.path.isfile(path):
        raise MissingFileError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; do not unpickle anything else
        raise FileFormatError(f"cannot read checkpoint {path}: not a torch.save zip archive (truncated or foreign)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, EOFError, RuntimeError, zipfile.BadZipFile) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FileFormatError(f"cannot read checkpoint {path}: {first}") from None
    fmt = state.get("format") if isinstance(state, dict) else None
    if fmt != FORMAT:
        found = f"format '{fmt}'" if isinstance(fmt, str) else "no snnhw checkpoint format"
        raise FileFormatError(f"{path} is not an snnhw checkpoint this version reads ({found}; expected '{FORMAT}')")
    return state

