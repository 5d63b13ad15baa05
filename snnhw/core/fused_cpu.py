"""Fused exact CUBA LIF on CPU: the whole time loop of one population in one numba kernel.

The kernel computes exactly the integers of :func:`snnhw.core.neuron.exact_step` run by
:func:`snnhw.core.neuron.cuba_loop` (Lava's ``PyLifModelBitAcc``), per neuron and step, in int64:

* ``u_t = W24(i32(trunc0(u_{t-1} * i_factor / 4096) + i32(a_t << 6)))`` — decay rounding toward zero
  (:func:`snnhw.loihi.decay`), int32 C-casts (:func:`snnhw.loihi.i32`) and Lava's one-shot 24-bit wrap
  (:func:`snnhw.loihi.wrap24`: result in (-2**23, 2**23] unless the input was beyond 3 * 2**23);
* ``v_t = clip(i32(trunc0(v_{t-1} * v_factor / 4096) + u_t + B), +-(2**23 - 1))`` (24-bit saturation);
* ``S_t = [v_t > vth]`` (strict; ``vth = vth_mant << 6``), then the hard reset ``v <- 0``.

It always takes :func:`snnhw.loihi.lif_integrate`'s general path (every cast and wrap); the reference's
``bounded`` fast path is documented there as giving identical integers, so no case distinction is needed.

An optional recurrent Dense adds ``i32(a_t + i32(floor(sum_j W[o, j] S_{t-1}[j] * 2**rec_exp)))`` from
step 1 on, as :func:`snnhw.core.synapse.recurrent_exact` does (the integer sum is exact in int64; the
exponent floors; the two ports sum in int32).

Units: ``a`` in weight units (an input of 1 adds 64 to ``u``), ``u``/``v``/``B``/``vth`` in 24-bit state
units, decay factors out of 4096. The batch axis runs in parallel (``prange``); the thread count follows
``torch.get_num_threads()`` so a benchmark's thread setting holds for both paths.
"""
from __future__ import annotations

import multiprocessing
import threading
from typing import Optional

import numpy as np
import torch

from snnhw import loihi

try:
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - numba is a dependency; the reference path remains
    numba = None

_LOCK = threading.Lock()  # numba's default (workqueue) threading layer is not re-entrant across threads
_MAX_UV = loihi.MAX_UV
_V_LIMIT = loihi.V_LIMIT
_ACT_SHIFT = loihi.ACT_SHIFT
_DECAY_SHIFT = loihi.DECAY_SHIFT
_I32_OFF = 1 << 31
_I32_MASK = 0xFFFFFFFF


def available() -> bool:
    """True when numba imported (the fused kernel can run)."""
    return numba is not None


if numba is not None:
    @njit(inline="always", cache=True)
    def _i32(x):
        """C-cast to int32 kept in int64 (two's-complement wrap), as :func:`snnhw.loihi.i32`."""
        return ((x + _I32_OFF) & _I32_MASK) - _I32_OFF

    @njit(inline="always", cache=True)
    def _decay(x, factor):
        """trunc0(x * factor / 4096) on int64 (sign-magnitude shift), as :func:`snnhw.loihi.decay`."""
        p = x * factor
        if p < 0:
            return -((-p) >> _DECAY_SHIFT)
        return p >> _DECAY_SHIFT

    @njit(inline="always", cache=True)
    def _wrap24(x):
        """Lava's one-shot 24-bit wrap of u, as :func:`snnhw.loihi.wrap24`."""
        if x > _MAX_UV:
            x -= 2 * _MAX_UV
        elif x <= -_MAX_UV:
            x += 2 * _MAX_UV
        return x

    @njit(inline="always", cache=True)
    def _rec_input(at, w_rec, rec_exp, spiked, n_spiked, o):
        """``i32(at + i32(floor(sum_j W[o, j] S_prev[j] * 2**rec_exp)))`` over the spiking j only."""
        acc = np.int64(0)
        for k in range(n_spiked):
            acc += w_rec[o, spiked[k]]
        acc = acc << rec_exp if rec_exp > 0 else acc >> -rec_exp
        return _i32(at + _i32(acc))

    @njit(parallel=True, cache=True)
    def _forward(a, i_factor, v_factor, vth, bias, w_rec, rec_exp, has_rec, keep_vpre, record,
                 s_out, vpre_out, u_out, v_out):
        """The exact loop over a [B, T, N] int64 (module docstring). Per-neuron int64 [N] parameters;
        ``w_rec`` [N, N] int64 (used iff ``has_rec``). Writes spikes to ``s_out`` [B, T, N] (any dtype),
        pre-reset v to ``vpre_out`` (float32, iff ``keep_vpre``), u and post-reset v to ``u_out``/``v_out``
        (int64, iff ``record``)."""
        B, T, N = a.shape
        for b in prange(B):
            u = np.zeros(N, np.int64)
            v = np.zeros(N, np.int64)
            prev = np.zeros(N, np.int64)  # indices of the neurons that spiked at t - 1 (ascending)
            cur = np.zeros(N, np.int64)
            n_prev = 0
            for t in range(T):
                n_cur = 0
                for n in range(N):
                    at = a[b, t, n]
                    if has_rec and t > 0:
                        at = _rec_input(at, w_rec, rec_exp, prev, n_prev, n)
                    un = _wrap24(_i32(_decay(u[n], i_factor[n]) + _i32(at << _ACT_SHIFT)))
                    vn = _i32(_decay(v[n], v_factor[n]) + un + bias[n])
                    vn = min(max(vn, -_V_LIMIT), _V_LIMIT)
                    fire = vn > vth[n]
                    s_out[b, t, n] = fire
                    if keep_vpre:
                        vpre_out[b, t, n] = np.float32(vn)
                    if fire:
                        vn = 0
                        cur[n_cur] = n
                        n_cur += 1
                    u[n] = un
                    v[n] = vn
                    if record:
                        u_out[b, t, n] = un
                        v_out[b, t, n] = vn
                prev, cur = cur, prev
                n_prev = n_cur
        return s_out


