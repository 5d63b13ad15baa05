"""Loihi 2 integer semantics, as lava-nc 0.10.0's fixed-point models compute them.

This module is the one place where snnhw knows how the chip rounds, wraps and saturates. Training
(:mod:`snnhw.core`), simulation, export (:mod:`snnhw.io`) and initialization all call it; nothing
else re-implements these rules. Every rule below is proven against Lava by the differential tests in
``tests/test_lava_differential.py``; the citations are to ``../shared/reference/loihi2_fixed_point.md``.

Units
-----
All quantities are integers in the chip's own units:

* ``u`` (synaptic current) and ``v`` (membrane voltage): 24-bit signed state. A synaptic input ``a``
  enters ``u`` as ``a << 6`` (MSB alignment).
* decays in **netx units** (what lava-dl writes as ``iDecay``/``vDecay``): an integer ``d`` in
  [0, 4096] multiplies the state by ``(4096 - d) / 4096`` each step, rounding toward zero. Lava's
  ``LIF`` stores the current decay as ``du = iDecay - 1`` (it adds 1 internally) and the voltage decay
  as ``dv = vDecay``; see :func:`lava_du` / :func:`lava_dv`.
* threshold mantissa ``vth`` (17 bits, unsigned): a neuron spikes when ``v > vth << 6`` (strict).
* bias: mantissa (13-bit signed) and exponent; ``B = mant << exp`` (floor for a negative exponent),
  added to ``v`` on **every** step, the first included. netx always uses ``exp = 6``.
* weights: 8-bit mantissas as Lava's Dense holds them ("8-bit full-scale" units, in [-256, 255])
  with a per-Dense exponent applied to the **sum** (floor for negative exponents).

Ranges (checked by :func:`check_range`, one-line errors naming the parameter)
------------------------------------------------------------------------------
=================  ================  =====================================================
parameter          range             note
=================  ================  =====================================================
``i_decay``        0 .. 4096         netx iDecay; Lava du = i_decay - 1 (netx writes du=-1)
``v_decay``        0 .. 4096         netx vDecay; Lava dv = v_decay (netx writes dv=4096)
``vth_mant``       0 .. 131071       17-bit unsigned; effective threshold vth << 6
``bias_mant``      -4096 .. 4095     13-bit signed
``bias_exp``       0 .. 7            3-bit unsigned (netx writes 6)
``weight``         -256 .. 255       8-bit mantissa plus sign bit, as Lava's Dense clips
``weight_exp``     -8 .. 7           exponent on the accumulated sum (``rec_exp``: same, recurrent)
``num_weight_bits``1 .. 8            low bits cleared by Lava's Dense
=================  ================  =====================================================

The 12-bit chip registers hold 0..4095; the value 4096 in the decay columns is what lava-dl/netx write
(``iDecay = 0`` becomes ``du = -1``; ``vDecay = 4096`` makes ``v = u + B``), and Lava runs it.
"""
from __future__ import annotations

import enum
from typing import Optional, Tuple

import numpy as np
import torch

from snnhw.errors import InputError

# ------------------------------------------------------------------------------------------------
# Bit widths and constants (lava/proc/lif/models.py l.94-108)
# ------------------------------------------------------------------------------------------------
DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT  # 4096
STATE_BITS = 24
MAX_UV = 1 << (STATE_BITS - 1)  # 2**23
V_LIMIT = MAX_UV - 1  # v saturates at +-(2**23 - 1)
ACT_SHIFT = 6  # synaptic input a << 6 enters u
VTH_SHIFT = 6  # threshold mantissa << 6
NETX_BIAS_EXP = 6  # netx writes bias_exp = 6: a bias of 1 equals one weight unit
CURRENT_DECAY_OFFSET = 1  # Lava's ds_offset: the current uses du + 1

RANGES = {
    "i_decay": (0, DECAY_UNITY),
    "v_decay": (0, DECAY_UNITY),
    "vth_mant": (0, (1 << 17) - 1),
    "bias_mant": (-(1 << 12), (1 << 12) - 1),
    "bias_exp": (0, 7),
    "weight": (-256, 255),
    "weight_exp": (-8, 7),
    "rec_exp": (-8, 7),
    "num_weight_bits": (1, 8),
}


class RangeError(InputError):
    """A parameter lies outside the chip's legal range. The message is one line."""


