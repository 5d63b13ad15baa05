"""Run a lava-dl netx HDF5 file through lava-dl's own loader (``lava.lib.dl.netx.hdf5.Network``) on
Lava's CPU simulator (``Loihi2SimCfg(select_tag="fixed_pt")``): the reference that
:func:`snnhw.io.netx.read_netx` + the torch core are checked against.

Inputs and outputs are in the spec's layout, [samples, steps, N] with N flat in (C, H, W) C-order for
conv maps; they are transposed to and from netx's (x, y, c) = (W, H, C) layout here.
"""
from __future__ import annotations

import os
from typing import Tuple

import numpy as np

from snnhw.backends.lava_runtime import missing_lava_dl, require_lava, run_cfg
from snnhw.backends.quiet import quiet
from snnhw.errors import InputError, MissingFileError
from snnhw.io.inputs import check_spikes


def _to_lava(xs: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
    """Flat spikes [T, N] (N in (C, H, W) C-order for conv inputs) -> RingBuffer data [*shape, T]
    (netx's (x, y, c) = (W, H, C) layout)."""
    T = xs.shape[0]
    if len(shape) == 3:
        W, H, C = shape
        return xs.reshape(T, C, H, W).transpose(3, 2, 1, 0).astype(np.int32)
    return xs.reshape(T, *shape).transpose(*range(1, len(shape) + 1), 0).astype(np.int32)


def _from_lava(data: np.ndarray, shape: Tuple[int, ...], T: int) -> np.ndarray:
    """RingBuffer sink data [*shape, T] -> flat [T, N] in the spec's order ((C, H, W) C-order)."""
    data = data.reshape(*shape, T)
    if len(shape) == 3:
        return data.transpose(3, 2, 1, 0).reshape(T, -1)
    return data.reshape(-1, T).T


def _import_netx():
    """lava-dl's ``hdf5`` module (silenced: lava-dl prints on import)."""
    require_lava()
    try:
        with quiet():
            from lava.lib.dl.netx import hdf5
    except ModuleNotFoundError as e:
        if not (e.name or "").startswith("lava"):
            raise
        raise missing_lava_dl(e) from None
    return hdf5


def _reset_state(net) -> None:
    """Set every LIF's ``u``/``v`` and every synapse buffer (Dense ``a_buff``, Conv ``a_buf``) of a
    netx Network back to 0: their only state, so the next run starts as a fresh network."""
    for block in net.layers:
        lif = block.neuron
        lif.u.set(np.zeros(lif.u.shape, dtype=np.int32))
        lif.v.set(np.zeros(lif.v.shape, dtype=np.int32))
        synapses = [block.synapse] + ([block.synapse_rec] if hasattr(block, "synapse_rec") else [])
        for p in synapses:
            var = getattr(p, "a_buf" if hasattr(p, "a_buf") else "a_buff")
            var.set(np.zeros(var.shape, dtype=np.int32))


def _run_group(hdf5, path: str, x: np.ndarray, group, out) -> np.ndarray:
    """Build ``hdf5.Network(path)`` once and run the samples ``group`` of ``x`` on it, one after
    another, writing their output spikes into ``out`` (allocated here on the first call)."""
    with quiet():
        from lava.magma.core.run_conditions import RunSteps
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source

        net = hdf5.Network(net_config=path)
    S, T, _ = x.shape
    in_shape, out_shape = tuple(net.inp.shape), tuple(net.out.shape)
    n_in, n_out = int(np.prod(in_shape)), int(np.prod(out_shape))
    if x.shape[2] != n_in:
        raise InputError(f"inputs have {x.shape[2]} channels but the network expects {n_in}")
    if out is None:
        out = np.zeros((S, T, n_out), dtype=np.uint8)
    src = Source(data=_to_lava(x[group[0]], in_shape))
    sink = Sink(shape=out_shape, buffer=T)
    src.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    cfg = run_cfg(hardware=False)
    try:
        with quiet():
            for k, j in enumerate(group):
                if k > 0:
                    src.data.set(_to_lava(x[j], in_shape))
                    _reset_state(net)
                net.run(condition=RunSteps(num_steps=T), run_cfg=cfg)
                out[j] = _from_lava(np.asarray(sink.data.get()), out_shape, T) != 0
    finally:
        with quiet():
            net.stop()
    return out


def run_netx_lava(path, x, *, fresh: bool = False) -> np.ndarray:
    """Output spikes [samples, steps, outputs] (uint8) of lava-dl's ``hdf5.Network(path)`` on Lava's CPU
    simulator (``Loihi2SimCfg(select_tag="fixed_pt")``), one sample after another.

    ``x``: 0/1 spikes [samples, steps, inputs]; column t-1 is sent at time step t by a RingBuffer
    source, and output column t-1 is the sink's record of step t. By default the network is built and
    compiled once; before each further sample every LIF's ``u``/``v`` and every synapse's buffer (Dense
    ``a_buff``, Conv ``a_buf``) are set back to 0 (their only state), which makes each sample a fresh
    run. ``fresh=True`` builds a new network per sample instead (slow; used to test the reset). Lava
    is always stopped. Conv inputs/outputs are flat in (C, H, W) C-order, as in the spec.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: no such file")
    x = check_spikes(x)
    hdf5 = _import_netx()
    out = None
    groups = [[j] for j in range(x.shape[0])] if fresh else [list(range(x.shape[0]))]
    for group in groups:
        out = _run_group(hdf5, path, x, group, out)
    return out
