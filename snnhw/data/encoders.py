"""Spike encoders: features -> binary spikes [samples, steps, channels] (what the chip receives).

Every encoder is deterministic given its arguments (``rate`` seeds a generator per sample from
``seed`` and the sample's index), so the same sample always becomes the same spikes, in every
process and epoch; the verification inputs written to a run directory are exactly these spikes.

* ``regular``  — static features in [0, 1]: a deterministic rate code. Channel value ``p`` spikes at
  step t iff ``floor((t + 1) p + 1/2) > floor(t p + 1/2)``, i.e. round(T p) spikes, evenly spaced.
* ``rate``     — static features in [0, 1]: Bernoulli(p) per step (Poisson-like), seeded per sample.
* ``latency``  — static features in [0, 1]: one spike at step ``round((1 - p) (T - 1))`` if ``p >``
  :data:`LATENCY_MIN` (0.1).
* ``thermometer`` — series [samples, L] (e.g. mnist1d): step t carries series value ``x[t * L // T]``
  as ``levels`` binary channels; channel k is on iff the value exceeds level k (levels evenly spaced
  between ``lo`` and ``hi``).
* ``delta`` — series: a threshold-crossing code of the same levels, ``2 * levels`` channels: up-channel
  k spikes at the step where the value rises above level k, down-channel k where it falls back to or
  below it (the state before step 0 is all-off, so step 0 sends the up-crossings of the first value).
* ``thermometer_delta`` — series: both, ``3 * levels`` channels (thermometer first, then up, down).
* ``window`` (series encodings): each step also carries the codes of the ``window - 1`` previous
  steps (a tapped delay line in the input neurons; channel group j holds step ``t - j``, silent before
  the start), ``window`` times the channels.
Every encoder appends ``pad`` all-zero steps (recipe ``data.pad_steps``), so that spikes of the last
input step can travel through a deep network's one-step-per-layer pipeline before the sample ends.

* ``events``   — already-binned event frames [samples, steps, channels] (tonic datasets); counts
  become single spikes (``count > 0``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from snnhw.errors import InputError

ENCODINGS = ("regular", "rate", "latency", "thermometer", "delta", "thermometer_delta", "events")
SERIES_ENCODINGS = ("thermometer", "delta", "thermometer_delta")  # one series value per step
LATENCY_MIN = 0.1  # latency code: features at or below this value send no spike


@dataclass
class Encoder:
    """Turns feature rows into spikes. ``levels``, ``lo``, ``hi`` and ``window`` are used by the series
    encodings (:data:`SERIES_ENCODINGS`) only."""

    name: str
    steps: int
    seed: int = 0
    levels: int = 16
    lo: float = 0.0
    hi: float = 1.0
    pad: int = 0
    window: int = 1

    @property
    def total_steps(self) -> int:
        """Steps per sample as the chip runs it: ``steps`` encoded + ``pad`` silent steps appended
        (each layer adds one step of pipeline delay; padding lets the last input reach the output)."""
        return int(self.steps) + int(self.pad)

    def __post_init__(self):
        if self.name not in ENCODINGS:
            raise InputError(f"unknown encoding '{self.name}'; choose one of {', '.join(ENCODINGS)}")
        if int(self.steps) < 1:
            raise InputError(f"steps must be >= 1, got {self.steps}")
        if int(self.window) < 1:
            raise InputError(f"window must be >= 1, got {self.window}")

    def series_channels(self) -> int:
        """Channels per step of a series encoding: the level groups times ``window``."""
        groups = {"thermometer": 1, "delta": 2, "thermometer_delta": 3}[self.name]
        return groups * int(self.levels) * int(self.window)

    def channels(self, n_features: int) -> int:
        return n_features * self.series_channels() if self.name in SERIES_ENCODINGS else n_features

    def __call__(self, x: np.ndarray, index: Optional[Sequence[int]] = None) -> torch.Tensor:
        """Spikes as float32 0/1, [samples, steps + pad, channels]. ``index`` = dataset indices (rate seeds)."""
        s = self._encode(np.asarray(x), index)
        if self.pad:
            s = torch.cat([s, torch.zeros(s.shape[0], int(self.pad), s.shape[2])], dim=1)
        return s

    def _encode(self, x: np.ndarray, index) -> torch.Tensor:
        T = int(self.steps)
        if self.name == "events":
            if x.ndim != 3:
                raise InputError(f"event frames must be [samples, steps, channels], got {x.shape}")
            if x.shape[1] != T:
                raise InputError(f"event frames have {x.shape[1]} steps, the recipe says {T}")
            return torch.as_tensor(x > 0, dtype=torch.float32)
        x = x.reshape(x.shape[0], -1).astype(np.float64)
        if self.name in SERIES_ENCODINGS:
            return torch.as_tensor(self._series(x), dtype=torch.float32)
        p = np.clip(x, 0.0, 1.0)
        if self.name == "regular":
            t = np.arange(T, dtype=np.float64)[None, :, None]
            s = np.floor((t + 1) * p[:, None, :] + 0.5) > np.floor(t * p[:, None, :] + 0.5)
            return torch.as_tensor(s, dtype=torch.float32)
        if self.name == "latency":
            s = np.zeros((x.shape[0], T, x.shape[1]), dtype=bool)
            when = np.rint((1.0 - p) * (T - 1)).astype(np.int64)
            n_idx, c_idx = np.nonzero(p > LATENCY_MIN)
            s[n_idx, when[n_idx, c_idx], c_idx] = True
            return torch.as_tensor(s, dtype=torch.float32)
        # rate
        if index is None:
            raise ValueError("the rate encoder needs the samples' dataset indices")
        out = np.empty((x.shape[0], T, x.shape[1]), dtype=bool)
        for row, i in enumerate(index):
            rng = np.random.default_rng([int(self.seed), int(i)])
            out[row] = rng.random((T, x.shape[1])) < p[row][None, :]
        return torch.as_tensor(out, dtype=torch.float32)

    def _series(self, x: np.ndarray) -> np.ndarray:
        """bool [N, T, series_channels()] of a series [N, L] (module docstring)."""
        T, L = int(self.steps), x.shape[1]
        vals = x[:, (np.arange(T) * L) // T]  # [N, T]
        lv = np.linspace(self.lo, self.hi, self.levels + 2)[1:-1]
        th = vals[:, :, None] > lv[None, None, :]
        groups = []
        if self.name in ("thermometer", "thermometer_delta"):
            groups.append(th)
        if self.name in ("delta", "thermometer_delta"):
            prev = np.concatenate([np.zeros_like(th[:, :1]), th[:, :-1]], axis=1)
            groups += [th & ~prev, prev & ~th]
        code = np.concatenate(groups, axis=2)
        lagged = [code] + [np.concatenate([np.zeros_like(code[:, :j]), code[:, :T - j]], axis=1)
                           for j in range(1, min(int(self.window), T + 1))]
        lagged += [np.zeros_like(code)] * (int(self.window) - len(lagged))
        return np.concatenate(lagged, axis=2)
