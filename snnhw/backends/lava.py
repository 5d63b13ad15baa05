"""Run a :class:`~snnhw.spec.NetworkSpec` as Lava processes: the reference the torch core is checked against.

The network is built as Lava builds it for the chip::

    RingBuffer source -> Dense -> LIF -> Dense -> LIF -> ...   (+ one recorder per LIF)

and runs on ``Loihi2SimCfg(select_tag="fixed_pt")`` (Lava's bit-accurate CPU models), or on
``Loihi2HwCfg`` when lava-loihi is installed (:func:`loihi2_hardware_available`). Parameters go to Lava
in its own units (see :mod:`snnhw.loihi`): ``du = i_decay - 1``, ``dv = v_decay``, ``vth = vth_mant``,
``bias_mant``/``bias_exp`` per neuron, Dense ``weights`` (the spec's effective 8-bit mantissas, which
Lava's clip/truncate leaves unchanged), ``weight_exp`` on the sum. A recurrent layer (``weight_rec``) is a
second Dense from the LIF's ``s_out`` back into its own ``a_in``; Lava sums both inputs in int32.

Many samples in one run
-----------------------
Lava's start-up costs ~60 ms per process, so running one network per sample is slow. ``run_lava`` builds
``K`` independent copies of the network side by side in ONE set of processes: the source holds the K
samples stacked along the neuron axis, every Dense gets the block-diagonal matrix ``kron(I_K, W)``, every
LIF gets its parameters tiled K times. Copies share no synapse, so each copy computes exactly what a
single-sample run computes. Two Lava rules make this exact, not approximate: (1) Dense derives its sign
mode from the whole matrix (min >= 0 excitatory, max <= 0 inhibitory, else mixed), and the zeros of the
off-diagonal blocks change neither test, so the block matrix gets the sign mode of ``W``; (2) clipping
and LSB truncation are elementwise. With K > 1 the block-diagonal matrices travel in Lava's ``Sparse``
process, whose fixed-point model is Dense's line for line (same clip, truncation, sign-mode rule, exponent
on the sum and one-step delay) but costs ~nonzeros instead of K**2 per step; with K = 1 Lava's ``Dense``
is used, as netx does. ``batch`` sets K; by default K is the largest value that keeps every synapse under
:data:`MAX_BLOCK_ENTRIES` stored weights and every Lava Conv at most :data:`MAX_CONV_GROUPS` groups
(Lava keeps ``groups`` in an int8; at most :data:`MAX_BATCH`). ``tests/test_lava_differential.py`` checks
packed against unpacked Lava runs.

Convolution and pooling
-----------------------
Lava's ``lava.proc.conv`` fixed-point model is not the same synapse as Dense: it **ignores**
``weight_exp``, does **not** clip or truncate the weights, computes a true convolution (flipped kernel,
(W, H, C) layout) and wraps its accumulator to signed 24 bits. With ``weight_exp == 0`` and an
accumulator bound below 2**23 (``max|w| * kH * kW * C_in``), it equals the core's conv synapse, and
``run_lava`` maps Conv/SumPool layers to it (SumPool as a depthwise Conv with a constant kernel; K samples
stacked along channels as K groups). Other Conv/SumPool layers raise a one-line ``ValueError``.

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

Only this module imports ``lava``, lazily inside functions (and :mod:`snnhw.backends.lava_procs`,
which only this module imports, lazily).
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import tempfile
from dataclasses import dataclass, field
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from snnhw import loihi
from snnhw.spec import Conv, Dense, Flatten, NetworkSpec

#: Upper bound on the stored weights (K copies) of one synapse when choosing the default batch.
MAX_BLOCK_ENTRIES = 24_000_000
#: Upper bound on the samples per Lava run when choosing the default batch.
MAX_BATCH = 256
#: Most convolution groups one Lava Conv may have. Lava 0.10's ``PyConvModel`` stores ``groups`` as an
#: int8 (``LavaPyType(np.ndarray, np.int8, precision=8)``): 128 groups wrap to -128 and the model
#: silently outputs nothing or crashes its process (then ``stop()`` never returns). K copies of a Conv
#: use K groups and of a SumPool K * C groups, so the batch is capped to keep every layer <= 127.
MAX_CONV_GROUPS = 127
#: ``num_message_bits`` given to a Dense that receives graded payloads (Lava only checks ``> 0``).
GRADED_MESSAGE_BITS = 24

BACKEND_SIM = "lava-cpu-sim"
BACKEND_HW = "loihi2"


class LavaResult(NamedTuple):
    """What a Lava run returns, in the torch core's layout.

    ``output``: int64 [samples, steps, outputs], the last LIF's spikes (index t-1 = time step t, as
    Lava's RingBuffer sink stores them). ``layer_spikes``: one such array per neuron layer. ``traces``:
    with ``record=True`` a list of (u, v) int64 arrays [samples, steps, neurons] per neuron layer
    (24-bit state values; v after the reset, as Lava's Monitor reads it), else ``None``.
    ``backend``: ``"lava-cpu-sim"`` or ``"loihi2"``.
    """

    output: np.ndarray
    layer_spikes: List[np.ndarray]
    traces: Optional[List[Tuple[np.ndarray, np.ndarray]]]
    backend: str


# ------------------------------------------------------------------------------------------------
# Availability
# ------------------------------------------------------------------------------------------------
def lava_available() -> bool:
    """True iff lava-nc (its process library and CPU runtime) can be imported."""
    try:
        return (importlib.util.find_spec("lava.proc.lif") is not None
                and importlib.util.find_spec("lava.magma.core.run_configs") is not None)
    except (ImportError, ValueError):
        return False


def loihi2_hardware_available() -> bool:
    """True iff lava-loihi (Intel's Loihi extension of Lava) is installed, per
    ``lava.utils.loihi.is_installed()`` (it looks for ``lava.utils.loihi2_profiler``)."""
    if not lava_available():
        return False
    from lava.utils import loihi as lava_loihi

    return bool(lava_loihi.is_installed())


def _require_lava() -> None:
    if not lava_available():
        raise RuntimeError("lava-nc is not installed: the Lava backend needs lava-nc 0.10.0")


# ------------------------------------------------------------------------------------------------
# A network in Lava's own parameters
# ------------------------------------------------------------------------------------------------
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


def _as_lava_param(x):
    """Scalars stay Python ints (Lava keeps int-typed Vars as given); arrays become int64 arrays."""
    arr = np.asarray(x)
    if arr.ndim == 0:
        return int(arr)
    return arr.astype(np.int64)


@contextlib.contextmanager
def _quiet():
    """Keep Lava's prints (warnings, progress) out of our stdout/stderr."""
    if os.environ.get("SNNHW_DEBUG"):
        yield
        return
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        yield


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
    _require_lava()
    data = np.asarray(data)
    if data.ndim < 2:
        raise ValueError("Lava source data must have at least 2 dimensions (inputs..., steps)")
    if data.size and (data.min() < -(1 << 31) or data.max() > (1 << 31) - 1):
        raise ValueError("inputs must fit in int32 (Lava's RingBuffer source sends int32)")
    if hardware and record:
        raise ValueError("u/v traces (record=True) are only available on Lava's CPU simulator")
    if probes not in ("recorder", "lava"):
        raise ValueError(f"probes must be 'recorder' or 'lava', not {probes!r}")
    if hardware:
        probes = "lava"  # our recorders are CPU-simulator processes; spikes come back through adapters
    T = int(data.shape[-1])
    if T < 1:
        raise ValueError("inputs need at least one time step")
    with _quiet(), tempfile.TemporaryDirectory(prefix="snnhw-lava-") as tmp:
        from lava.magma.core.run_conditions import RunSteps
        from lava.proc.conv.process import Conv as LavaConv
        from lava.proc.dense.process import Dense as LavaDense
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source
        from lava.proc.lif.process import LIF
        from lava.proc.monitor.process import Monitor
        from lava.proc.sparse.process import Sparse as LavaSparse

        from snnhw.backends import lava_procs

        src = Source(data=data.astype(np.int32))
        out_port = src.s_out
        if hardware:
            out_port = _hw_in_adapter(out_port)
        lifs, probes_made = [], []
        for i, st in enumerate(stages):
            nmb = GRADED_MESSAGE_BITS if st.graded else 0
            if st.conv is not None:
                c = st.conv
                syn = LavaConv(weight=np.asarray(st.weights).astype(np.int32), input_shape=tuple(c["input_shape"]),
                               stride=tuple(c["stride"]), padding=tuple(c["padding"]),
                               groups=int(c["groups"]), num_message_bits=nmb)
            else:
                syn = _synapse(LavaDense, LavaSparse, LavaSynapse(
                    st.weights, st.weight_exp, st.num_weight_bits, st.sign_mode, st.graded, st.sparse))
            in_port = out_port.flatten() if st.flatten_input else out_port
            in_port.connect(syn.s_in)
            lif = LIF(shape=tuple(st.shape), du=_as_lava_param(st.du), dv=_as_lava_param(st.dv),
                      vth=_as_lava_param(st.vth), bias_mant=_as_lava_param(st.bias_mant),
                      bias_exp=_as_lava_param(st.bias_exp))
            syn.a_out.connect(lif.a_in)
            for ex in st.extra:
                syn2 = _synapse(LavaDense, LavaSparse, ex)
                in_port.connect(syn2.s_in)
                syn2.a_out.connect(lif.a_in)
            recs = list(st.extra_rec)
            if st.weights_rec is not None:
                recs.insert(0, LavaSynapse(st.weights_rec, st.rec_exp, st.rec_num_weight_bits,
                                           st.rec_sign_mode, False, st.sparse))
            for r in recs:
                rec = _synapse(LavaDense, LavaSparse, r)
                lif.s_out.connect(rec.s_in)
                rec.a_out.connect(lif.a_in)
            if probes == "recorder":
                path = os.path.join(tmp, f"stage{i}")
                if record:
                    r = lava_procs.StateRecorder(shape=st.shape, steps=T, path=path + ".npz")
                    r.u_ref.connect_var(lif.u)
                    r.v_ref.connect_var(lif.v)
                    probes_made.append(path + ".npz")
                else:
                    r = lava_procs.SpikeRecorder(shape=st.shape, steps=T, path=path + ".npy")
                    probes_made.append(path + ".npy")
                lif.s_out.connect(r.a_in)
            else:
                sink = Sink(shape=tuple(st.shape), buffer=T)
                (_hw_out_adapter(lif.s_out) if hardware else lif.s_out).connect(sink.a_in)
                mons = None
                if record:
                    mons = (Monitor(), Monitor())
                    mons[0].probe(lif.u, T)
                    mons[1].probe(lif.v, T)
                probes_made.append((sink, mons))
            lifs.append(lif)
            out_port = lif.s_out
        run_cfg = _run_cfg(hardware)
        outs = []
        try:
            src.run(condition=RunSteps(num_steps=T), run_cfg=run_cfg)
            if probes == "lava":
                for lif, st, (sink, mons) in zip(lifs, stages, probes_made):
                    o = StageOutput(np.asarray(sink.data.get()).astype(np.int64))
                    if record:
                        o.u = _monitor_data(mons[0], lif, "u", st.shape)
                        o.v = _monitor_data(mons[1], lif, "v", st.shape)
                    outs.append(o)
        finally:
            src.stop()
        if probes == "recorder":
            for path in probes_made:
                if record:
                    with np.load(path) as z:
                        outs.append(StageOutput(z["s"].astype(np.int64), z["u"], z["v"]))
                else:
                    outs.append(StageOutput(np.load(path).astype(np.int64)))
    return outs


def _synapse(LavaDense, LavaSparse, syn: LavaSynapse):
    """A Lava Dense or Sparse process for ``syn``."""
    kw = dict(weight_exp=int(syn.weight_exp), num_weight_bits=int(syn.num_weight_bits),
              num_message_bits=GRADED_MESSAGE_BITS if syn.graded else 0)
    if syn.sign_mode is not None:  # Lava's own (plain Enum) SignMode: its models compare with ==
        from lava.utils.weightutils import SignMode as LavaSignMode

        kw["sign_mode"] = LavaSignMode(int(syn.sign_mode))
    if syn.sparse:
        return LavaSparse(weights=_csr(syn.weights), **kw)
    return LavaDense(weights=np.asarray(syn.weights), **kw)


def _csr(w):
    """int32 CSR matrix of ``w`` (dense array or scipy sparse); explicit zeros are dropped."""
    from scipy import sparse

    m = sparse.csr_matrix(w).astype(np.int32)
    m.eliminate_zeros()
    return m


def _monitor_data(mon, proc, var: str, shape) -> np.ndarray:
    """Monitor data (T, *shape) float64 -> int64 shaped shape + (T,)."""
    d = np.asarray(mon.get_data()[proc.name][var])
    d = np.rint(d).astype(np.int64).reshape((d.shape[0],) + tuple(shape))
    return np.moveaxis(d, 0, -1)


def _run_cfg(hardware: bool):
    if hardware:
        from lava.magma.core.run_configs import Loihi2HwCfg

        return Loihi2HwCfg()
    from lava.magma.core.run_configs import Loihi2SimCfg

    return Loihi2SimCfg(select_tag="fixed_pt")


def _hw_in_adapter(port):
    """Host -> chip spike adapter (lava-loihi's embedded_io; only present with lava-loihi)."""
    from lava.proc import embedded_io as eio

    ad = eio.spike.PyToNxAdapter(shape=port.shape)
    port.connect(ad.inp)
    return ad.out


def _hw_out_adapter(port):
    """Chip -> host spike adapter (lava-loihi's embedded_io)."""
    from lava.proc import embedded_io as eio

    ad = eio.spike.NxToPyAdapter(shape=port.shape)
    port.connect(ad.inp)
    return ad.out


# ------------------------------------------------------------------------------------------------
# NetworkSpec -> K side-by-side copies
# ------------------------------------------------------------------------------------------------
def _block_diag(w: np.ndarray, k: int, sparse: bool = False):
    """``kron(I_k, w)``: k independent copies of ``w`` on the diagonal (int64 array, or scipy CSR)."""
    w = np.asarray(w).astype(np.int64)
    if sparse:
        from scipy import sparse as sp

        return sp.block_diag([sp.csr_matrix(w)] * k, format="csr")
    if k == 1:
        return w
    out = np.zeros((k * w.shape[0], k * w.shape[1]), dtype=np.int64)
    for i in range(k):
        out[i * w.shape[0]:(i + 1) * w.shape[0], i * w.shape[1]:(i + 1) * w.shape[1]] = w
    return out


def _scatter_columns(w: np.ndarray, cols: np.ndarray, sparse: bool):
    """Rows of copy j get ``w`` at columns ``cols[j]`` (a Dense fed by a flattened (W, H, k*C) map)."""
    k, n_cols = cols.shape[0], int(cols.max()) + 1 if cols.size else 0
    n_out = w.shape[0]
    if sparse:
        from scipy import sparse as sp

        rows = np.repeat(np.arange(k * n_out), w.shape[1])
        cc = np.concatenate([np.tile(cols[j], n_out) for j in range(k)])
        vals = np.tile(w.ravel(), k)
        return sp.csr_matrix((vals, (rows, cc)), shape=(k * n_out, n_cols))
    big = np.zeros((k * n_out, n_cols), dtype=np.int64)
    for j in range(k):
        big[j * n_out:(j + 1) * n_out, cols[j]] = w
    return big


def _conv_lava_kernel(w: np.ndarray) -> np.ndarray:
    """Core conv weight [out, in, kH, kW] (cross-correlation, CHW) -> Lava Conv [out, kW, kH, in]
    (true convolution in (W, H, C) layout): flip both spatial axes, then reorder."""
    return np.ascontiguousarray(np.asarray(w)[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)).astype(np.int64)


def _check_conv_exact(layer) -> None:
    """Lava's Conv equals the core's conv synapse only with weight_exp 0 and a 24-bit accumulator."""
    if int(layer.weight_exp) != 0:
        raise ValueError(f"layer {layer.name}: Lava's Conv ignores weight_exp (got {layer.weight_exp}); "
                         f"the Lava backend runs conv/pool layers only with weight_exp 0")
    if isinstance(layer, Conv):
        w = np.asarray(layer.weight)
        bound = float(np.abs(w).max(initial=0)) * int(np.prod(w.shape[1:]))
    else:
        bound = abs(float(layer.weight)) * int(np.prod(layer.kernel))
    if bound >= loihi.MAX_UV:
        raise ValueError(f"layer {layer.name}: conv accumulator bound {int(bound)} reaches 2**23, where Lava's "
                         f"Conv wraps to 24 bits and the core does not")


def _conv_batch_cap(spec: NetworkSpec) -> Optional[int]:
    """Largest K with every Lava Conv at <= MAX_CONV_GROUPS groups (None without conv layers): K copies
    of a Conv take K groups, of a SumPool (depthwise) K * C groups."""
    per_copy = [1 if isinstance(layer, Conv) else int(layer.input_shape[0])
                for layer in spec.neuron_layers() if not isinstance(layer, Dense)]
    return max(1, MAX_CONV_GROUPS // max(per_copy)) if per_copy else None


def _default_batch(spec: NetworkSpec, n_samples: int) -> int:
    biggest = 1
    for layer in spec.neuron_layers():
        if isinstance(layer, Dense):
            biggest = max(biggest, layer.n_out * layer.n_in)
            if layer.weight_rec is not None:
                biggest = max(biggest, layer.n_out * layer.n_out)
    k = MAX_BLOCK_ENTRIES // biggest  # K copies hold K * biggest nonzeros (Sparse process)
    cap = _conv_batch_cap(spec)
    return max(1, min(n_samples, MAX_BATCH, k, cap if cap is not None else k))


def _lava_shape(shape: Tuple[int, ...], k: int) -> Tuple[int, ...]:
    """Lava shape of k stacked copies of a core shape: (N,) -> (k*N,); (C, H, W) -> (W, H, k*C)."""
    if len(shape) == 1:
        return (k * shape[0],)
    c, h, w = shape
    return (w, h, k * c)


def _to_lava_layout(x: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
    """Core samples [K, T, prod(shape)] -> Lava source data (lava shape of K copies) + (T,)."""
    K, T = x.shape[:2]
    if len(shape) == 1:
        return x.transpose(0, 2, 1).reshape(K * shape[0], T)
    c, h, w = shape
    y = x.reshape(K, T, c, h, w).transpose(4, 3, 0, 2, 1)  # (W, H, K, C, T)
    return y.reshape(w, h, K * c, T)


def _from_lava_layout(d: np.ndarray, shape: Tuple[int, ...], k: int) -> np.ndarray:
    """Lava array (lava shape of k copies) + (T,) -> core layout [k, T, prod(shape)]."""
    T = d.shape[-1]
    if len(shape) == 1:
        return d.reshape(k, shape[0], T).transpose(0, 2, 1)
    c, h, w = shape
    y = d.reshape(w, h, k, c, T).transpose(2, 4, 3, 1, 0)  # (K, T, C, H, W)
    return y.reshape(k, T, c * h * w)


def _flatten_columns(shape: Tuple[int, int, int], k: int) -> np.ndarray:
    """For a Dense fed by ``s_out.flatten()`` of a (W, H, k*C) LIF: cols[j, i] is the Lava flat index of
    copy j's core flat index i (core order (C, H, W), C-order)."""
    c, h, w = shape
    ci, yi, xi = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    ci, yi, xi = ci.ravel(), yi.ravel(), xi.ravel()
    return np.stack([(xi * h + yi) * (k * c) + j * c + ci for j in range(k)])


def spec_stages(spec: NetworkSpec, k: int, sparse: Optional[bool] = None
                ) -> Tuple[List[LavaStage], List[Tuple[int, ...]]]:
    """The Lava stages of ``k`` side-by-side copies of ``spec`` and each stage's core output shape.

    ``sparse`` (default: ``k > 1``) carries dense layers in Lava's ``Sparse`` process."""
    sparse = k > 1 if sparse is None else bool(sparse)
    stages, shapes = [], []
    prev_shape = tuple(spec.input_shape)  # Flatten is a no-op: a Dense after a (C, H, W) map flattens it
    for layer in spec.layers:
        if isinstance(layer, Flatten):
            continue
        n = layer.neuron
        common = dict(du=loihi.lava_du(n.i_decay), dv=loihi.lava_dv(n.v_decay), vth=int(n.vth_mant),
                      bias_exp=int(layer.bias_exp))
        if isinstance(layer, Dense):
            flat_src = len(prev_shape) == 3
            bias = np.zeros(layer.n_out, np.int64) if layer.bias_mant is None else np.asarray(layer.bias_mant)
            w = np.asarray(layer.weight).astype(np.int64)
            if flat_src:
                big = _scatter_columns(w, _flatten_columns(prev_shape, k), sparse)
            else:
                big = _block_diag(w, k, sparse)
            st = LavaStage(weights=big, shape=(k * layer.n_out,), weight_exp=int(layer.weight_exp),
                           graded=bool(layer.graded_input), bias_mant=np.tile(bias.astype(np.int64), k),
                           flatten_input=flat_src, sparse=sparse, **common)
            if layer.weight_rec is not None:
                st.weights_rec = _block_diag(layer.weight_rec, k, sparse)
                st.rec_exp = int(layer.rec_exp)
            out_shape = (layer.n_out,)
        else:
            _check_conv_exact(layer)
            c_in, h, wd = layer.input_shape
            c_out, ho, wo = layer.out_shape
            if isinstance(layer, Conv):
                kern = np.tile(_conv_lava_kernel(layer.weight), (k, 1, 1, 1))
                stride, padding, groups = layer.stride, layer.padding, k
            else:
                kh, kw = layer.kernel
                kern = np.full((k * c_in, kw, kh, 1), int(layer.weight), dtype=np.int64)
                stride, padding, groups = layer.stride, (0, 0), k * c_in
            bias = np.zeros(c_out, np.int64) if layer.bias_mant is None else np.asarray(layer.bias_mant)
            bias_l = np.broadcast_to(np.tile(bias.astype(np.int64), k), (wo, ho, k * c_out)).copy()
            st = LavaStage(weights=kern, shape=(wo, ho, k * c_out), bias_mant=bias_l,
                           conv=dict(input_shape=(wd, h, k * c_in), stride=(stride[1], stride[0]),
                                     padding=(padding[1], padding[0]), groups=groups), **common)
            out_shape = tuple(layer.out_shape)
        stages.append(st)
        shapes.append(out_shape)
        prev_shape = out_shape
    return stages, shapes


def run_lava(spec: NetworkSpec, x, *, record: bool = False, batch: Optional[int] = None,
             hardware: Optional[bool] = None, progress=None) -> LavaResult:
    """Run ``spec`` on Lava for every sample of ``x`` and return the core's layout (:class:`LavaResult`).

    Args:
        spec: a quantized NetworkSpec (validated here; Dense weights must be Lava-representable).
        x: [samples, steps, inputs] 0/1 spikes, or int32 payloads if the first layer is graded.
        record: also return u/v traces per neuron layer (CPU simulator only).
        batch: samples per Lava run (K side-by-side copies); default: as many as fit
            :data:`MAX_BLOCK_ENTRIES` (at most :data:`MAX_BATCH`).
        hardware: None = use Loihi 2 iff :func:`loihi2_hardware_available`; False forces the CPU simulator.
        progress: optional callable ``progress(done_samples, total_samples)``.
    """
    _require_lava()
    if not spec.quantized:
        raise ValueError("the Lava backend runs quantized (integer) specs only")
    spec.validate()
    x = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    if x.ndim != 3 or x.shape[2] != spec.n_in:
        raise ValueError(f"inputs must be shaped [samples, steps, {spec.n_in}], got {tuple(x.shape)}")
    if x.size and not np.all(np.equal(np.mod(x, 1), 0)):
        raise ValueError("inputs must be integers (0/1 spikes or integer graded payloads)")
    graded = isinstance(spec.layers[0], Dense) and spec.layers[0].graded_input
    x = x.astype(np.int64)
    if not graded:
        x = (x != 0).astype(np.int64)
    n, T = x.shape[:2]
    if T < 1:
        raise ValueError("inputs need at least one time step")
    if batch is not None and int(batch) < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    hw = loihi2_hardware_available() if hardware is None else bool(hardware)
    if hw and not loihi2_hardware_available():
        raise ValueError("Loihi 2 hardware requested but lava-loihi is not installed")
    cap = _conv_batch_cap(spec)
    if batch is not None and cap is not None and int(batch) > cap:
        raise ValueError(f"batch {batch} gives a Lava Conv more than {MAX_CONV_GROUPS} groups (Lava stores groups "
                         f"as int8); use batch <= {cap}")
    k_max = int(batch) if batch is not None else _default_batch(spec, max(n, 1))
    n_layers = len(spec.neuron_layers())
    spikes = [[] for _ in range(n_layers)]
    traces = [([], []) for _ in range(n_layers)] if record else None
    for start in range(0, n, k_max):
        xb = x[start:start + k_max]
        k = xb.shape[0]
        stages, shapes = spec_stages(spec, k)
        outs = run_stages(stages, _to_lava_layout(xb, tuple(spec.input_shape)), record=record, hardware=hw)
        for i, (o, shp) in enumerate(zip(outs, shapes)):
            spikes[i].append(_from_lava_layout(o.s, shp, k))
            if record:
                traces[i][0].append(_from_lava_layout(o.u, shp, k))
                traces[i][1].append(_from_lava_layout(o.v, shp, k))
        if progress is not None:
            progress(min(start + k, n), n)
    empty = [np.zeros((0, T, int(np.prod(s))), np.int64) for s in _layer_out_shapes(spec)]
    layer_spikes = [np.concatenate(s) if s else e for s, e in zip(spikes, empty)]
    tr = None
    if record:
        tr = [(np.concatenate(u) if u else e, np.concatenate(v) if v else e)
              for (u, v), e in zip(traces, empty)]
    return LavaResult(layer_spikes[-1], layer_spikes, tr, BACKEND_HW if hw else BACKEND_SIM)


def _layer_out_shapes(spec: NetworkSpec) -> List[Tuple[int, ...]]:
    return [tuple(l.out_shape) for l in spec.neuron_layers()]
