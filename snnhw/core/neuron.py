"""CUBA LIF neuron over time: one step per arithmetic, one time loop, surrogate-gradient backward.

Tensors are shaped ``[..., time, neurons]`` (usually ``[batch, time, neurons]``) and hold values in
the chip's units (:mod:`snnhw.loihi`): a synaptic input ``a`` of 1 adds ``gain = 64`` to ``u``; the
threshold is ``theta = vth_mant << 6``; decays in netx units (0..4096) give the per-step factors
``alpha = 1 - i_decay / 4096`` (current) and ``beta = 1 - v_decay / 4096`` (voltage).

Layout (Norse-style: parameters and state are NamedTuples, the steps are pure functions)
-----------------------------------------------------------------------------------------
* :class:`CubaParams`: one population in netx units (what a spec holds). :func:`exact_params` turns
  it into :class:`ExactCuba` (chip integers), :func:`float_params` into :class:`FloatCuba` (float
  factors). Every field of those two may be a tensor broadcastable to the state ``[..., N]``: one
  threshold or decay per replica or per neuron.
* :class:`CubaState`: ``u``, ``v`` and the previous step's spikes ``s``, each ``[..., N]``.
* :func:`exact_step`: Lava's fixed-point LIF (``PyLifModelBitAcc``): :func:`snnhw.loihi.lif_integrate`
  (rounding toward zero, 24-bit wrap of u, saturation of v) and :func:`snnhw.loihi.lif_fire` (strict
  threshold, hard reset), int64 — bit-identical to Lava. :func:`float_step`: the same equations in
  float without rounding, wrap or saturation. Both are ``(a_t, state, params) -> (s, v_pre, state)``::

      u_t = alpha u_{t-1} + gain a_t
      v_t = beta v_{t-1} + u_t + B            (B: the effective bias, state units)
      S_t = [v_t > theta]                     (v_t here is v_pre, the tested membrane)

* :func:`cuba_loop`: the one time loop. It runs either step over ``a`` [..., T, N] with an optional
  recurrent input (:mod:`snnhw.core.synapse`: Lava's one-step delayed recurrent Dense) and returns a
  :class:`CubaRun` (spikes, v_pre, and optionally the u/v traces).
* :func:`cuba_lif` (autograd: training, :func:`snnhw.core.network.simulate`) and
  :func:`cuba_lif_trace` (no gradients, traces) wrap the loop for a :class:`CubaParams` population.
  The propagation study calls :func:`cuba_loop` with per-replica thresholds; a float reference with
  its own coefficients (NIR) builds a :class:`FloatCuba` (float64 works: the loop keeps ``a``'s dtype).

Reset conventions (the one place they are defined)
--------------------------------------------------
* ``"zero"`` — the chip's hard reset: at the spike step ``v <- 0`` (``FloatCuba.v_reset`` sets another
  value, as a NIR LIF may). The only reset :func:`exact_step` has.
* ``"subtract"`` — the float twin's soft reset: at the spike step ``v <- v - theta``, and the next step
  decays the reduced value: ``v_{t+1} = beta (v_t - theta S_t) + u_{t+1} + B``.
* ``"subtract-undecayed"`` — snnTorch ``Leaky(reset_mechanism="subtract")``: v is kept at the spike
  step and theta comes off the *next* update, after the decay:
  ``v_{t+1} = beta v_t + u_{t+1} + B - theta S_t`` (float only; the propagation study's float-soft).

Backward (:func:`cuba_lif`, :func:`bptt`): BPTT through the linear CUBA filter with the chosen surrogate
for dS/dv, straight-through for rounding, and the reset treated as a constant (its mask gates the voltage
path). The torch loop :func:`_bptt_reference` is the reference; when the exact forward ran on the fused
kernel, the backward runs :func:`snnhw.core.fused_cpu.backward` (bit-identical without recurrence).

Dispatch: :func:`exact_run` is the one entry for an exact run on the kernel :func:`exact_path` picks
(``SNNHW_KERNEL``: "fused" by default on CPU, "reference" forces :func:`cuba_loop`).
"""
from __future__ import annotations

import os
from typing import Callable, NamedTuple, Optional, Union

import torch

