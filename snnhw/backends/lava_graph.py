"""Lava processes for a DAG of LIF populations: several synapses into one LIF, synaptic delays.

:func:`run_graph` builds ::

    RingBuffer source ──Dense/DelayDense──► LIF_0 ──Dense──► LIF_1 ...
           └──────────────DelayDense(d)──────────────────────► LIF_2 (also fed by LIF_1)

Each :class:`GraphInput` is its own Lava ``Dense`` process (``delay == 0``) or ``DelayDense`` process
(``delay`` extra steps, Loihi 2's synaptic delay, 0..63) from the source's ``s_out`` (the RingBuffer
for ``src == -1``, else population ``src``'s LIF) into the population's ``a_in``; Lava's LIF sums
every input of ``a_in`` (int32), which is how fan-in and skip connections run. A recurrent Dense goes
from a LIF's ``s_out`` back into its own ``a_in``. Every LIF gets a recorder
(:mod:`snnhw.backends.lava_procs`): spikes, and u/v for the populations in ``record``.

Runs on ``Loihi2SimCfg(select_tag="fixed_pt")``; Lava is imported lazily, inside the functions.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np

from snnhw.backends.lava_runtime import require_lava, run_cfg
from snnhw.backends.lava_stages import StageOutput, _as_lava_param, _check_run_args, _read_recorder_files
from snnhw.backends.quiet import quiet
from snnhw.errors import InputError

MAX_DELAY = 63  # Loihi 2's synaptic delay field (6 bits), as Lava's DelayDense checks


@dataclass
class GraphInput:
    """One synapse into a population: from ``src`` (-1: the input), ``weights`` [n_out, n_src] ints as
    given to Lava's Dense, ``weight_exp`` on the sum, ``delay`` extra steps (0: a plain Dense)."""

    src: int
    weights: np.ndarray
    weight_exp: int = 0
    delay: int = 0


@dataclass
class GraphPop:
    """One LIF population (Lava units: ``du = i_decay - 1``, ``dv``, ``vth`` mantissa, bias per neuron)
    with its inputs and optional recurrent weights."""

    n: int
    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray
    bias_exp: int
    inputs: List[GraphInput] = field(default_factory=list)
    weights_rec: Optional[np.ndarray] = None
    rec_exp: int = 0


def _synapse(inp: GraphInput):
    from lava.proc.dense.process import DelayDense, Dense

    kw = dict(weights=np.asarray(inp.weights).astype(np.int64), weight_exp=int(inp.weight_exp), num_weight_bits=8)
    if inp.delay:
        if not 0 < inp.delay <= MAX_DELAY:
            raise InputError(f"synaptic delay {inp.delay} is outside Loihi 2's 0..{MAX_DELAY}")
        return DelayDense(delays=int(inp.delay), **kw)
    return Dense(**kw)


def _build(pops: Sequence[GraphPop], src, record: Sequence[int], T: int, tmp: str):
    """The LIFs, their synapses and recorders; returns the recorder file paths."""
    from lava.proc.dense.process import Dense
    from lava.proc.lif.process import LIF

    from snnhw.backends import lava_procs

    lifs, paths = [], []
    for i, p in enumerate(pops):
        lif = LIF(shape=(p.n,), du=_as_lava_param(p.du), dv=_as_lava_param(p.dv), vth=_as_lava_param(p.vth),
                  bias_mant=_as_lava_param(p.bias_mant), bias_exp=_as_lava_param(p.bias_exp))
        for inp in p.inputs:
            if not -1 <= inp.src < i:
                raise InputError(f"population {i}: input from {inp.src} is not an earlier population")
            syn = _synapse(inp)
            (src.s_out if inp.src < 0 else lifs[inp.src].s_out).connect(syn.s_in)
            syn.a_out.connect(lif.a_in)
        if p.weights_rec is not None:
            rec = Dense(weights=np.asarray(p.weights_rec).astype(np.int64), weight_exp=int(p.rec_exp),
                        num_weight_bits=8)
            lif.s_out.connect(rec.s_in)
            rec.a_out.connect(lif.a_in)
        path = os.path.join(tmp, f"pop{i}")
        if i in record:
            path += ".npz"
            r = lava_procs.StateRecorder(shape=(p.n,), steps=T, path=path)
            r.u_ref.connect_var(lif.u)
            r.v_ref.connect_var(lif.v)
        else:
            path += ".npy"
            r = lava_procs.SpikeRecorder(shape=(p.n,), steps=T, path=path)
        lif.s_out.connect(r.a_in)
        lifs.append(lif)
        paths.append(path)
    return paths


def run_graph(pops: Sequence[GraphPop], data: np.ndarray, *, record: Sequence[int] = ()) -> List[StageOutput]:
    """Build ``pops`` (module docstring) fed by ``data`` [n_in, T] (0/1 spikes, what the RingBuffer sends:
    column c at time step c+1), run ``T`` steps on Lava's CPU simulator (fixed_pt), and return each
    population's spikes [n, T] (and u, v for the populations listed in ``record``)."""
    require_lava()
    data, _, T = _check_run_args(data, False, False, "recorder")
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.io.source import RingBuffer as Source

    with quiet(), tempfile.TemporaryDirectory(prefix="snnhw-lava-graph-") as tmp:
        src = Source(data=data.astype(np.int32))
        paths = _build(pops, src, set(record), T, tmp)
        try:
            src.run(condition=RunSteps(num_steps=T), run_cfg=run_cfg(False))
        finally:
            src.stop()
        outs = []
        for i, path in enumerate(paths):
            outs += _read_recorder_files([path], i in set(record))
    return outs
