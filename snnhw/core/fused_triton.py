"""Fused exact CUBA LIF in Triton: the whole time loop of one population in one GPU kernel, and its BPTT.

Same integers as :mod:`snnhw.core.fused_cpu` (read its docstring for the rules) and as
:func:`snnhw.core.neuron.cuba_loop` of :func:`~snnhw.core.neuron.exact_step`: one lane per (batch row,
neuron), int64 arithmetic, the loop over T inside the kernel:

* ``u_t = W24(i32(trunc0(u_{t-1} * i_factor / 4096) + i32(a_t << 6)))``;
* ``v_t = clip(i32(trunc0(v_{t-1} * v_factor / 4096) + u_t + B), +-(2**23 - 1))``;
* ``S_t = [v_t > vth]``, then ``v <- 0`` where it spiked.

The backward kernel is :meth:`snnhw.core.neuron._CubaLIF.backward`'s loop, lane by lane in float32, with
the four surrogate shapes of :mod:`snnhw.core.surrogate` written out in the same operation order as
torch evaluates them there (``c / z`` as ``(1 / z) * c``, as torch's ``__rtruediv__`` does).

Recurrent layers: the recurrent term needs the whole previous spike vector, so the loop runs one kernel
launch per step and the recurrent Dense between launches through the one synapse
(:func:`snnhw.core.synapse.recurrent_exact` forward, ``ga_{t+1} @ (W * 2**rec_exp)`` backward, as the
reference computes them). Correct, but launch-bound like the reference loop; feed-forward layers make
one launch for all T steps.

Devices: CUDA tensors run the compiled kernels; CPU tensors run the same kernels in Triton's interpreter
(what ``TRITON_INTERPRET=1`` selects; built here per call site, so the environment variable is not
needed and nothing leaks into other code) — slow, for tests. Triton is optional: :func:`available` is
False when it is missing or older than :data:`MIN_VERSION`; :mod:`snnhw.core.neuron` imports this module
only when it picks this path.

Float32 on GPU: the backward is compiled without fused multiply-adds (``enable_fp_fusion=False``) and
with IEEE division (``div_rn``; triton's ``/`` is approximate there), so it performs the same float32
operations, in the same order, as the reference's separate torch kernels; only ``lavadl``'s ``exp`` is
the GPU's fast one, and triton 2.x's ``div_rn`` flushes subnormals. Not run on a GPU yet: the
interpreter tests show the operation order, tests/test_fused_triton.py compiles every variant for sm_90.
"""
import functools
import math
from typing import Optional

import torch

from snnhw import loihi
from snnhw.core import synapse

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised on installs without triton
    triton = None

MIN_VERSION = (2, 3)  # the oldest triton whose interpreter ran the tests (2.3.1)
SURROGATE_CODES = {"arctan": 0, "fast_sigmoid": 1, "lavadl": 2, "triangle": 3}
_GPU_BLOCK = 128
_INTERPRETER_BLOCK = 4096


def _version() -> tuple:
    parts = []
    for p in str(getattr(triton, "__version__", "0")).split(".")[:2]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def available() -> bool:
    """True when triton imported and is at least :data:`MIN_VERSION`."""
    return triton is not None and _version() >= MIN_VERSION