from snnhw import loihi
from snnhw.core import fused_cpu, synapse
from snnhw.core.surrogate import Surrogate
from snnhw.errors import InputError, MissingDependencyError

RESETS = ("zero", "subtract", "subtract-undecayed")
Scalar = Union[float, int, torch.Tensor]


class CubaParams(NamedTuple):
    """Neuron parameters of one population, in netx units.

    ``i_decay``/``v_decay`` in [0, 4096] (factor (4096 - d)/4096 per step), ``vth_mant`` the threshold
    mantissa (effective threshold ``vth_mant * 64``; a tensor gives one per replica), ``reset`` "zero"
    (chip) or "subtract" (float only).
    """

    i_decay: Scalar
    v_decay: Scalar
    vth_mant: Scalar
    reset: str = "zero"


class ExactCuba(NamedTuple):
    """Chip integers for :func:`exact_step`: ``i_factor = 4096 - i_decay``, ``v_factor = 4096 - v_decay``,
    ``vth = vth_mant << 6``, ``bias`` the effective bias B (int64 or 0); ``bounded`` allows
    :func:`snnhw.loihi.lif_integrate`'s provably identical fast path."""

    i_factor: Scalar
    v_factor: Scalar
    vth: Scalar
    bias: Scalar = 0
    bounded: bool = False


class FloatCuba(NamedTuple):
    """Float factors for :func:`float_step`: ``alpha``/``beta`` per step, ``theta`` in state units,
    ``gain`` on the input, ``bias`` added to v (None: nothing), ``reset`` one of :data:`RESETS`;
    ``v_gain`` (None: 1) multiplies u in the v update and ``v_reset`` (None: 0) is the value a "zero"
    reset sets — both for float references with their own coefficients."""

    alpha: Scalar
    beta: Scalar
    theta: Scalar
    gain: Scalar = float(1 << loihi.ACT_SHIFT)
    bias: Optional[torch.Tensor] = None
    reset: str = "zero"
    v_gain: Optional[Scalar] = None
    v_reset: Optional[Scalar] = None


class CubaState(NamedTuple):
    """State after a step: current ``u``, voltage ``v`` (after the reset) and the spikes ``s``."""

    u: torch.Tensor
    v: torch.Tensor
    s: torch.Tensor


class CubaRun(NamedTuple):
    """What :func:`cuba_loop` returns, each [..., T, N]: spikes (bool exact, float otherwise), the
    pre-reset voltage (float32 exact — |v| < 2**23 is exact there — else a's dtype; None unless asked)
    and the u / post-reset v traces (None unless recorded)."""

    s: torch.Tensor
    v_pre: Optional[torch.Tensor]
    u: Optional[torch.Tensor]
    v: Optional[torch.Tensor]


class CubaTrace(NamedTuple):
    """Per-step spikes, current and (post-reset) voltage, each [batch, time, neurons]."""

    s: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor


def exact_params(p: CubaParams, a: torch.Tensor, bias: Optional[torch.Tensor] = None,
                 w_rec: Optional[torch.Tensor] = None, rec_exp: int = 0) -> ExactCuba:
    """:class:`ExactCuba` for population ``p`` driven by the integer input ``a`` (and ``w_rec``): the
    fast path is taken when |a| plus the largest recurrent sum stays below 2**18 and |B| below 2**29."""
    b = 0 if bias is None else bias.detach().to(torch.int64)
    amax = int(a.abs().max()) if a.numel() else 0
    if w_rec is not None and w_rec.numel():
        wr = w_rec.detach().to(torch.int64)
        amax += int(loihi.shift_floor(wr.abs().sum(1).max(), max(rec_exp, 0)))
    bmax = int(b.abs().max()) if isinstance(b, torch.Tensor) and b.numel() else 0
    bounded = amax < loihi.BOUNDED_INPUT and bmax < loihi.BOUNDED_BIAS
    return ExactCuba(loihi.decay_factor(p.i_decay), loihi.decay_factor(p.v_decay),
                     loihi.effective_threshold(p.vth_mant), b, bounded)


