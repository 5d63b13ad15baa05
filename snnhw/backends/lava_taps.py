"""Populations fed through delayed synaptic taps, on Lava's CPU simulator (fixed_pt): the subtract-reset
emulation of :mod:`snnhw.nir_import.emulate`.

Each :class:`TapInput` into a LIF is built from Lava ``Sparse`` processes, ``K`` samples side by side
(block-diagonal weights, as :mod:`snnhw.backends.lava_pack` packs them):

* tap 0: coarse and fine ``Sparse`` from the source straight into the LIF's ``a_in`` (one step later);
* taps 1..m: a **relay**, one memoryless LIF of ``m * n_src`` neurons per sample (``du = 4095``,
  ``dv = 4096``, threshold 0, weight 1: it spikes exactly when its input does, one step later). A
  ``Sparse`` copies the source into block 0, a ``Sparse`` from the relay onto itself copies block j
  into block j + 1, so block j holds the source's spikes j + 1 steps later; coarse and fine ``Sparse``
  from the whole relay into the LIF carry taps 1..m side by side.

That is at most seven processes per input whatever the number of taps (Lava's ``DelaySparse`` rebuilds
its delay-split matrices every step, which made a 40-tap layer take minutes). A source equal to the
population itself is its recurrent input; source -2 is an always-on unit (one LIF neuron per sample whose
bias makes it spike every step from the first), for biases and leaks.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from snnhw.backends.lava_runtime import require_lava, run_cfg
from snnhw.backends.lava_stages import LavaSynapse, _as_lava_param, _check_run_args, _read_recorder_files, _synapse
from snnhw.backends.quiet import quiet
from snnhw.errors import InputError

ON_SRC = -2  # an always-on unit (snnhw.nir_import.emulate.ON_SRC)
RELAY_DU = 4095  # Lava du for i_decay 4096: u keeps nothing
RELAY_DV = 4096


@dataclass
class TapInput:
    """Synapses from ``src`` (-1: the input, else a population index; its own: recurrent) into a population,
    per sample: tap 0 ``w0``/``e0`` + fine ``w0_fine``/``f0`` [n, n_src]; taps 1..``n_later`` side by side
    in ``later``/``e1`` + ``later_fine``/``f1`` [n, n_later * n_src] (block j-1 = tap j)."""

    src: int
    w0: np.ndarray
    e0: int
    w0_fine: np.ndarray
    f0: int
    later: Optional[np.ndarray]
    e1: int
    later_fine: Optional[np.ndarray]
    f1: int
    n_later: int


@dataclass
class TapPop:
    """A LIF population per sample (Lava units) and its inputs."""

    n: int
    du: int
    dv: int
    vth: int
    inputs: List[TapInput]


def _kron(w: np.ndarray, k: int):
    from scipy import sparse

    return sparse.kron(sparse.identity(k, dtype=np.int64, format="csr"), sparse.csr_matrix(np.asarray(w, np.int64)),
                       format="csr")


def _connect(L, port, target, w, exp: int, k: int) -> None:
    """A Sparse of ``k`` copies of ``w`` at ``exp`` from ``port`` into ``target``'s ``a_in`` (skipped if 0)."""
    if w is None or not np.any(w):
        return
    syn = _synapse(L, LavaSynapse(_kron(w, k), int(exp), sparse=True))
    port.connect(syn.s_in)
    syn.a_out.connect(target.a_in)


def _relay(L, port, n_src: int, m: int, k: int):
    """The relay LIF of ``m`` blocks of ``n_src`` per sample, fed from ``port`` (module docstring)."""
    relay = L.LIF(shape=(k * m * n_src,), du=RELAY_DU, dv=RELAY_DV, vth=0, bias_mant=0, bias_exp=0)
    eye = np.eye(n_src, dtype=np.int64)
    first = np.zeros((m * n_src, n_src), np.int64)
    first[:n_src] = eye
    _connect(L, port, relay, first, 0, k)
    if m > 1:
        shift = np.zeros((m * n_src, m * n_src), np.int64)
        for j in range(m - 1):
            shift[(j + 1) * n_src:(j + 2) * n_src, j * n_src:(j + 1) * n_src] = eye
        _connect(L, relay.s_out, relay, shift, 0, k)
    return relay


def _build(L, pops: Sequence[TapPop], src, k: int, T: int, tmp: str) -> List[str]:
    from snnhw.backends import lava_procs

    lifs, paths = [], []
    on = None
    if any(inp.src == ON_SRC for p in pops for inp in p.inputs):  # v = u + 1 > 0 every step
        on = L.LIF(shape=(k,), du=RELAY_DU, dv=RELAY_DV, vth=0, bias_mant=1, bias_exp=0)
    for i, p in enumerate(pops):
        lif = L.LIF(shape=(k * p.n,), du=_as_lava_param(p.du), dv=_as_lava_param(p.dv), vth=_as_lava_param(p.vth),
                    bias_mant=0, bias_exp=0)
        lifs.append(lif)
        for inp in p.inputs:
            if not ON_SRC <= inp.src <= i:
                raise InputError(f"population {i}: input from {inp.src} is not an earlier population or itself")
            port = on.s_out if inp.src == ON_SRC else src.s_out if inp.src < 0 else lifs[inp.src].s_out
            _connect(L, port, lif, inp.w0, inp.e0, k)
            _connect(L, port, lif, inp.w0_fine, inp.f0, k)
            if inp.n_later:
                relay = _relay(L, port, inp.w0.shape[1], inp.n_later, k)
                _connect(L, relay.s_out, lif, inp.later, inp.e1, k)
                _connect(L, relay.s_out, lif, inp.later_fine, inp.f1, k)
        path = os.path.join(tmp, f"pop{i}.npy")
        rec = lava_procs.SpikeRecorder(shape=(k * p.n,), steps=T, path=path)
        lif.s_out.connect(rec.a_in)
        paths.append(path)
    return paths


def run_taps(pops: Sequence[TapPop], x: np.ndarray, k: int) -> List[np.ndarray]:
    """Run ``pops`` on ``x`` [k, T, n_in] (0/1 spikes; column t sent at step t + 1), all ``k`` samples in
    one Lava run; returns per population its spikes [k * n, T] (sample-major)."""
    require_lava()
    x = np.asarray(x)
    data = x.transpose(0, 2, 1).reshape(k * x.shape[2], x.shape[1])
    data, _, T = _check_run_args(data, False, False, "recorder")
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF
    from lava.proc.sparse.process import Sparse
    from types import SimpleNamespace

    L = SimpleNamespace(LIF=LIF, Sparse=Sparse)
    with quiet(), tempfile.TemporaryDirectory(prefix="snnhw-lava-taps-") as tmp:
        src = Source(data=data.astype(np.int32))
        paths = _build(L, pops, src, k, T, tmp)
        try:
            src.run(condition=RunSteps(num_steps=T), run_cfg=run_cfg(False))
        finally:
            src.stop()
        return [o.s for o in _read_recorder_files(paths, False)]
