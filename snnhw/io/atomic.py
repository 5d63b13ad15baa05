"""Atomic file output: write to a temporary file in the target's directory, then ``os.replace``.

A reader never sees a half-written file, and an interrupted run leaves the previous file (or none).
Every file snnhw writes goes through :func:`atomic_path` or one of the helpers built on it; files are
made world-readable (0644) like an ordinary ``open(..., "w")`` would under a default umask.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temporary path beside ``path``; on normal exit it replaces ``path``, else it is removed.

    ``suffix`` lets writers that insist on an extension (``np.save``, ``savefig``) see one."""
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=suffix, dir=d)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (flushed and fsynced before the rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text(path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def to_jsonable(o: Any) -> Any:
    """``o`` with numpy scalars/arrays, paths, tuples and dataclasses turned into JSON types.

    Non-finite floats become ``None`` (JSON has no inf/nan)."""
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return to_jsonable(dataclasses.asdict(o))
    if isinstance(o, dict):
        return {str(k): to_jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [to_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return to_jsonable(o.tolist())
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, (int, np.integer)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if math.isfinite(float(o)) else None
    if isinstance(o, Path):
        return str(o)
    return o


def write_json(path, data: Any, indent: int = 2, sort_keys: bool = False) -> None:
    """Write ``data`` as JSON (after :func:`to_jsonable`) atomically, newline-terminated."""
    write_text(path, json.dumps(to_jsonable(data), indent=indent, sort_keys=sort_keys) + "\n")


def save_npy(path, arr) -> None:
    """``np.save`` atomically."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr))
    write_bytes(path, buf.getvalue())


def torch_save(path, obj) -> None:
    """``torch.save`` atomically."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes(path, buf.getvalue())


def save_figure(fig, path, dpi: int = 90, **savefig_kwargs) -> None:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", **savefig_kwargs)
    finally:
        plt.close(fig)