def float_params(p: CubaParams, bias: Optional[torch.Tensor] = None) -> FloatCuba:
    """:class:`FloatCuba` of population ``p`` (float32 factors as Python floats)."""
    alpha = 1.0 - float(p.i_decay) / loihi.DECAY_UNITY
    beta = 1.0 - float(p.v_decay) / loihi.DECAY_UNITY
    theta = float(p.vth_mant) * (1 << loihi.VTH_SHIFT)
    b = None if bias is None else bias.detach().to(torch.float32)
    return FloatCuba(alpha, beta, theta, bias=b, reset=p.reset)


def exact_step(a: torch.Tensor, state: CubaState, p: ExactCuba):
    """One step of Lava's fixed-point LIF on int64 tensors. Returns (spikes (bool), v_pre, state)."""
    u, v = loihi.lif_integrate(a, state.u, state.v, p.i_factor, p.v_factor, p.bias, bounded=p.bounded)
    s, v_post = loihi.lif_fire(v, p.vth)
    return s, v, CubaState(u, v_post, s)


def float_step(a: torch.Tensor, state: CubaState, p: FloatCuba):
    """One float step (module docstring, reset per ``p.reset``). Returns (spikes (0/1 in v's dtype),
    v_pre, state)."""
    u = p.alpha * state.u + p.gain * a
    v = p.beta * state.v + (u if p.v_gain is None else p.v_gain * u)
    if p.bias is not None:
        v = v + p.bias
    if p.reset == "subtract-undecayed":
        v = v - p.theta * state.s
    s = (v > p.theta).to(v.dtype)
    if p.reset == "zero":
        v_post = v * (1 - s) if p.v_reset is None else torch.where(s > 0, p.v_reset, v)
    elif p.reset == "subtract":
        v_post = v - p.theta * s
    else:
        v_post = v
    return s, v, CubaState(u, v_post, s)


def cuba_loop(a: torch.Tensor, params: Union[ExactCuba, FloatCuba], *,
              recurrent: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None,
              keep_vpre: bool = False, record: bool = False) -> CubaRun:
    """Run :func:`exact_step` (``ExactCuba``; ``a`` int64) or :func:`float_step` (``FloatCuba``; state
    in ``a``'s dtype) over the time axis -2 of ``a`` [..., T, N], from rest, on ``a``'s device.

    ``recurrent(a_t, s_prev)`` (from step 1 on) adds the previous step's spikes through a recurrent
    synapse (:func:`snnhw.core.synapse.recurrent_exact` / :func:`~snnhw.core.synapse.recurrent_float`).
    """
    exact = isinstance(params, ExactCuba)
    step = exact_step if exact else float_step
    dev = a.device
    zeros = torch.zeros(a.shape[:-2] + a.shape[-1:], dtype=a.dtype, device=dev)
    state = CubaState(zeros, zeros, zeros.to(torch.bool) if exact else zeros)
    s_all = torch.zeros(a.shape, dtype=state.s.dtype, device=dev)
    vpre_all = torch.zeros(a.shape, dtype=torch.float32 if exact else a.dtype, device=dev) if keep_vpre else None
    u_all = torch.zeros(a.shape, dtype=a.dtype, device=dev) if record else None
    v_all = torch.zeros(a.shape, dtype=a.dtype, device=dev) if record else None
    for t in range(a.shape[-2]):
        at = a[..., t, :]
        if recurrent is not None and t > 0:
            at = recurrent(at, state.s)
        s, v_pre, state = step(at, state, params)
        s_all[..., t, :] = s
        if keep_vpre:
            vpre_all[..., t, :] = v_pre
        if record:
            u_all[..., t, :], v_all[..., t, :] = state.u, state.v
    return CubaRun(s_all, vpre_all, u_all, v_all)


KERNELS = ("fused", "reference", "triton")


def kernel_choice() -> str:
    """The exact loop's implementation: ``SNNHW_KERNEL`` = "fused" (default: the numba kernel of
    :mod:`snnhw.core.fused_cpu` for CPU tensors when numba imports, the Triton kernel of
    :mod:`snnhw.core.fused_triton` for CUDA tensors when triton imports), "triton" (the Triton kernel
    on any tensor: CPU tensors run it in Triton's interpreter, for tests) or "reference"
    (:func:`cuba_loop`)."""
    k = os.environ.get("SNNHW_KERNEL", "fused").strip().lower() or "fused"
    if k not in KERNELS:
        raise InputError(f"SNNHW_KERNEL must be one of {', '.join(KERNELS)}, not '{k}'")
    return k


