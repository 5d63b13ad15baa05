"""CUBA LIF neuron over time: Loihi-exact integer forward, float twin, surrogate-gradient backward.

Tensors are shaped ``[batch, time, neurons]`` and hold values in the chip's integer units (see
:mod:`snnhw.loihi`): a synaptic input ``a`` of 1 adds 64 to ``u``; the threshold is ``vth_mant << 6``.

* ``exact=True`` runs :func:`snnhw.loihi.lif_step` (rounding toward zero, 24-bit wrap of u,
  saturation of v, strict threshold, hard reset) in int64 — bit-identical to Lava's fixed-point LIF.
* ``exact=False`` is the float twin: the same equations in float32 without rounding, wrap or
  saturation; decays and threshold may be non-integer; ``reset="subtract"`` is available there.

Only the neuron recurrence loops over time. An optional recurrent weight matrix (Lava's one-step
delayed recurrent Dense) is applied inside the loop. The backward pass is BPTT through the linear
CUBA filter with the chosen surrogate for dS/dv, straight-through for rounding, and the reset
treated as a constant (its mask gates the voltage path).
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch

from snnhw import loihi
from snnhw.core.surrogate import Surrogate


class CubaParams(NamedTuple):
    """Neuron parameters of one population, in netx units.

    ``i_decay``/``v_decay`` in [0, 4096] (factor (4096 - d)/4096 per step), ``vth_mant`` the threshold
    mantissa (effective threshold ``vth_mant * 64``), ``reset`` "zero" (chip) or "subtract" (float only).
    """

    i_decay: float
    v_decay: float
    vth_mant: float
    reset: str = "zero"


class CubaTrace(NamedTuple):
    """Per-step spikes, current and (post-reset) voltage, each [batch, time, neurons]."""

    s: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor


def _run(a, bias, w_rec, rec_exp, p: CubaParams, exact: bool, record: bool, keep_vpre: bool = True):
    """Forward recurrence. Returns spikes, pre-reset voltages (for the surrogate; None unless
    ``keep_vpre``) and optional traces."""
    B, T, N = a.shape
    if exact:
        ai = a.to(torch.int64)
        dev = a.device
        b = torch.zeros(N, dtype=torch.int64, device=dev) if bias is None else bias.detach().to(torch.int64)
        u = torch.zeros(B, N, dtype=torch.int64, device=dev)
        v = torch.zeros(B, N, dtype=torch.int64, device=dev)
        fi, fv = loihi.decay_factor(p.i_decay), loihi.decay_factor(p.v_decay)
        vth = loihi.effective_threshold(p.vth_mant)
        wr = None if w_rec is None else w_rec.detach().to(torch.int64)
        s_all = torch.zeros(B, T, N, dtype=torch.bool, device=dev)
        vpre_all = torch.zeros(B, T, N, dtype=torch.float32, device=dev) if keep_vpre else None
        u_tr = torch.zeros(B, T, N, dtype=torch.int64, device=dev) if record else None
        v_tr = torch.zeros(B, T, N, dtype=torch.int64, device=dev) if record else None
        s_prev = None
        # |a| bound over the run (feed-forward plus the largest possible recurrent sum) for the
        # provably identical fast path of lif_integrate
        amax = int(ai.abs().max()) if ai.numel() else 0
        if wr is not None and wr.numel():
            amax += int(loihi.shift_floor(wr.abs().sum(1).max(), max(rec_exp, 0)))
        bmax = int(b.abs().max()) if b.numel() else 0
        bounded = amax < loihi.BOUNDED_INPUT and bmax < loihi.BOUNDED_BIAS
        for t in range(T):
            at = ai[:, t]
            if wr is not None and s_prev is not None:
                at = loihi.sum_ports(at, loihi.dense_accumulate(s_prev.to(torch.int64), wr, rec_exp))
            u, v = loihi.lif_integrate(at, u, v, fi, fv, b, bounded=bounded)
            if keep_vpre:
                vpre_all[:, t] = v.to(torch.float32)  # pre-reset voltage, for the surrogate
            s, v = loihi.lif_fire(v, vth)
            s_all[:, t] = s
            if record:
                u_tr[:, t], v_tr[:, t] = u, v
            s_prev = s
        trace = CubaTrace(s_all, u_tr, v_tr) if record else None
        return s_all.to(a.dtype if a.is_floating_point() else torch.float32), vpre_all, trace

    # float twin
    a = a.detach().to(torch.float32)
    dev = a.device
    b = torch.zeros(N, device=dev) if bias is None else bias.detach().to(torch.float32)
    alpha = 1.0 - float(p.i_decay) / loihi.DECAY_UNITY
    beta = 1.0 - float(p.v_decay) / loihi.DECAY_UNITY
    vth = float(p.vth_mant) * (1 << loihi.VTH_SHIFT)
    gain = float(1 << loihi.ACT_SHIFT)
    wr = None if w_rec is None else w_rec.detach().to(torch.float32) * (2.0 ** rec_exp)
    u = torch.zeros(B, N, device=dev)
    v = torch.zeros(B, N, device=dev)
    s_all = torch.zeros(B, T, N, device=dev)
    vpre_all = torch.zeros(B, T, N, device=dev)
    u_tr = torch.zeros(B, T, N, device=dev) if record else None
    v_tr = torch.zeros(B, T, N, device=dev) if record else None
    s = None
    for t in range(T):
        at = a[:, t]
        if wr is not None and s is not None:
            at = at + s @ wr.t()
        u = alpha * u + gain * at
        v = beta * v + u + b
        s = (v > vth).to(torch.float32)
        vpre_all[:, t] = v
        v = v - vth * s if p.reset == "subtract" else v * (1 - s)
        s_all[:, t] = s
        if record:
            u_tr[:, t], v_tr[:, t] = u, v
    trace = CubaTrace(s_all, u_tr, v_tr) if record else None
    return s_all, vpre_all, trace


class _CubaLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, bias, w_rec, p, rec_exp, exact, surrogate):
        need_grad = any(ctx.needs_input_grad[:3])
        s, vpre, _ = _run(a, bias, w_rec, rec_exp, p, exact, record=False, keep_vpre=need_grad)
        ctx.save_for_backward(s, vpre, w_rec)
        ctx.p, ctx.rec_exp, ctx.surrogate = p, rec_exp, surrogate
        ctx.has_bias = bias is not None
        return s

    @staticmethod
    def backward(ctx, grad_s):
        s, vpre, w_rec = ctx.saved_tensors
        p: CubaParams = ctx.p
        alpha = 1.0 - float(p.i_decay) / loihi.DECAY_UNITY
        beta = 1.0 - float(p.v_decay) / loihi.DECAY_UNITY
        theta = max(float(p.vth_mant) * (1 << loihi.VTH_SHIFT), 1.0)
        gain = float(1 << loihi.ACT_SHIFT)
        sg = ctx.surrogate((vpre - theta) / theta) / theta  # dS/dv in state units
        keep = torch.ones_like(s) if p.reset == "subtract" else 1.0 - s
        B, T, N = s.shape
        dev = vpre.device
        ga = torch.zeros_like(vpre)
        gbias = torch.zeros(N, device=dev)
        gv = torch.zeros(B, N, device=dev)
        gu = torch.zeros(B, N, device=dev)
        ga_next = None
        wr = None if w_rec is None else w_rec.detach().to(torch.float32) * (2.0 ** ctx.rec_exp)
        for t in range(T - 1, -1, -1):
            gs = grad_s[:, t]
            if wr is not None and ga_next is not None:
                gs = gs + ga_next @ wr
            gv = gs * sg[:, t] + beta * keep[:, t] * gv
            gu = gv + alpha * gu
            ga_t = gain * gu
            ga[:, t] = ga_t
            gbias += gv.sum(0)
            ga_next = ga_t
        g_wrec = None
        if w_rec is not None and ctx.needs_input_grad[2]:
            g_wrec = (2.0 ** ctx.rec_exp) * torch.einsum("bto,bti->oi", ga[:, 1:], s[:, :-1])
        return ga, (gbias if ctx.has_bias else None), g_wrec, None, None, None, None


def cuba_lif(a: torch.Tensor, params: CubaParams, bias: Optional[torch.Tensor] = None, *,
             w_rec: Optional[torch.Tensor] = None, rec_exp: int = 0, exact: bool = True,
             surrogate: Surrogate = Surrogate()) -> torch.Tensor:
    """Spikes [B, T, N] (float 0/1) of a CUBA LIF population driven by synaptic input ``a``.

    ``a`` is what the neuron receives at each step (already delayed by the Dense pipeline), in weight
    units; ``bias`` is the effective bias ``B`` added to v every step (state units); ``w_rec`` an
    optional recurrent weight matrix [N, N] (effective mantissas, applied with ``rec_exp`` and a
    one-step delay). Differentiable in ``a``, ``bias`` and ``w_rec``.
    """
    if params.reset not in ("zero", "subtract"):
        raise ValueError(f"reset must be 'zero' or 'subtract', not '{params.reset}'")
    if exact and params.reset != "zero":
        raise ValueError("the Loihi-exact neuron resets v to 0; subtractive reset exists only in float")
    return _CubaLIF.apply(a, bias, w_rec, params, int(rec_exp), bool(exact), surrogate)


def cuba_lif_trace(a: torch.Tensor, params: CubaParams, bias: Optional[torch.Tensor] = None, *,
                   w_rec: Optional[torch.Tensor] = None, rec_exp: int = 0,
                   exact: bool = True) -> CubaTrace:
    """Like :func:`cuba_lif` without gradients, returning spikes and the u, v traces per step.

    The v trace is the post-reset value (0 at spike steps), as Lava's Monitor reads it.
    """
    with torch.no_grad():
        _, _, trace = _run(a, bias, w_rec, int(rec_exp), params, exact, record=True, keep_vpre=False)
    return trace