def check_range(name: str, value, where: str = "") -> None:
    """Raise :class:`RangeError` unless every element of ``value`` is an integer in ``RANGES[name]``."""
    lo, hi = RANGES[name]
    arr = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    prefix = f"{where}: " if where else ""
    if arr.size == 0:
        return
    if not np.all(np.isfinite(arr.astype(np.float64))):
        raise RangeError(f"{prefix}{name} contains NaN or infinity; legal range is integers {lo}..{hi}")
    if not np.all(np.equal(np.mod(arr.astype(np.float64), 1.0), 0.0)):
        raise RangeError(f"{prefix}{name} must be integer-valued; legal range is {lo}..{hi}")
    amin, amax = arr.min(), arr.max()
    if amin < lo or amax > hi:
        bad = amin if amin < lo else amax
        raise RangeError(f"{prefix}{name} = {int(bad)} is outside the legal range {lo}..{hi}")


def lava_du(i_decay: int) -> int:
    """Lava LIF ``du`` for a netx current decay (netx: ``du = iDecay - 1``)."""
    return int(i_decay) - CURRENT_DECAY_OFFSET


def lava_dv(v_decay: int) -> int:
    """Lava LIF ``dv`` for a netx voltage decay (identity)."""
    return int(v_decay)


def decay_factor(decay: int) -> int:
    """Multiplier (out of 4096) that a netx-unit decay applies per step."""
    return DECAY_UNITY - int(decay)


# ------------------------------------------------------------------------------------------------
# Integer primitives on torch int64 tensors
# ------------------------------------------------------------------------------------------------
def i32(x: torch.Tensor) -> torch.Tensor:
    """C-cast to int32 (two's-complement wrap), kept in int64. Lava's channels and int32 adds do this."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def wrap24(x: torch.Tensor) -> torch.Tensor:
    """Lava's one-shot 24-bit wrap of u (models.py l.161-170): result in (-2**23, 2**23], not a modulo.

    ``x > 2**23`` becomes ``x - 2**24``; otherwise ``x <= -2**23`` becomes ``x + 2**24``. Values above
    ``3 * 2**23`` stay out of range until the next step, exactly as in Lava. Computed branch-free:
    ``(c >> 63)`` is -1 where ``c < 0`` and 0 elsewhere (int64, |x| < 2**62), which masks the offset.
    """
    y = x + (((MAX_UV - x) >> 63) & -(2 * MAX_UV))  # x > 2**23
    return y + (((y + MAX_UV - 1) >> 63) & (2 * MAX_UV))  # y <= -2**23


def saturate_v(x: torch.Tensor) -> torch.Tensor:
    """Clip v to +-(2**23 - 1) (models.py l.186)."""
    return x.clamp(-V_LIMIT, V_LIMIT)


def decay(x: torch.Tensor, factor) -> torch.Tensor:
    """``trunc0(x * factor / 4096)``: the decay rounds toward zero (sign-magnitude shift)."""
    p = x * factor
    return torch.sign(p) * (p.abs() >> DECAY_SHIFT)


def shift_floor(x: torch.Tensor, exp) -> torch.Tensor:
    """``x << exp`` for exp > 0, else arithmetic ``x >> -exp`` (floor). Used for weight_exp on the sum
    and for bias_exp."""
    if isinstance(exp, torch.Tensor):
        return torch.where(exp > 0, x << exp.clamp(min=0), x >> (-exp).clamp(min=0))
    exp = int(exp)
    return x << exp if exp > 0 else x >> -exp


def effective_bias(bias_mant, bias_exp) -> torch.Tensor:
    """``bias_mant << bias_exp`` (floor shift for negative exponents), computed in int32 as Lava does."""
    m = torch.as_tensor(bias_mant, dtype=torch.int64)
    e = torch.as_tensor(bias_exp, dtype=torch.int64)
    return i32(shift_floor(m, e))


def effective_threshold(vth_mant):
    """``vth << 6``; a neuron spikes when ``v > effective_threshold`` (strict). An int for an int, an int64
    tensor for a tensor (e.g. one threshold per replica)."""
    if isinstance(vth_mant, torch.Tensor):
        return vth_mant.to(torch.int64) << VTH_SHIFT
    return int(vth_mant) << VTH_SHIFT


#: The threshold mantissa of a non-firing (voltage) readout population: the largest legal one. No
#: 17-bit mantissa lies above v's saturation bound: ``READOUT_VTH_MANT << 6 = 2**23 - 64`` is 63 state
#: units below :data:`V_LIMIT`, so such a population fires only where v comes within 63 units of
#: saturation (:func:`v_bound` says when its inputs cannot take it there).
READOUT_VTH_MANT = RANGES["vth_mant"][1]


def v_bound(a_max: float, bias_max: float, i_decay: int, v_decay: int) -> float:
    """An upper bound on |v| of a population whose every input satisfies ``|a| <= a_max`` (weight units)
    and whose ``|B| <= bias_max`` (state units), from rest: ``|u| <= (a_max << 6) * 4096 / i_decay`` and
    ``|v| <= (|u|max + bias_max) * 4096 / v_decay`` (the truncations toward zero only shrink magnitudes);
    ``inf`` where a decay is 0 or u could wrap (the bound would not hold)."""
    if i_decay <= 0 or v_decay <= 0:
        return float("inf")
    u_max = float(a_max) * (1 << ACT_SHIFT) * DECAY_UNITY / int(i_decay)
    if u_max > MAX_UV - 1:
        return float("inf")
    return (u_max + float(bias_max)) * DECAY_UNITY / int(v_decay)


def lif_integrate(a: torch.Tensor, u: torch.Tensor, v: torch.Tensor, i_factor: int, v_factor: int,
                  bias: torch.Tensor, bounded: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Sub-threshold update of Lava's fixed-point LIF (``subthr_dynamics``), int64 tensors.

    ``u = W24(int32(trunc0(u*i_factor/4096) + int32(a << 6)))``;
    ``v = clip(int32(trunc0(v*v_factor/4096) + u + bias), +-(2**23-1))``.
    Returns (u, v before the spike test).

    ``bounded=True`` is a fast path the caller may take when it has checked ``|a| < 2**18`` for every
    input of the run and ``|bias| < 2**29``: then, by induction from u = 0, ``|u| <= 2**23``,
    ``u' + (a << 6)`` lies in (-3*2**23, 3*2**23) so the one-shot wrap lands in range, and no int32
    cast can change a value — the casts are skipped, the result is identical.
    """
    if bounded:
        u = decay(u, i_factor) + (a << ACT_SHIFT)
        if int(u.abs().max()) > MAX_UV - 1:  # wrap only where something can wrap (same result)
            u = wrap24(u)
        v = saturate_v(decay(v, v_factor) + u + bias)
        return u, v
    u = wrap24(i32(decay(u, i_factor) + i32(a << ACT_SHIFT)))
    v = saturate_v(i32(decay(v, v_factor) + u + bias))
    return u, v


