"""Fused exact CUBA LIF on CPU: the whole time loop of one population in one numba kernel, forward and BPTT.

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

The backward (:func:`backward`) is the BPTT of :meth:`snnhw.core.neuron._CubaLIF.backward` in one kernel,
the surrogate included, parallel over batch x neuron blocks (over the batch with recurrence).

Units: ``a`` in weight units (an input of 1 adds 64 to ``u``), ``u``/``v``/``B``/``vth`` in 24-bit state
units, decay factors out of 4096. The batch axis runs in parallel (``prange``); the thread count follows
``torch.get_num_threads()`` so a benchmark's thread setting holds for both paths.
"""
from __future__ import annotations

import math
import multiprocessing
import threading
from typing import Optional, Tuple

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
    def _row(x, b):
        """Row ``b`` of a parameter array [R, N]: its only row when R = 1 (shared by every row)."""
        return x[min(np.int64(b), x.shape[0] - 1)]

    @njit(inline="always", cache=True)
    def _integrate(u, v, at, fi, fv, bias):
        """One step of u and pre-reset v from the synaptic input ``at`` (the order and casts of
        :func:`snnhw.loihi.lif_integrate`); returns (u, v)."""
        un = _wrap24(_i32(_decay(u, fi) + _i32(at << _ACT_SHIFT)))
        vn = _i32(_decay(v, fv) + un + bias)
        return un, min(max(vn, -_V_LIMIT), _V_LIMIT)

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
        """The exact loop over a [B, T, N] (any integer-valued dtype: int64, or a float holding exact
        integers) (module docstring). Parameters int64 [R, N], R = 1 (per neuron) or B (per row);
        ``w_rec`` [N, N] int64 (used iff ``has_rec``). Writes spikes to ``s_out`` [B, T, N] (any dtype),
        pre-reset v to ``vpre_out`` (float32, iff ``keep_vpre``), u and post-reset v to ``u_out``/``v_out``
        (int64, iff ``record``)."""
        B, T, N = a.shape
        for b in prange(B):
            fi, fv, th, bi = _row(i_factor, b), _row(v_factor, b), _row(vth, b), _row(bias, b)
            u = np.zeros(N, np.int64)
            v = np.zeros(N, np.int64)
            prev = np.zeros(N, np.int64)  # indices of the neurons that spiked at t - 1 (ascending)
            cur = np.zeros(N, np.int64)
            n_prev = 0
            for t in range(T):
                n_cur = 0
                for n in range(N):
                    at = np.int64(a[b, t, n])
                    if has_rec and t > 0:
                        at = _rec_input(at, w_rec, rec_exp, prev, n_prev, n)
                    un, vn = _integrate(u[n], v[n], at, fi[n], fv[n], bi[n])
                    fire = vn > th[n]
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


if numba is not None:
    @njit(parallel=True, cache=True)
    def _forward_ff(a, i_factor, v_factor, vth, bias, keep_vpre, record, s_out, vpre_out, u_out, v_out):
        """:func:`_forward` without a recurrent input: no spike bookkeeping, so the neuron loop has no
        loop-carried branch (the compiler may vectorize it). The same integers, step for step."""
        B, T, N = a.shape
        for b in prange(B):
            fi, fv, th, bi = _row(i_factor, b), _row(v_factor, b), _row(vth, b), _row(bias, b)
            u = np.zeros(N, np.int64)
            v = np.zeros(N, np.int64)
            for t in range(T):
                for n in range(N):
                    un, vn = _integrate(u[n], v[n], np.int64(a[b, t, n]), fi[n], fv[n], bi[n])
                    fire = vn > th[n]
                    s_out[b, t, n] = fire
                    if keep_vpre:
                        vpre_out[b, t, n] = np.float32(np.int32(vn))
                    u[n] = un
                    v[n] = 0 if fire else vn
                    if record:
                        u_out[b, t, n] = un
                        v_out[b, t, n] = v[n]
        return s_out


def _rows(x, lead: Tuple[int, ...], n: int) -> Optional[np.ndarray]:
    """``x`` (a number or a tensor broadcastable to the state ``lead + (n,)``) as a contiguous int64
    numpy [R, n]: R = 1 when it is the same for every row (per neuron or one value), else
    R = prod(lead) (e.g. one threshold per replica). None when it does not broadcast."""
    t = torch.as_tensor(x).detach().to(torch.int64).cpu()
    full = tuple(lead) + (n,)
    try:
        if torch.broadcast_shapes(t.shape, full) != full:
            return None
    except RuntimeError:
        return None
    if all(d == 1 for d in t.shape[:-1]):
        return np.ascontiguousarray(t.reshape(-1).expand(n).reshape(1, n).numpy())
    return np.ascontiguousarray(t.expand(full).reshape(-1, n).numpy())