def _per_neuron(x, n: int) -> Optional[np.ndarray]:
    """``x`` (a number or a tensor broadcastable to [n]) as a contiguous int64 numpy [n]; None when it
    varies along another axis (per replica), which only the reference loop handles."""
    t = torch.as_tensor(x).detach().to(torch.int64).cpu()
    if t.numel() not in (1, n) or (t.numel() == n and t.dim() and t.shape[-1] != n):
        return None
    return np.ascontiguousarray(t.reshape(-1).expand(n).numpy()) if t.numel() == 1 else \
        np.ascontiguousarray(t.reshape(n).numpy())


def forward(a: torch.Tensor, i_factor, v_factor, vth, bias, w_rec: Optional[torch.Tensor], rec_exp: int,
            keep_vpre: bool, record: bool, s_dtype: torch.dtype):
    """Run the fused kernel on ``a`` [..., T, N] (integer-valued, CPU) for one population.

    ``i_factor``/``v_factor`` (out of 4096), ``vth`` (``vth_mant << 6``) and ``bias`` (state units) are
    numbers or per-neuron tensors; ``w_rec`` [N, N] effective mantissas or None. Returns
    ``(s, v_pre, u, v)`` shaped like ``a``: spikes in ``s_dtype``, pre-reset v float32 (exact: |v| < 2**23)
    or None, u and post-reset v int64 or None — or None when a parameter is per replica (not [N])."""
    N = int(a.shape[-1])
    if a.numel() == 0 or a.device.type != "cpu" or not available():
        return None
    pars = [_per_neuron(x, N) for x in (i_factor, v_factor, vth, bias)]
    if any(p is None for p in pars):
        return None
    a3 = np.ascontiguousarray(a.detach().to(torch.int64).reshape(-1, a.shape[-2], N).numpy())
    shape = a3.shape
    s = torch.empty(shape, dtype=s_dtype)
    vpre = torch.empty(shape if keep_vpre else (0, 0, 0), dtype=torch.float32)
    u = torch.empty(shape if record else (0, 0, 0), dtype=torch.int64)
    v = torch.empty(shape if record else (0, 0, 0), dtype=torch.int64)
    has_rec = w_rec is not None and w_rec.numel() > 0
    wr = np.ascontiguousarray(w_rec.detach().to(torch.int64).cpu().numpy()) if has_rec \
        else np.zeros((0, 0), np.int64)
    with _LOCK:
        unset = multiprocessing.get_start_method(allow_none=True) is None
        numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
        _forward(a3, *pars, wr, int(rec_exp), has_rec, bool(keep_vpre), bool(record),
                 s.numpy(), vpre.numpy(), u.numpy(), v.numpy())
        if unset:  # numba's thread launch fixes the start method; Lava's import must still set 'fork'
            multiprocessing.set_start_method(None, force=True)
    out = a.shape
    return (s.reshape(out), vpre.reshape(out) if keep_vpre else None,
            u.reshape(out) if record else None, v.reshape(out) if record else None)