if triton is not None:
    def _forward_kernel(a_ptr, ifac_ptr, vfac_ptr, vth_ptr, bias_ptr, u_ptr, v_ptr, s_ptr, vpre_ptr,
                        urec_ptr, vrec_ptr, BN, N, stride_b, t0, nsteps,
                        KEEP_VPRE: tl.constexpr, RECORD: tl.constexpr, BLOCK: tl.constexpr,
                        MAX_UV: tl.constexpr, V_LIMIT: tl.constexpr, ACT_SHIFT: tl.constexpr,
                        DECAY_SHIFT: tl.constexpr):
        """Steps ``t0 .. t0 + nsteps - 1`` of lanes ``idx`` (= b * N + n); u/v state in and out of
        ``u_ptr``/``v_ptr`` [B * N] int64; a, s, vpre, u/v records [B, T, N] with batch stride
        ``stride_b``."""
        idx = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        live = idx < BN
        n = idx % N
        base = (idx // N).to(tl.int64) * stride_b + n
        ifac = tl.load(ifac_ptr + n, mask=live, other=0)
        vfac = tl.load(vfac_ptr + n, mask=live, other=0)
        vth = tl.load(vth_ptr + n, mask=live, other=0)
        bias = tl.load(bias_ptr + n, mask=live, other=0)
        u = tl.load(u_ptr + idx, mask=live, other=0)
        v = tl.load(v_ptr + idx, mask=live, other=0)
        for i in range(nsteps):
            off = base + (t0 + i) * N
            at = tl.load(a_ptr + off, mask=live, other=0)
            p = u * ifac  # trunc0(u * i_factor / 4096): sign-magnitude shift
            du = tl.where(p < 0, -((-p) >> DECAY_SHIFT), p >> DECAY_SHIFT)
            u = (((du + (((at << ACT_SHIFT) << 32) >> 32)) << 32) >> 32)  # int32 C-casts: (x << 32) >> 32
            u = tl.where(u > MAX_UV, u - 2 * MAX_UV, tl.where(u <= -MAX_UV, u + 2 * MAX_UV, u))
            p = v * vfac
            dv = tl.where(p < 0, -((-p) >> DECAY_SHIFT), p >> DECAY_SHIFT)
            v = ((dv + u + bias) << 32) >> 32
            v = tl.where(v > V_LIMIT, V_LIMIT, tl.where(v < -V_LIMIT, -V_LIMIT, v))
            fire = v > vth
            tl.store(s_ptr + off, fire.to(s_ptr.dtype.element_ty), mask=live)
            if KEEP_VPRE:
                tl.store(vpre_ptr + off, v.to(tl.float32), mask=live)
            v = tl.where(fire, 0, v)
            if RECORD:
                tl.store(urec_ptr + off, u, mask=live)
                tl.store(vrec_ptr + off, v, mask=live)
        tl.store(u_ptr + idx, u, mask=live)
        tl.store(v_ptr + idx, v, mask=live)

    def _backward_kernel(gs_ptr, s_ptr, vpre_ptr, ga_ptr, gv_ptr, gu_ptr, gsum_ptr, BN, N, stride_b, t0,
                         nsteps, alpha, beta, gain, theta, c1, c2,
                         SURR: tl.constexpr, SUBTRACT: tl.constexpr, DIV_RN: tl.constexpr, BLOCK: tl.constexpr):
        """Steps ``t0, t0 - 1, .. t0 - nsteps + 1`` backward; gv, gu and the running sum of gv (the bias
        gradient before the batch sum) in and out of [B * N] float32 state. ``DIV_RN``: IEEE division
        (``div_rn``; triton's ``/`` is approximate on GPUs), False only in triton 2.x's interpreter, whose
        ``/`` is numpy's IEEE division already and which has no ``div_rn``."""
        idx = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        live = idx < BN
        base = (idx // N).to(tl.int64) * stride_b + idx % N
        gv = tl.load(gv_ptr + idx, mask=live, other=0.0)
        gu = tl.load(gu_ptr + idx, mask=live, other=0.0)
        acc = tl.load(gsum_ptr + idx, mask=live, other=0.0)
        for i in range(nsteps):
            off = base + (t0 - i) * N
            gs = tl.load(gs_ptr + off, mask=live, other=0.0)
            x = tl.load(vpre_ptr + off, mask=live, other=0.0) - theta
            x = tl.math.div_rn(x, theta) if DIV_RN else x / theta
            if SURR == 0:  # arctan: (alpha/2) / (1 + (pi/2 * alpha * x)**2)
                y = c2 * x
                z = 1.0 + y * y
                sg = (tl.math.div_rn(1.0, z) if DIV_RN else 1.0 / z) * c1
            elif SURR == 1:  # fast_sigmoid: 1 / (slope * |x| + 1)**2
                d = c1 * tl.abs(x) + 1.0
                d = d * d
                sg = tl.math.div_rn(1.0, d) if DIV_RN else 1.0 / d
            elif SURR == 2:  # lavadl: scale / (2 tau) * exp(-|x| / tau)
                z = -tl.abs(x)
                sg = c1 * tl.exp(tl.math.div_rn(z, c2) if DIV_RN else z / c2)
            else:  # triangle: max(0, 1 - |x| / width) / width
                z = tl.abs(x)
                y = 1.0 - (tl.math.div_rn(z, c1) if DIV_RN else z / c1)
                y = tl.where(y > 0.0, y, 0.0)
                sg = tl.math.div_rn(y, c1) if DIV_RN else y / c1
            sg = tl.math.div_rn(sg, theta) if DIV_RN else sg / theta
            if SUBTRACT:
                gv = gs * sg + beta * gv
            else:
                keep = 1.0 - tl.load(s_ptr + off, mask=live, other=0).to(tl.float32)
                gv = gs * sg + (beta * keep) * gv
            gu = gv + alpha * gu
            tl.store(ga_ptr + off, gain * gu, mask=live)
            acc += gv
        tl.store(gv_ptr + idx, gv, mask=live)
        tl.store(gu_ptr + idx, gu, mask=live)
        tl.store(gsum_ptr + idx, acc, mask=live)


@functools.lru_cache(maxsize=None)
def _kernels(interpret: bool):
    """(forward, backward) as compiled JIT functions, or interpreted ones for CPU tensors."""
    if interpret:
        from triton.runtime.interpreter import InterpretedFunction
        return InterpretedFunction(_forward_kernel), InterpretedFunction(_backward_kernel)
    return triton.jit(_forward_kernel), triton.jit(_backward_kernel)


def _launch_setup(x: torch.Tensor, lanes: int):
    """(kernels, block, grid, extra launch options) for tensors like ``x``; None on other devices."""
    if x.device.type not in ("cuda", "cpu"):
        return None
    interpret = x.device.type == "cpu"
    block = min(_INTERPRETER_BLOCK, triton.next_power_of_2(max(lanes, 1))) if interpret else _GPU_BLOCK
    opts = {} if interpret else {"num_warps": 4, "enable_fp_fusion": False}
    return _kernels(interpret), block, (triton.cdiv(lanes, block),), opts


def _spike_buffer() -> torch.dtype:
    """The kernel's buffer for bool spikes: int8 (viewed as bool after), int64 on triton 2.x, whose
    interpreter has no int8."""
    return torch.int8 if _version() >= (3, 0) else torch.int64


def _per_neuron(x, n: int, device) -> Optional[torch.Tensor]:
    """``x`` (a number or a tensor broadcastable to [n]) as a contiguous int64 [n] on ``device``; None
    when it varies along another axis (per replica), which only the reference loop handles."""
    t = torch.as_tensor(x, device=device).detach().to(torch.int64)
    if t.numel() not in (1, n) or (t.numel() == n and t.dim() and t.shape[-1] != n):
        return None
    return t.reshape(-1).expand(n).contiguous() if t.numel() == 1 else t.reshape(n).contiguous()


def forward(a: torch.Tensor, i_factor, v_factor, vth, bias, w_rec: Optional[torch.Tensor], rec_exp: int,
            keep_vpre: bool, record: bool, s_dtype: torch.dtype):
    """:func:`snnhw.core.fused_cpu.forward` on the Triton kernel: ``a`` [..., T, N] integer-valued (CUDA,
    or CPU through the interpreter). Returns ``(s, v_pre, u, v)`` shaped like ``a`` (spikes in
    ``s_dtype``, pre-reset v float32 or None, u and post-reset v int64 or None), or None when Triton
    is unavailable, the device is neither, or a parameter is per replica."""
    if a.numel() == 0 or not available():
        return None
    T, N = int(a.shape[-2]), int(a.shape[-1])
    a3 = a.detach().to(torch.int64).reshape(-1, T, N).contiguous()
    B = a3.shape[0]
    setup = _launch_setup(a3, B * N)
    pars = [_per_neuron(x, N, a3.device) for x in (i_factor, v_factor, vth, bias)]
    if setup is None or any(p is None for p in pars):
        return None
    (fwd, _), block, grid, opts = setup
    dev, shape = a3.device, a3.shape
    s_kernel_dtype = _spike_buffer() if s_dtype == torch.bool else s_dtype
    s = torch.empty(shape, dtype=s_kernel_dtype, device=dev)
    vpre = torch.empty(shape if keep_vpre else (1,), dtype=torch.float32, device=dev)
    u_rec = torch.empty(shape if record else (1,), dtype=torch.int64, device=dev)
    v_rec = torch.empty(shape if record else (1,), dtype=torch.int64, device=dev)
    u = torch.zeros(B * N, dtype=torch.int64, device=dev)
    v = torch.zeros(B * N, dtype=torch.int64, device=dev)

    def launch(a_src, t0, nsteps):
        fwd[grid](a_src, *pars, u, v, s, vpre, u_rec, v_rec, B * N, N, T * N, t0, nsteps,
                  KEEP_VPRE=bool(keep_vpre), RECORD=bool(record), BLOCK=block, MAX_UV=loihi.MAX_UV,
                  V_LIMIT=loihi.V_LIMIT, ACT_SHIFT=loihi.ACT_SHIFT, DECAY_SHIFT=loihi.DECAY_SHIFT, **opts)

    if w_rec is None or w_rec.numel() == 0:
        launch(a3, 0, T)
    else:
        rec = synapse.recurrent_exact(w_rec.to(dev), rec_exp)
        a_rec = a3.clone()
        for t in range(T):
            if t > 0:
                a_rec[:, t] = rec(a_rec[:, t], s[:, t - 1] != 0)
            launch(a_rec, t, 1)
    if s_dtype == torch.bool:
        s = s.view(torch.bool) if s.dtype == torch.int8 else s != 0
    out = a.shape
    return (s.reshape(out), vpre.reshape(out) if keep_vpre else None,
            u_rec.reshape(out) if record else None, v_rec.reshape(out) if record else None)


def _surrogate_args(surrogate):
    """(kernel code, c1, c2) of a :class:`snnhw.core.surrogate.Surrogate`: the constants the torch
    version computes in Python (double) before they meet a float32 tensor."""
    name = surrogate.name
    if name == "arctan":
        return SURROGATE_CODES[name], surrogate.alpha / 2, math.pi / 2 * surrogate.alpha
    if name == "fast_sigmoid":
        return SURROGATE_CODES[name], float(surrogate.slope), 0.0
    if name == "lavadl":
        tau = 100.0 * surrogate.tau_grad
        return SURROGATE_CODES[name], 0.1 * surrogate.scale_grad / (2 * tau), tau
    return SURROGATE_CODES[name], float(surrogate.width), 0.0


def backward(grad_s: torch.Tensor, s: torch.Tensor, vpre: torch.Tensor, alpha: float, beta: float,
             gain: float, theta: float, surrogate, subtract_reset: bool,
             w_rec_scaled: Optional[torch.Tensor], need_bias: bool = True):
    """BPTT of one population (:meth:`snnhw.core.neuron._CubaLIF.backward`'s math): ``grad_s``, ``s``,
    ``vpre`` [B, T, N]; ``theta`` >= 1 in state units; ``w_rec_scaled`` None or float32 [N, N]
    (``w_rec * 2**rec_exp``). Returns ``(ga [B, T, N] float32, gbias [N] float32)``; ``gbias`` is zeros
    unless ``need_bias`` (the interface of :func:`snnhw.core.fused_cpu.backward`). ``gbias`` sums each
    lane over time in the kernel, then over the batch: another order than the reference's."""
    B, T, N = (int(x) for x in s.shape)
    dev = vpre.device
    g = torch.empty((B, T, N), dtype=torch.float32, device=dev)
    g.copy_(grad_s)  # a private float32 copy: the recurrent steps add into it
    s_c = (s.to(torch.float32) if s.dtype == torch.bool else s).contiguous()
    vp = vpre.to(torch.float32).contiguous()
    ga = torch.empty((B, T, N), dtype=torch.float32, device=dev)  # every element is written
    state = torch.zeros((3, B * N), dtype=torch.float32, device=dev)  # gv, gu, sum over t of gv
    if B * T * N == 0:
        return ga, torch.zeros(N, dtype=torch.float32, device=dev)
    (_, bwd), block, grid, opts = _launch_setup(vp, B * N)
    code, c1, c2 = _surrogate_args(surrogate)

    def launch(t0, nsteps):
        bwd[grid](g, s_c, vp, ga, state[0], state[1], state[2], B * N, N, T * N, t0, nsteps,
                  float(alpha), float(beta), float(gain), float(theta), float(c1), float(c2),
                  SURR=code, SUBTRACT=bool(subtract_reset), BLOCK=block,
                  DIV_RN=vp.device.type != "cpu" or _version() >= (3, 0), **opts)

    if w_rec_scaled is None:
        launch(T - 1, T)
    else:
        wr = w_rec_scaled.to(device=dev, dtype=torch.float32)
        for t in range(T - 1, -1, -1):
            if t < T - 1:
                g[:, t] = g[:, t] + ga[:, t + 1].contiguous() @ wr
            launch(t, 1)
    if not need_bias:
        return ga, torch.zeros(N, dtype=torch.float32, device=dev)
    return ga, state[2].reshape(B, N).sum(0)