def _launch(kernel, *args) -> None:
    """Call a parallel kernel with numba's thread count set from torch's, under the lock, leaving torch's
    thread count and multiprocessing's start method as it found them (Lava's import must still set
    'fork')."""
    with _LOCK:
        unset = multiprocessing.get_start_method(allow_none=True) is None
        threads = torch.get_num_threads()
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        kernel(*args)
        if torch.get_num_threads() != threads:  # numba's OpenMP layer shares (and resets) torch's count
            torch.set_num_threads(threads)
        if unset:  # numba's thread launch fixes the start method
            multiprocessing.set_start_method(None, force=True)


def _as_array(a: torch.Tensor, n: int) -> np.ndarray:
    """``a`` [..., T, n] as a contiguous numpy [B, T, n] without a dtype copy where the kernel reads the
    dtype directly (int64, int32, float32 and float64 holding integers)."""
    x = a.detach()
    if x.dtype not in (torch.int64, torch.int32, torch.float32, torch.float64):
        x = x.to(torch.int64)
    return np.ascontiguousarray(x.reshape(-1, a.shape[-2], n).numpy())


def forward(a: torch.Tensor, i_factor, v_factor, vth, bias, w_rec: Optional[torch.Tensor], rec_exp: int,
            keep_vpre: bool, record: bool, s_dtype: torch.dtype):
    """Run the fused kernel on ``a`` [..., T, N] (integer-valued, CPU) for one population.

    ``i_factor``/``v_factor`` (out of 4096), ``vth`` (``vth_mant << 6``) and ``bias`` (state units) are
    numbers or tensors broadcastable to the state ``a.shape[:-2] + (N,)`` (per neuron, or per replica
    such as ``vth`` [R, 1, 1] for ``a`` [R, B, T, N]); ``w_rec`` [N, N] effective mantissas or None.
    Returns ``(s, v_pre, u, v)`` shaped like ``a``: spikes in ``s_dtype``, pre-reset v float32 (exact:
    |v| < 2**23) or None, u and post-reset v int64 or None — or None when a parameter does not broadcast
    to the state (the caller runs the reference loop)."""
    N = int(a.shape[-1])
    if a.numel() == 0 or a.device.type != "cpu" or not available():
        return None
    lead = tuple(a.shape[:-2])
    pars = [_rows(x, lead, N) for x in (i_factor, v_factor, vth, bias)]
    if any(p is None for p in pars):
        return None
    a3 = _as_array(a, N)
    shape = a3.shape
    s = torch.empty(shape, dtype=s_dtype)
    vpre = torch.empty(shape if keep_vpre else (0, 0, 0), dtype=torch.float32)
    u = torch.empty(shape if record else (0, 0, 0), dtype=torch.int64)
    v = torch.empty(shape if record else (0, 0, 0), dtype=torch.int64)
    has_rec = w_rec is not None and w_rec.numel() > 0
    wr = np.ascontiguousarray(w_rec.detach().to(torch.int64).cpu().numpy()) if has_rec \
        else np.zeros((0, 0), np.int64)
    if has_rec:
        _launch(_forward, a3, *pars, wr, int(rec_exp), has_rec, bool(keep_vpre), bool(record),
                s.numpy(), vpre.numpy(), u.numpy(), v.numpy())
    else:
        _launch(_forward_ff, a3, *pars, bool(keep_vpre), bool(record), s.numpy(), vpre.numpy(), u.numpy(),
                v.numpy())
    out = a.shape
    return (s.reshape(out), vpre.reshape(out) if keep_vpre else None,
            u.reshape(out) if record else None, v.reshape(out) if record else None)


# ------------------------------------------------------------------------------------------------
# Backward (BPTT) of snnhw.core.neuron._CubaLIF, surrogate included
# ------------------------------------------------------------------------------------------------
SURROGATE_KINDS = ("arctan", "fast_sigmoid", "lavadl", "triangle")  # kernel codes 0..3
_BLOCK = 64  # neurons per work item of the non-recurrent backward (parallel over batch x blocks)