def _triton():
    """:mod:`snnhw.core.fused_triton`, imported on first use: it imports triton, which the CPU path never
    needs."""
    from snnhw.core import fused_triton
    return fused_triton


def exact_path(a: torch.Tensor) -> str:
    """Which implementation a run on ``a`` takes: "fused" (numba), "triton" (CUDA, or CPU through the
    interpreter) or "reference" (any other device, or a kernel that is not available by default)."""
    k = kernel_choice()
    if k == "reference":
        return "reference"
    if k == "triton":
        if not _triton().available():
            raise MissingDependencyError("SNNHW_KERNEL=triton: triton is not installed (or older than "
                                         f"{'.'.join(map(str, _triton().MIN_VERSION))})")
        return "triton" if a.device.type in ("cuda", "cpu") else "reference"
    if a.device.type == "cuda":
        return "triton" if _triton().available() else "reference"
    return "fused" if a.device.type == "cpu" and fused_cpu.available() else "reference"


def _run_fused(a, bias, w_rec, rec_exp, p: CubaParams, record: bool, keep_vpre: bool,
               s_dtype: torch.dtype) -> Optional[CubaRun]:
    """The exact run through :func:`snnhw.core.fused_cpu.forward` or
    :func:`snnhw.core.fused_triton.forward` when :func:`exact_path` picks one and the parameters are
    per neuron; None otherwise (the caller runs :func:`cuba_loop`)."""
    path = exact_path(a)
    if path == "reference" or not all(isinstance(x, (int, float)) or torch.as_tensor(x).numel() == 1
                                      for x in (p.i_decay, p.v_decay)):
        return None
    kernel = fused_cpu if path == "fused" else _triton()
    out = kernel.forward(a, loihi.decay_factor(p.i_decay), loihi.decay_factor(p.v_decay),
                         loihi.effective_threshold(p.vth_mant), 0 if bias is None else bias,
                         w_rec, rec_exp, keep_vpre, record, s_dtype)
    return None if out is None else CubaRun(*out)


def exact_run(a: torch.Tensor, p: CubaParams, bias=None, w_rec: Optional[torch.Tensor] = None,
              rec_exp: int = 0, *, keep_vpre: bool = False, record: bool = False,
              s_dtype: torch.dtype = torch.bool) -> CubaRun:
    """The exact loop of population ``p`` on integer-valued ``a`` [..., T, N] on the path
    :func:`exact_path` picks (the fused kernel, or :func:`cuba_loop` of :func:`exact_step`): the same
    integers either way. ``p``'s fields (and ``bias``) may be tensors broadcastable to the state
    ``[..., N]`` — e.g. one threshold per replica; decays per neuron or per replica take the reference
    loop. Spikes come back in ``s_dtype``."""
    fused = _run_fused(a, bias, w_rec, rec_exp, p, record, keep_vpre, s_dtype)
    if fused is not None:
        return fused
    ai = a.to(torch.int64)
    rec = None if w_rec is None else synapse.recurrent_exact(w_rec, rec_exp)
    run = cuba_loop(ai, exact_params(p, ai, bias, w_rec, rec_exp), recurrent=rec, keep_vpre=keep_vpre,
                    record=record)
    return run if s_dtype == torch.bool else run._replace(s=run.s.to(s_dtype))


def _run(a, bias, w_rec, rec_exp, p: CubaParams, exact: bool, record: bool, keep_vpre: bool) -> CubaRun:
    """The loop for population ``p`` on synaptic input ``a`` [B, T, N]; spikes come back as float
    (``a``'s dtype if floating, else float32) unless ``record`` (bool exact, as Lava's Monitor)."""
    if exact:
        sdt = torch.bool if record else (a.dtype if a.is_floating_point() else torch.float32)
        return exact_run(a, p, bias, w_rec, rec_exp, keep_vpre=keep_vpre, record=record, s_dtype=sdt)
    rec = None if w_rec is None else synapse.recurrent_float(w_rec, rec_exp)
    return cuba_loop(a.detach().to(torch.float32), float_params(p, bias), recurrent=rec, keep_vpre=keep_vpre,
                     record=record)


