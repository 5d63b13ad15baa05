"""Test harness: Lava's own fixed-point process models (``PyLifModelBitAcc``, ``PyDenseModelBitAcc``)
stepped directly, without Lava's runtime (no worker processes, so each call costs microseconds).

Each model's ``run_spk`` is Lava's code; only the ports are replaced: an in-port returns what was
put there, an out-port stores what was sent after the int32 C-cast Lava's channels perform. A chain
is stepped in Lava's order within a time step: each Dense first sends the ``a_buff`` it accumulated
on the previous step, then accumulates the spikes its source sent on this step; each LIF integrates
what its Dense sent. The full Lava runtime (RingBuffer source/sink) is exercised separately through
lava-dl netx in tests/test_netx.py and tests/test_pitfalls.py.
"""
from __future__ import annotations

import numpy as np

from snnhw.backends.quiet import quiet


class _In:
    def __init__(self):
        self.value = None

    def recv(self):
        return self.value


class _Out:
    def __init__(self):
        self.sent = None

    def send(self, data):
        self.sent = np.asarray(data).astype(np.int32)  # the channel's int32 buffer (C-cast)


def lava_lif(n, du, dv, vth, bias_mant=0, bias_exp=0):
    """Lava's ``PyLifModelBitAcc`` for ``n`` neurons in Lava's own units (du, dv, vth)."""
    with quiet():
        from lava.proc.lif.models import PyLifModelBitAcc
    m = PyLifModelBitAcc({})
    m.u = np.zeros(n, np.int32)
    m.v = np.zeros(n, np.int32)
    m.du, m.dv, m.vth = du, dv, vth
    b = np.zeros(n, np.int16)
    b[:] = bias_mant  # Lava's builder: int16 Var, values wrap
    e = np.zeros(n, np.int16)
    e[:] = bias_exp
    m.bias_mant, m.bias_exp = b, e
    m.a_in, m.s_out = _In(), _Out()
    return m


def lava_dense(weights, weight_exp=0, num_weight_bits=8, sign_mode=None):
    """Lava's ``PyDenseModelBitAcc`` with weights [out, in] (truncated to int32 as Lava's builder does)."""
    with quiet():
        from lava.proc.dense.models import PyDenseModelBitAcc
    params = {"weight_exp": weight_exp, "num_weight_bits": num_weight_bits}
    if sign_mode is not None:
        params["sign_mode"] = sign_mode
    d = PyDenseModelBitAcc(params)
    w = np.asarray(weights)
    d.weights = np.zeros(w.shape, np.int32)
    d.weights[:] = w
    d.a_buff = np.zeros(w.shape[0], np.int32)
    d.num_message_bits = np.array([0])
    d.s_in, d.a_out = _In(), _Out()
    return d


def step_lif(m, a):
    """One ``run_spk`` of a LIF model fed ``a``; returns (s, u, v) copies (v after reset)."""
    m.a_in.value = np.asarray(a).astype(np.int32)
    m.run_spk()
    return m.s_out.sent.copy(), m.u.copy(), m.v.copy()


def run_chain(stages, x):
    """Step Dense -> LIF stages (list of (dense, lif)) on spikes x [T, n_in].

    Returns per stage a dict of arrays [T, n]: ``s``, ``u``, ``v`` (post-reset) and ``a`` (what the
    LIF received)."""
    T = x.shape[0]
    rec = [{k: [] for k in ("s", "u", "v", "a")} for _ in stages]
    for t in range(T):
        s = np.asarray(x[t])
        for k, (d, m) in enumerate(stages):
            d.s_in.value = s
            d.run_spk()
            a = d.a_out.sent
            s, u, v = step_lif(m, a)
            for key, val in zip(("s", "u", "v", "a"), (s, u, v, a)):
                rec[k][key].append(val)
    return [{k: np.stack(v) for k, v in r.items()} for r in rec]