def surrogate_constants(sur) -> Tuple[int, np.float32, np.float32]:
    """``(kind, c1, c2)`` of a :class:`snnhw.core.surrogate.Surrogate` for the kernels: the float32 values
    of the Python constants its torch formula multiplies or divides by, computed by the same double
    operations (torch rounds a Python scalar to float32 when it meets a float32 tensor)."""
    kind = SURROGATE_KINDS.index(sur.name)
    if sur.name == "arctan":  # (alpha/2) / (1 + (pi/2*alpha*x)**2) = reciprocal(1 + (c1 x)^2) * c2
        c1, c2 = math.pi / 2 * sur.alpha, sur.alpha / 2
    elif sur.name == "fast_sigmoid":  # 1 / (slope*|x| + 1)**2 = reciprocal((c1 |x| + 1)^2) * 1
        c1, c2 = sur.slope, 1.0
    elif sur.name == "lavadl":  # scale/(2 tau) * exp(-|x| / tau) = c2 * exp(-|x| / c1)
        tau = 100.0 * sur.tau_grad
        c1, c2 = tau, 0.1 * sur.scale_grad / (2 * tau)
    else:  # triangle: max(0, 1 - |x|/width) / width
        c1, c2 = sur.width, 1.0
    return kind, np.float32(c1), np.float32(c2)


if numba is not None:
    @njit(inline="always", cache=True)
    def _dsdv_row(vp, n0, n1, theta, kind, c1, c2, out):
        """dS/dv (1/state units) of the pre-reset voltages ``vp[n0:n1]`` into ``out[:n1-n0]``:
        surrogate((vp - theta)/theta)/theta, float32 op for op as :mod:`snnhw.core.surrogate` evaluates it
        in torch (``c / t`` there is ``t.reciprocal() * c``; ``t ** 2`` is ``t * t``); lavadl's exp runs in
        float64, then rounds. The surrogate switch sits outside the loops (each loop vectorizes)."""
        one = np.float32(1.0)
        if kind == 0:
            for n in range(n0, n1):
                t = c1 * ((vp[n] - theta) / theta)
                out[n - n0] = ((one / (one + t * t)) * c2) / theta
        elif kind == 1:
            for n in range(n0, n1):
                t = c1 * abs((vp[n] - theta) / theta) + one
                out[n - n0] = ((one / (t * t)) * c2) / theta
        elif kind == 2:
            for n in range(n0, n1):
                x = abs((vp[n] - theta) / theta)
                out[n - n0] = (np.float32(math.exp(np.float64(-x / c1))) * c2) / theta
        else:
            for n in range(n0, n1):
                x = abs((vp[n] - theta) / theta)
                out[n - n0] = max(one - x / c1, np.float32(0.0)) / c1 / theta

    @njit(parallel=True, cache=True)
    def _bptt(grad_s, s, vpre, theta, kind, c1, c2, alpha, beta, gain, ks, ga_out, gv_out):
        """Non-recurrent BPTT over [B, T, N] float32, every (b, neuron block) in parallel, in float32 op
        for op as the reference: ``gv = gs*sg + (beta*keep)*gv``, ``gu = gv + alpha*gu``,
        ``ga = gain*gu`` with ``keep = 1 - ks*s`` (``ks`` 1: hard reset; 0: ``subtract``, keep = 1).
        Writes ``ga_out`` [B, T, N] and ``gv`` to ``gv_out`` ([B, T, N] for the bias sums, or [1, 1, N]:
        a scratch row, overwritten)."""
        B, T, N = grad_s.shape
        nblk = (N + _BLOCK - 1) // _BLOCK
        kb = 1 if gv_out.shape[0] == B else 0
        for job in prange(B * nblk):
            b = job // nblk
            n0 = (job % nblk) * _BLOCK
            n1 = min(N, n0 + _BLOCK)
            gv = np.zeros(_BLOCK, np.float32)
            gu = np.zeros(_BLOCK, np.float32)
            sgb = np.empty(_BLOCK, np.float32)
            bo = b * kb
            for t in range(T - 1, -1, -1):
                to = t * kb
                _dsdv_row(vpre[b, t], n0, n1, theta, kind, c1, c2, sgb)
                for n in range(n0, n1):
                    sg = sgb[n - n0]
                    keep = np.float32(1.0) - ks * s[b, t, n]
                    gvn = grad_s[b, t, n] * sg + (beta * keep) * gv[n - n0]
                    gun = gvn + alpha * gu[n - n0]
                    gv[n - n0] = gvn
                    gu[n - n0] = gun
                    ga_out[b, t, n] = gain * gun
                    gv_out[bo, to, n] = gvn

    @njit(parallel=True, cache=True)
    def _bptt_rec(grad_s, s, vpre, theta, kind, c1, c2, alpha, beta, gain, ks, wr, ga_out, gv_out):
        """Recurrent BPTT: as :func:`_bptt` with ``gs = grad_s + ga_{t+1} @ wr`` (``wr`` [N, N] float32,
        the recurrent weights times 2**rec_exp) from step T-2 down; parallel over the batch only (the
        product couples the neurons). The product sums over the source neuron in ascending order."""
        B, T, N = grad_s.shape
        kb = 1 if gv_out.shape[0] == B else 0
        for b in prange(B):
            gv = np.zeros(N, np.float32)
            gu = np.zeros(N, np.float32)
            gs = np.zeros(N, np.float32)
            sgb = np.empty(N, np.float32)
            for t in range(T - 1, -1, -1):
                gs[:] = grad_s[b, t]
                if t < T - 1:
                    acc = np.zeros(N, np.float32)
                    for o in range(N):
                        g = ga_out[b, t + 1, o]
                        if g != 0:
                            for n in range(N):
                                acc[n] += g * wr[o, n]
                    for n in range(N):
                        gs[n] += acc[n]
                _dsdv_row(vpre[b, t], 0, N, theta, kind, c1, c2, sgb)
                for n in range(N):
                    sg = sgb[n]
                    keep = np.float32(1.0) - ks * s[b, t, n]
                    gvn = gs[n] * sg + (beta * keep) * gv[n]
                    gun = gvn + alpha * gu[n]
                    gv[n] = gvn
                    gu[n] = gun
                    ga_out[b, t, n] = gain * gun
                    gv_out[b * kb, t * kb, n] = gvn