BOUNDED_INPUT = 1 << 18  # |a| below this (and |bias| < 2**29) allows lif_integrate(bounded=True)
BOUNDED_BIAS = 1 << 29


def lif_fire(v: torch.Tensor, vth: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Strict threshold ``v > vth`` (vth already ``<< 6``) and hard reset of v only. Returns (s, v).

    Branch-free: ``m = (vth - v) >> 63`` is -1 exactly where ``v > vth``; ``v & ~m`` zeroes those.
    """
    m = (vth - v) >> 63
    return m != 0, v & ~m


def sum_ports(*a: torch.Tensor) -> torch.Tensor:
    """Several ports into one InPort are summed in int32 (``PyInPortVectorDense.recv``)."""
    total = a[0]
    for x in a[1:]:
        total = total + x
    return i32(total)


# ------------------------------------------------------------------------------------------------
# Dense synapse (lava/proc/dense/models.py + lava/utils/weightutils.py)
# ------------------------------------------------------------------------------------------------
class SignMode(enum.IntEnum):
    """Lava's synapse sign modes (lava.utils.weightutils.SignMode values)."""

    NULL = 0
    MIXED = 1
    EXCITATORY = 2
    INHIBITORY = 3


def determine_sign_mode(w: np.ndarray) -> SignMode:
    """Lava's rule on the int weights: min >= 0 excitatory, else max <= 0 inhibitory, else mixed."""
    if np.min(w) >= 0:
        return SignMode.EXCITATORY
    if np.max(w) <= 0:
        return SignMode.INHIBITORY
    return SignMode.MIXED


def dense_effective_weights(weights, num_weight_bits: int = 8,
                            sign_mode: Optional[SignMode] = None) -> Tuple[np.ndarray, SignMode]:
    """The weights Lava's fixed-point Dense actually multiplies with.

    Float weights are truncated toward zero (the int32 Var), the sign mode is derived from the int
    weights unless given, the weights are clipped to the mode's 8-bit range (mixed [-256, 255],
    excitatory [0, 255], inhibitory [-255, 0]) and their ``8 - num_weight_bits + mixed`` low bits are
    cleared by flooring (inhibitory: on the magnitude). With the default 8 bits, a mixed matrix loses
    its LSB (3 -> 2, -3 -> -4).
    """
    w = np.trunc(np.asarray(weights, dtype=np.float64)).astype(np.int64)
    mode = SignMode(sign_mode) if sign_mode else determine_sign_mode(w)
    mixed = int(mode == SignMode.MIXED)
    if mode == SignMode.INHIBITORY:
        w = -w
    w = np.clip(w, -256 * mixed, 255)
    nt = 8 - int(num_weight_bits) + mixed
    if nt < 0:
        raise RangeError(f"num_weight_bits = {num_weight_bits} leaves a negative truncation ({nt} bits)")
    w = (w >> nt) << nt
    if mode == SignMode.INHIBITORY:
        w = -w
    return w, mode


def netx_optimize_weight_bits(weight: np.ndarray) -> Tuple[np.ndarray, int, int, SignMode]:
    """lava-dl 0.6.0's ``netx.utils.optimize_weight_bits``: the re-encoding netx applies to file weights.

    Returns (encoded weights, num_weight_bits, weight_exp, netx's sign mode). netx does not pass the
    sign mode on to Dense, which re-derives it. An all-zero matrix makes netx raise OverflowError; we
    raise a one-line :class:`RangeError` instead.
    """
    w = np.asarray(weight).astype(np.int64)
    wmax, wmin = int(np.max(w)), int(np.min(w))
    if wmax == 0 and wmin == 0:
        raise RangeError("all-zero weight matrix: lava-dl netx 0.6.0 cannot encode it (OverflowError)")
    if (wmax > 254 and wmin < 0) or (wmin < -256 and wmax > 0):
        w = np.clip(w, -256, 254)  # netx prints a warning and clips
        wmax, wmin = int(np.max(w)), int(np.min(w))
    if wmax < 0:
        mode, signed = SignMode.INHIBITORY, 0
        scale = -256 / wmin
    elif wmin >= 0:
        mode, signed = SignMode.EXCITATORY, 0
        scale = 255 / wmax
    else:
        mode, signed = SignMode.MIXED, 1
        pos = 127 / wmax if wmax != 0 else np.inf
        scale = min(pos, -128 / wmin)
    scale_bits = int(np.floor(np.log2(scale))) + signed
    n = 8
    while n > 0 and np.sum(np.abs(w / 2 ** n - np.round(w / 2 ** n))) != 0:
        n -= 1
    n -= signed
    if scale_bits < 0:
        raise RangeError(f"weights in [{wmin}, {wmax}] exceed the 8-bit range netx can encode")
    return w << scale_bits, int(8 - scale_bits - n), int(-scale_bits), mode


# ------------------------------------------------------------------------------------------------
# The weight grid: which mantissas are legal, and the one rounding rule onto them
# ------------------------------------------------------------------------------------------------
WEIGHT_MANT_MIN, WEIGHT_MANT_MAX = RANGES["weight"]  # -256, 255: what Lava's mixed Dense clips to
MIXED_STEP = 2  # at 8 bits a mixed-sign Dense clears the LSB: mixed mantissas are even
#: Largest |mantissa| of a symmetric, even (mixed-sign) weight grid. -256 is left out: an all-negative
#: matrix holding it is altered by Lava's inhibitory sign mode (clip to -255) and by netx's re-encoding
#: (which clips mixed matrices to [-256, 254]); +-254 survives both unchanged.
MIXED_MANT_MAX = WEIGHT_MANT_MAX - 1  # 254
ONE_SIGN_MANT_MAX = WEIGHT_MANT_MAX  # 255: one-signed matrices keep all 8 bits ([0, 255] / [-255, 0])


def weight_grid(weight_exp: int) -> Tuple[int, int]:
    """(step, limit) of the trainable mantissa grid for a layer with ``weight_exp`` (<= 0).

    Mantissas are multiples of ``step = max(2, 2**-weight_exp)`` in ``[-limit, limit]``: even (Lava's
    mixed-sign Dense clears the LSB) and, for a negative exponent, multiples of ``2**-weight_exp`` so
    that ``weight * 2**weight_exp`` is an integer — a netx file stores exactly these integers (it has
    no exponent), and ``floor(sum * 2**weight_exp)`` then loses nothing. ``limit`` is the largest such
    multiple <= :data:`MIXED_MANT_MAX`.
    """
    step = max(MIXED_STEP, 1 << max(0, -int(weight_exp)))
    return step, (MIXED_MANT_MAX // step) * step


def round_to_grid(w, mixed: bool = True) -> np.ndarray:
    """Round float mantissas to legal Lava Dense mantissas (int64): the nearest even integer in
    [-256, 254] for a mixed-sign input, the nearest integer in [0, 255] / [-255, 0] when every value
    shares a sign (or ``mixed=False``). The result passes :func:`dense_effective_weights` unchanged."""
    w = np.asarray(w, dtype=np.float64)
    if w.size == 0:
        return w.astype(np.int64)
    if mixed and (w.min() < 0 < w.max()):
        q = np.clip(MIXED_STEP * np.round(w / MIXED_STEP), WEIGHT_MANT_MIN, MIXED_MANT_MAX)
    elif w.min() >= 0:
        q = np.clip(np.round(w), 0, ONE_SIGN_MANT_MAX)
    else:
        q = np.clip(np.round(w), -ONE_SIGN_MANT_MAX, 0)
    q = q.astype(np.int64)
    # a matrix that rounds to mixed sign from a single-sign draw must still be even
    if q.min() < 0 < q.max() and np.any(q % MIXED_STEP):
        q = (q // MIXED_STEP) * MIXED_STEP
    eff, _ = dense_effective_weights(q)
    return eff.astype(np.int64)


#: A split weight's fine exponent is the coarse one minus this (but not below 0): the coarse rounding error
#: (at most half a mixed step, ``2**weight_exp``) then needs a fine mantissa of at most 128 <= MIXED_MANT_MAX.
SPLIT_SHIFT = 7


def split_weight(w, weight_exp: int) -> Tuple[np.ndarray, np.ndarray, int]:
    """Two Dense synapses for one weight matrix ``w`` (weight units, float): (coarse mantissas, fine
    mantissas, fine exponent). The coarse synapse is ``round_to_grid(w / 2**weight_exp)`` at
    ``weight_exp``; the fine one carries the rounding error at ``max(weight_exp - SPLIT_SHIFT, 0)``. Both
    feed the same LIF ``a_in`` (Lava sums them), so the effective weight has up to 15 bits instead of 8.
    The fine exponent is kept >= 0 because Lava floors a sum scaled by a negative exponent: that floor
    biases every step's input by up to -1 (mean about -1/2), a drift that adds up over many synapses
    and steps (measured: it undid the gain of the finer weights). ``weight_exp`` must be >= 0
    (:func:`split_wide`)."""
    if int(weight_exp) < 0:
        raise RangeError(f"a split weight needs weight_exp >= 0, got {weight_exp}")
    w = np.asarray(w, dtype=np.float64)
    hi = round_to_grid(w / 2.0 ** weight_exp)
    fine_exp = max(int(weight_exp) - SPLIT_SHIFT, 0)  # >= 0: no floor, so no bias, on the fine sum either
    lo = round_to_grid((w - hi * 2.0 ** weight_exp) / 2.0 ** fine_exp)
    return hi, lo, fine_exp


def split_wide(hi, weight_exp: int, lo, fine_exp: int) -> Tuple[np.ndarray, int]:
    """One integer matrix and exponent that give exactly what a coarse Dense ``(hi, weight_exp)`` and a
    fine Dense ``(lo, fine_exp)`` into the same ``a_in`` give together: with ``weight_exp >= 0`` the
    coarse sum ``hi @ s * 2**weight_exp`` is an integer, so ``floor(hi@s * 2**e) + floor(lo@s * 2**f)
    = floor((hi * 2**(e - f) + lo) @ s * 2**f)`` (an integer leaves a floor unchanged). Needs
    ``weight_exp >= 0`` and ``fine_exp <= weight_exp``."""
    e, f = int(weight_exp), int(fine_exp)
    if e < 0 or f > e:
        raise RangeError(f"split weights need weight_exp >= 0 and fine exponent <= weight_exp, got {e}, {f}")
    return np.asarray(hi, dtype=np.int64) * (1 << (e - f)) + np.asarray(lo, dtype=np.int64), f


def round_to_grid_torch_(w: torch.Tensor) -> torch.Tensor:
    """In-place torch twin of :func:`round_to_grid` for a zero-mean (mixed-sign) float draw: nearest
    even integer clipped to [-256, 254], returned as float holding exact integers."""
    return torch.round(w.div_(MIXED_STEP)).mul_(MIXED_STEP).clamp_(WEIGHT_MANT_MIN, MIXED_MANT_MAX)


# ------------------------------------------------------------------------------------------------
# Other storage rules: Lava's int16 bias Var, Lava's 24-bit Conv accumulator
# ------------------------------------------------------------------------------------------------
BIAS_INT16 = (-(1 << 15), (1 << 15) - 1)  # Lava's LIF stores bias_mant as int16
CONV_SUM_LIMIT = MAX_UV  # Lava's Conv wraps its sum at 24 bits: |sum| must stay below 2**23


def wrap_bias_int16(raw) -> np.ndarray:
    """int -> int32 (netx's ``astype(np.int32)``) -> int16 (Lava's ``bias_mant`` Var): C-casts that wrap.
    Returns int64."""
    return np.asarray(raw).astype(np.int64).astype(np.int32).astype(np.int16).astype(np.int64)


def conv_sum_bound(weight) -> int:
    """Largest |sum| a Conv with integer ``weight`` [out, in, kh, kw] can reach on 0/1 inputs (the sum
    of absolute weights of one output channel). Lava's Conv is exact only below :data:`CONV_SUM_LIMIT`."""
    w = np.abs(np.asarray(weight, dtype=np.int64))
    return int(w.reshape(w.shape[0], -1).sum(1).max()) if w.size else 0


def float_exact_bound_dtype(bound: float) -> Optional[torch.dtype]:
    """The float dtype whose matmul/conv is exact for integer results up to ``bound`` in magnitude:
    float32 below 2**24, float64 below 2**53, else None (use integers)."""
    if bound < FLOAT32_EXACT:
        return torch.float32
    if bound < FLOAT64_EXACT:
        return torch.float64
    return None


FLOAT32_EXACT = float(1 << 24)  # float32 holds every integer below this exactly
FLOAT64_EXACT = float(1 << 53)


def exact_matmul(s: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Integer ``s @ w.T`` (int64 result), through float BLAS where that is provably exact.

    The bound is ``max|s| * max|w| * N_in``; :func:`float_exact_bound_dtype` picks float32 or float64
    for it, and beyond both an int64 matmul is used.
    """
    if s.numel() == 0 or w.numel() == 0:
        return torch.zeros(*s.shape[:-1], w.shape[0], dtype=torch.int64, device=s.device)
    dtype = float_exact_bound_dtype(float(s.abs().max()) * float(w.abs().max()) * s.shape[-1])
    if dtype is None:
        return torch.matmul(s.to(torch.int64), w.t().to(torch.int64))
    return torch.matmul(s.to(dtype), w.t().to(dtype)).round().to(torch.int64)


def scale_sum(acc: torch.Tensor, weight_exp, graded: bool = False) -> torch.Tensor:
    """``int32(floor(acc * 2**weight_exp))``: the exponent acts on the accumulated integer sum ``acc``
    (int64) with floor rounding, and the result is C-cast to int32 as Lava's channel does when a synapse
    sends it. ``graded=True``: the sum itself wraps to int32 first (Lava's graded Dense sums on int32
    arrays, dense/models.py l.99)."""
    if graded:
        acc = i32(acc)
    return i32(shift_floor(acc, weight_exp))


def dense_accumulate(s: torch.Tensor, w_eff: torch.Tensor, weight_exp: int,
                     graded: bool = False) -> torch.Tensor:
    """``int32(floor((s @ W_eff.T) * 2**weight_exp))`` for every time step at once.

    ``s``: [..., T, N_in] (0/1 spikes or graded integer payloads); ``w_eff``: [N_out, N_in] effective
    integer weights. The exponent acts on the sum, with floor rounding; the result is C-cast to int32
    as Lava's channel does when Dense sends it. Returns int64.

    ``graded=True`` (Dense ``num_message_bits > 0``): Lava computes ``weights.dot(s_in)`` on int32
    arrays, so the sum itself wraps to int32 **before** the exponent is applied (dense/models.py l.99;
    the binary path sums in int64). This only matters for a negative ``weight_exp`` and |sum| >= 2**31.
    """
    return scale_sum(exact_matmul(s, w_eff), weight_exp, graded)


def delay_one_step(a: torch.Tensor, dim: int = -2) -> torch.Tensor:
    """Lava's Dense sends the previous step's accumulation: a[t] <- a[t-1], a[0] = 0 (along ``dim``)."""
    out = torch.zeros_like(a)
    n = a.shape[dim]
    if n > 1:
        out.narrow(dim, 1, n - 1).copy_(a.narrow(dim, 0, n - 1))
    return out