class _CubaLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, bias, w_rec, p, rec_exp, exact, surrogate):
        need_grad = any(ctx.needs_input_grad[:3])
        run = _run(a, bias, w_rec, rec_exp, p, exact, record=False, keep_vpre=need_grad)
        ctx.save_for_backward(run.s, run.v_pre, w_rec)
        ctx.p, ctx.rec_exp, ctx.surrogate = p, rec_exp, surrogate
        ctx.has_bias = bias is not None
        ctx.path = exact_path(a) if exact else "reference"  # the backward follows the forward's kernel
        return run.s

    @staticmethod
    def backward(ctx, grad_s):
        s, vpre, w_rec = ctx.saved_tensors
        ga, gbias, g_wrec = bptt(grad_s, s, vpre, w_rec, ctx.p, ctx.rec_exp, ctx.surrogate,
                                 need_wrec=ctx.needs_input_grad[2], need_bias=ctx.has_bias, path=ctx.path)
        return ga, (gbias if ctx.has_bias else None), g_wrec, None, None, None, None


def bptt(grad_s, s, vpre, w_rec, p: CubaParams, rec_exp: int, surrogate: Surrogate, *, need_wrec: bool = True,
         need_bias: bool = True, path: str = "reference"):
    """BPTT of :func:`cuba_lif` from the loss per spike ``grad_s`` [B, T, N], the spikes ``s`` and the
    pre-reset voltages ``vpre`` (state units): the surrogate for dS/dv, the reset's mask gating the
    voltage path (constant reset), straight-through rounding. Returns (grad of ``a`` per weight unit
    [B, T, N], of the bias per state unit [N], of ``w_rec`` per mantissa [N, N] or None).

    ``path`` "fused" runs :func:`snnhw.core.fused_cpu.backward` (CPU float32; bit-identical to the loop
    below without recurrence, float32 rounding of the recurrent product otherwise); "triton"
    :func:`snnhw.core.fused_triton.backward` (CUDA, or CPU in the interpreter); "reference" the loop
    below, the truth."""
    f = float_params(p)
    alpha, beta, gain = f.alpha, f.beta, f.gain
    theta = max(f.theta, 1.0)
    wr = None if w_rec is None else w_rec.detach().to(torch.float32) * (2.0 ** rec_exp)
    if path == "fused" and fused_cpu.available() and grad_s.device.type == "cpu" \
            and grad_s.dtype == s.dtype == vpre.dtype == torch.float32:
        ga, gbias = fused_cpu.backward(grad_s, s, vpre, alpha, beta, gain, theta, surrogate,
                                       p.reset == "subtract", wr, need_bias=need_bias)
    elif path == "triton":
        ga, gbias = _triton().backward(grad_s, s, vpre, alpha, beta, gain, theta, surrogate,
                                       p.reset == "subtract", wr, need_bias=need_bias)
    else:
        ga, gbias = _bptt_reference(grad_s, s, vpre, wr, alpha, beta, gain, theta, surrogate, p.reset)
    g_wrec = None
    if w_rec is not None and need_wrec:
        g_wrec = (2.0 ** rec_exp) * torch.einsum("bto,bti->oi", ga[:, 1:], s[:, :-1])
    return ga, gbias, g_wrec


def _bptt_reference(grad_s, s, vpre, wr, alpha, beta, gain, theta, surrogate, reset):
    """The reference BPTT loop over time in torch (:func:`bptt`)."""
    sg = surrogate((vpre - theta) / theta) / theta  # dS/dv in state units
    keep = torch.ones_like(s) if reset == "subtract" else 1.0 - s
    return _filter_bptt(grad_s, sg, keep, wr, alpha, beta, gain)


def _filter_bptt(grad_s, sg, keep, wr, alpha, beta, gain):
    """BPTT through the CUBA filter: ``grad_s * sg`` [B, T, N] is what each step's pre-reset v receives
    directly (spikes: the loss per spike times dS/dv; a voltage readout: the loss per post-reset v times
    the reset mask), ``keep`` the reset mask on the voltage path, ``wr`` the recurrent matrix or None.
    Returns (grad of ``a`` per weight unit, of the bias per state unit)."""
    B, T, N = keep.shape
    dev = sg.device
    ga = torch.zeros_like(sg)
    gbias = torch.zeros(N, device=dev)
    gv = torch.zeros(B, N, device=dev)
    gu = torch.zeros(B, N, device=dev)
    ga_next = None
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
    return ga, gbias


