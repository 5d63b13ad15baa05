"""Lava processes from a declarative description: :class:`LavaStage` (one synapse -> LIF stage, in
the exact values handed to Lava) and :func:`run_stages`, which builds, runs and reads them back.

The network is built as Lava builds it for the chip::

    RingBuffer source -> Dense/Sparse/Conv -> LIF -> Dense/Sparse/Conv -> LIF -> ...   (+ one probe per LIF)

and runs on ``Loihi2SimCfg(select_tag="fixed_pt")`` (Lava's bit-accurate CPU models), or on
``Loihi2HwCfg`` with lava-loihi. A recurrent synapse goes from the LIF's ``s_out`` back into its own
``a_in``; Lava sums every input of ``a_in`` in int32.

Reading results back
--------------------
Lava's ``Var.get()`` (behind ``RingBuffer`` sinks and ``Monitor``) sends arrays one element per message
(~20-40 us each), which for a few thousand neurons over 64 steps costs more than the run. Each LIF
therefore gets a recorder from :mod:`snnhw.backends.lava_procs` that does what the sink (spikes, in the
spiking phase) and a Monitor (u, v, in the post-management phase, i.e. after the reset) do and writes the
arrays to a temporary file at the last step. ``run_stages(..., probes="lava")`` uses Lava's own sink and
Monitors instead; tests check both give identical arrays. On Loihi 2 (``Loihi2HwCfg``) spikes come back
through lava-loihi's ``embedded_io`` adapters into RingBuffer sinks (this path is not exercised here:
no lava-loihi; the host must already be configured for lava-loihi, e.g. via its SLURM settings).

Lava is imported lazily, inside the functions.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from snnhw.backends.lava_runtime import hw_in_adapter, hw_out_adapter, require_lava, run_cfg
from snnhw.backends.quiet import quiet
from snnhw.errors import InputError

#: ``num_message_bits`` given to a synapse that receives graded payloads (Lava only checks ``> 0``).
GRADED_MESSAGE_BITS = 24
#: Lava's RingBuffer source sends int32.
INT32_RANGE = (-(1 << 31), (1 << 31) - 1)
PROBES = ("recorder", "lava")


@dataclass
class LavaSynapse:
    """An additional Dense/Sparse synapse into a stage's LIF (Lava sums all inputs of ``a_in`` in int32).
    Fields as in :class:`LavaStage`."""

    weights: np.ndarray
    weight_exp: int = 0
    num_weight_bits: int = 8
    sign_mode: Optional[int] = None
    graded: bool = False
    sparse: bool = False


@dataclass
class LavaStage:
    """One synapse -> LIF stage, in exactly the values handed to Lava's processes.

    Dense: ``weights`` [out, in] ints as given to ``Dense(weights=...)`` (Lava clips to 8 bits and clears
    ``8 - num_weight_bits + mixed`` LSBs itself), ``weight_exp`` (-8..7, on the sum), ``sign_mode``
    (``None``: Lava derives it; else a :class:`snnhw.loihi.SignMode` value, passed on as Lava's own enum),
    ``graded`` (``num_message_bits > 0``: payloads, not 0/1 spikes).
    Conv (``conv`` set): ``weights`` in Lava's layout [C_out, kW, kH, C_in_per_group] with
    ``conv = dict(input_shape=(W, H, C), stride, padding, groups)`` in Lava's (x, y) order.
    LIF: ``shape``; ``du`` (Lava units: i_decay - 1), ``dv``, ``vth`` (mantissa) as scalars or per-neuron
    arrays; ``bias_mant`` (13-bit) and ``bias_exp`` (3-bit) per neuron or scalar.
    Recurrence: ``weights_rec`` [N, N] with its own ``rec_exp``/``rec_num_weight_bits``/``rec_sign_mode``.
    ``sparse``: carry the (block-diagonal) weight matrices in Lava's ``Sparse`` process instead of
    ``Dense`` (the same fixed-point model: clip, truncate, sign mode, exponent, delay; cost ~ nonzeros).
    ``extra``/``extra_rec``: more synapses from the same source port / from this LIF into this LIF, each
    its own Lava process with its own exponent, bit width and sign mode.
    ``flatten_input``: the previous stage is a 3-D LIF whose ``s_out`` is flattened (C-order over (W, H, C))
    into this Dense.
    """

    weights: np.ndarray
    shape: Tuple[int, ...]
    du: Union[int, np.ndarray] = -1
    dv: Union[int, np.ndarray] = 0
    vth: Union[int, np.ndarray] = 64
    bias_mant: Union[int, np.ndarray] = 0
    bias_exp: Union[int, np.ndarray] = 0
    weight_exp: int = 0
    num_weight_bits: int = 8
    sign_mode: Optional[int] = None
    graded: bool = False
    weights_rec: Optional[np.ndarray] = None
    rec_exp: int = 0
    rec_num_weight_bits: int = 8
    rec_sign_mode: Optional[int] = None
    conv: Optional[dict] = None
    flatten_input: bool = False
    sparse: bool = False
    extra: List[LavaSynapse] = field(default_factory=list)
    extra_rec: List[LavaSynapse] = field(default_factory=list)


@dataclass
class StageOutput:
    """Per stage: spikes, and with ``record`` u and v, each int64 shaped LIF shape + (T,) (Lava's layout)."""

    s: np.ndarray
    u: Optional[np.ndarray] = None
    v: Optional[np.ndarray] = None


# ------------------------------------------------------------------------------------------------
# Building the processes
# ------------------------------------------------------------------------------------------------
def _lava():
    """The Lava classes the builder uses (imported here, lazily)."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor
    from lava.proc.sparse.process import Sparse

    from snnhw.backends import lava_procs

    return SimpleNamespace(RunSteps=RunSteps, Conv=Conv, Dense=Dense, Sink=Sink, Source=Source, LIF=LIF,
                           Monitor=Monitor, Sparse=Sparse, procs=lava_procs)


def _as_lava_param(x):
    """Scalars stay Python ints (Lava keeps int-typed Vars as given); arrays become int64 arrays."""
    arr = np.asarray(x)
    if arr.ndim == 0:
        return int(arr)
    return arr.astype(np.int64)


def _csr(w):
    """int32 CSR matrix of ``w`` (dense array or scipy sparse); explicit zeros are dropped."""
    from scipy import sparse

    m = sparse.csr_matrix(w).astype(np.int32)
    m.eliminate_zeros()
    return m


def _synapse(L, syn: LavaSynapse):
    """A Lava Dense or Sparse process for ``syn``."""
    kw = dict(weight_exp=int(syn.weight_exp), num_weight_bits=int(syn.num_weight_bits),
              num_message_bits=GRADED_MESSAGE_BITS if syn.graded else 0)
    if syn.sign_mode is not None:  # Lava's own (plain Enum) SignMode: its models compare with ==
        from lava.utils.weightutils import SignMode as LavaSignMode

        kw["sign_mode"] = LavaSignMode(int(syn.sign_mode))
    if syn.sparse:
        return L.Sparse(weights=_csr(syn.weights), **kw)
    return L.Dense(weights=np.asarray(syn.weights), **kw)


def _main_synapse(L, st: LavaStage):
    """The stage's own synapse: a Lava Conv, or a Dense/Sparse."""
    if st.conv is None:
        return _synapse(L, LavaSynapse(st.weights, st.weight_exp, st.num_weight_bits, st.sign_mode,
                                       st.graded, st.sparse))
    c = st.conv
    return L.Conv(weight=np.asarray(st.weights).astype(np.int32), input_shape=tuple(c["input_shape"]),
                  stride=tuple(c["stride"]), padding=tuple(c["padding"]), groups=int(c["groups"]),
                  num_message_bits=GRADED_MESSAGE_BITS if st.graded else 0)


def _build_stage(L, st: LavaStage, out_port):
    """Synapse(s) from ``out_port`` into a new LIF, plus its recurrent synapses; returns the LIF."""
    syn = _main_synapse(L, st)
    in_port = out_port.flatten() if st.flatten_input else out_port
    in_port.connect(syn.s_in)
    lif = L.LIF(shape=tuple(st.shape), du=_as_lava_param(st.du), dv=_as_lava_param(st.dv),
                vth=_as_lava_param(st.vth), bias_mant=_as_lava_param(st.bias_mant),
                bias_exp=_as_lava_param(st.bias_exp))
    syn.a_out.connect(lif.a_in)
    for ex in st.extra:
        syn2 = _synapse(L, ex)
        in_port.connect(syn2.s_in)
        syn2.a_out.connect(lif.a_in)
    recs = list(st.extra_rec)
    if st.weights_rec is not None:
        recs.insert(0, LavaSynapse(st.weights_rec, st.rec_exp, st.rec_num_weight_bits,
                                   st.rec_sign_mode, False, st.sparse))
    flat = len(st.shape) > 1  # a Conv/SumPool LIF: its recurrent synapses see it flattened (C-order)
    for r in recs:
        rec = _synapse(L, r)
        (lif.s_out.flatten() if flat else lif.s_out).connect(rec.s_in)
        (rec.a_out.reshape(tuple(st.shape)) if flat else rec.a_out).connect(lif.a_in)
    return lif


# ------------------------------------------------------------------------------------------------
# Probes and reading back
# ------------------------------------------------------------------------------------------------
def _attach_probe(L, lif, shape, T: int, record: bool, probes: str, hardware: bool, path: str):
    """A recorder (returns the file it will write) or Lava's sink + Monitors (returns them)."""
    if probes == "recorder":
        if record:
            path += ".npz"
            r = L.procs.StateRecorder(shape=shape, steps=T, path=path)
            r.u_ref.connect_var(lif.u)
            r.v_ref.connect_var(lif.v)
        else:
            path += ".npy"
            r = L.procs.SpikeRecorder(shape=shape, steps=T, path=path)
        lif.s_out.connect(r.a_in)
        return path
    sink = L.Sink(shape=tuple(shape), buffer=T)
    (hw_out_adapter(lif.s_out) if hardware else lif.s_out).connect(sink.a_in)
    mons = None
    if record:
        mons = (L.Monitor(), L.Monitor())
        mons[0].probe(lif.u, T)
        mons[1].probe(lif.v, T)
    return sink, mons


def _monitor_data(mon, proc, var: str, shape) -> np.ndarray:
    """Monitor data (T, *shape) float64 -> int64 shaped shape + (T,)."""
    d = np.asarray(mon.get_data()[proc.name][var])
    d = np.rint(d).astype(np.int64).reshape((d.shape[0],) + tuple(shape))
    return np.moveaxis(d, 0, -1)


def _read_lava_probes(lifs, stages, made, record: bool) -> List[StageOutput]:
    """Read Lava's sinks and Monitors (before the run is stopped)."""
    outs = []
    for lif, st, (sink, mons) in zip(lifs, stages, made):
        o = StageOutput(np.asarray(sink.data.get()).astype(np.int64))
        if record:
            o.u = _monitor_data(mons[0], lif, "u", st.shape)
            o.v = _monitor_data(mons[1], lif, "v", st.shape)
        outs.append(o)
    return outs


def _read_recorder_files(paths, record: bool) -> List[StageOutput]:
    """Read what the recorders wrote at the last step."""
    outs = []
    for path in paths:
        if record:
            with np.load(path) as z:
                outs.append(StageOutput(z["s"].astype(np.int64), z["u"], z["v"]))
        else:
            outs.append(StageOutput(np.load(path).astype(np.int64)))
    return outs


# ------------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------------
def _check_run_args(data, record: bool, hardware: bool, probes: str):
    """(data as an array, the probes to use, steps T), after one-line checks."""
    data = np.asarray(data)
    if data.ndim < 2:
        raise InputError("Lava source data must have at least 2 dimensions (inputs..., steps)")
    if data.size and (data.min() < INT32_RANGE[0] or data.max() > INT32_RANGE[1]):
        raise InputError("inputs must fit in int32 (Lava's RingBuffer source sends int32)")
    if hardware and record:
        raise InputError("u/v traces (record=True) are only available on Lava's CPU simulator")
    if probes not in PROBES:
        raise InputError(f"probes must be 'recorder' or 'lava', not {probes!r}")
    if hardware:
        probes = "lava"  # our recorders are CPU-simulator processes; spikes come back through adapters
    T = int(data.shape[-1])
    if T < 1:
        raise InputError("inputs need at least one time step")
    return data, probes, T


def run_stages(stages: Sequence[LavaStage], data: np.ndarray, *, record: bool = False,
               hardware: bool = False, probes: str = "recorder") -> List[StageOutput]:
    """Build ``stages`` as Lava processes, run ``data.shape[-1]`` steps, return every stage's output.

    ``data``: int array shaped (input shape) + (T,), what the RingBuffer source sends (column c at time
    step c+1); 0/1 spikes, or int32 payloads when the first stage is graded. One Lava run, always
    stopped. ``hardware=True`` runs on ``Loihi2HwCfg`` (needs lava-loihi; spikes only).
    ``probes``: ``"recorder"`` (default; :mod:`snnhw.backends.lava_procs`, which write their arrays to a
    file at the last step) or ``"lava"`` (Lava's own RingBuffer sink and Monitors, read back with the slow
    element-by-element ``Var.get``). Both read the same values at the same phase of each step.
    """
    require_lava()
    data, probes, T = _check_run_args(data, record, hardware, probes)
    with quiet(), tempfile.TemporaryDirectory(prefix="snnhw-lava-") as tmp:
        L = _lava()
        src = L.Source(data=data.astype(np.int32))
        port = hw_in_adapter(src.s_out) if hardware else src.s_out
        lifs, made = [], []
        for i, st in enumerate(stages):
            lif = _build_stage(L, st, port)
            made.append(_attach_probe(L, lif, st.shape, T, record, probes, hardware,
                                      os.path.join(tmp, f"stage{i}")))
            lifs.append(lif)
            port = lif.s_out
        outs = []
        try:
            src.run(condition=L.RunSteps(num_steps=T), run_cfg=run_cfg(hardware))
            if probes == "lava":
                outs = _read_lava_probes(lifs, stages, made, record)
        finally:
            src.stop()
        if probes == "recorder":
            outs = _read_recorder_files(made, record)
    return outs