def _f32(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().to(torch.float32).numpy())


def backward(grad_s: torch.Tensor, s: torch.Tensor, vpre: torch.Tensor, alpha: float, beta: float,
             gain: float, theta: float, surrogate, subtract_reset: bool,
             w_rec_scaled: Optional[torch.Tensor], need_bias: bool = True):
    """BPTT of the CUBA LIF population (:meth:`snnhw.core.neuron._CubaLIF.backward`) in one kernel.

    ``grad_s`` (loss per spike), ``s`` (0/1 spikes) and ``vpre`` (pre-reset v, state units) are CPU
    [B, T, N]; ``alpha``/``beta`` the per-step decay factors, ``gain`` state units per weight unit,
    ``theta`` the threshold in state units (>= 1), ``surrogate`` a :class:`~snnhw.core.surrogate.Surrogate`,
    ``subtract_reset`` keeps the voltage path through a spike (soft reset), ``w_rec_scaled`` None or the
    float32 [N, N] ``w_rec * 2**rec_exp``. Returns ``(ga [B, T, N], gbias [N])`` float32 (loss per weight
    unit of input, per state unit of bias; ``gbias`` zeros unless ``need_bias``).

    Non-recurrent: the same float32 operations in the same order as the reference, so ``ga`` and
    ``gbias`` are bit-identical to it (lavadl: up to its exp, see :func:`_dsdv`). Recurrent: the
    ``ga_{t+1} @ wr`` sums in another order than torch's matmul (float32 rounding; the tests state the
    bound)."""
    g, sc, vp = _f32(grad_s), _f32(s), _f32(vpre)
    B, T, N = g.shape
    kind, c1, c2 = surrogate_constants(surrogate)
    ga = torch.empty((B, T, N), dtype=torch.float32)
    gv = torch.empty((B, T, N) if need_bias else (1, 1, N), dtype=torch.float32)
    f32 = np.float32
    common = (g, sc, vp, f32(theta), kind, c1, c2, f32(alpha), f32(beta), f32(gain), f32(0 if subtract_reset else 1))
    if w_rec_scaled is None or w_rec_scaled.numel() == 0:
        _launch(_bptt, *common, ga.numpy(), gv.numpy())
    else:
        _launch(_bptt_rec, *common, _f32(w_rec_scaled), ga.numpy(), gv.numpy())
    gbias = torch.zeros(N)
    if need_bias:
        for t in range(T - 1, -1, -1):  # the reference's order: per step a batch sum (of a contiguous
            gbias += gv[:, t].contiguous().sum(0)  # [B, N], as the reference's gv), then the running sum
    return ga, gbias