class _CubaLI(torch.autograd.Function):
    """A non-firing readout: the post-reset v trace [B, T, N] of the population (float32 holding the
    chip's integers when exact: |v| < 2**23) and its spikes (no gradient). Backward: :func:`_filter_bptt`
    with the loss per v injected at every step, straight-through on the decays' truncation and the
    saturation, the reset (if a spike ever happened) as a constant mask."""

    @staticmethod
    def forward(ctx, a, bias, p, exact):
        run = _run(a, bias, None, 0, p, exact, record=True, keep_vpre=False)
        keep = 1.0 - run.s.to(torch.float32)
        ctx.save_for_backward(keep)
        ctx.p, ctx.has_bias = p, bias is not None
        ctx.mark_non_differentiable(run.s)
        return run.v.to(torch.float32), run.s

    @staticmethod
    def backward(ctx, grad_v, grad_s):
        (keep,) = ctx.saved_tensors
        f = float_params(ctx.p)
        ga, gbias = _filter_bptt(grad_v.to(torch.float32), keep, keep, None, f.alpha, f.beta, f.gain)
        return ga, (gbias if ctx.has_bias else None), None, None


def cuba_li(a: torch.Tensor, params: CubaParams, bias: Optional[torch.Tensor] = None, *,
            exact: bool = True) -> CubaTrace:
    """The voltage readout of a CUBA LIF population driven by ``a`` [B, T, N] (weight units): the same
    loop as :func:`cuba_lif` (a threshold the population cannot reach, e.g.
    :data:`snnhw.loihi.READOUT_VTH_MANT`, makes it a leaky integrator), returning its spikes (no
    gradient) and its post-reset v per step as float32 (the exact integers on the exact path), as Lava's
    Monitor reads v. Differentiable in ``a`` and ``bias`` through v (:class:`_CubaLI`); ``u`` is not
    returned (None)."""
    _check_reset(params, exact)
    v, s = _CubaLI.apply(a, bias, params, bool(exact))
    return CubaTrace(s, None, v)


def _check_reset(params: CubaParams, exact: bool) -> None:
    if params.reset not in ("zero", "subtract"):
        raise InputError(f"reset must be 'zero' or 'subtract', not '{params.reset}'")
    if exact and params.reset != "zero":
        raise InputError("the Loihi-exact neuron resets v to 0; subtractive reset exists only in float")


def cuba_lif(a: torch.Tensor, params: CubaParams, bias: Optional[torch.Tensor] = None, *,
             w_rec: Optional[torch.Tensor] = None, rec_exp: int = 0, exact: bool = True,
             surrogate: Surrogate = Surrogate()) -> torch.Tensor:
    """Spikes [B, T, N] (float 0/1) of a CUBA LIF population driven by synaptic input ``a``.

    ``a`` is what the neuron receives at each step (already delayed by the Dense pipeline), in weight
    units; ``bias`` is the effective bias ``B`` added to v every step (state units); ``w_rec`` an
    optional recurrent weight matrix [N, N] (effective mantissas, applied with ``rec_exp`` and a
    one-step delay). ``exact``: :func:`exact_step` (reset "zero" only), else :func:`float_step` in
    float32. Differentiable in ``a``, ``bias`` and ``w_rec``.
    """
    _check_reset(params, exact)
    return _CubaLIF.apply(a, bias, w_rec, params, int(rec_exp), bool(exact), surrogate)


def cuba_lif_trace(a: torch.Tensor, params: CubaParams, bias: Optional[torch.Tensor] = None, *,
                   w_rec: Optional[torch.Tensor] = None, rec_exp: int = 0,
                   exact: bool = True) -> CubaTrace:
    """Like :func:`cuba_lif` without gradients, returning spikes and the u, v traces per step.

    The v trace is the post-reset value (0 at spike steps), as Lava's Monitor reads it. Exact: spikes
    bool, u/v int64 (always the chip's hard reset); float: float32, any reset of :data:`RESETS`.
    """
    with torch.no_grad():
        run = _run(a, bias, w_rec, int(rec_exp), params, exact, record=True, keep_vpre=False)
    return CubaTrace(run.s, run.u, run.v)
