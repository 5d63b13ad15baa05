"""Spec-level init: fill a :class:`~snnhw.spec.NetworkSpec`'s weights (and, for the hardware-aware
methods, its exponents and thresholds), and report what it did.

Units. A spec holds *weight units*: a neuron's threshold is ``vth_mant`` and a weight is
``mantissa * 2**weight_exp`` (the chip's v / 64). The float formulas of :mod:`snnhw.init.formulas`
are stated in *float units*; they are mapped with lava-dl's convention ``w_scale = 64``:
``theta = vth_mant / 64`` and ``weight = 64 * w_float`` (so ``vth_mant = 64`` is theta = 1).

* Float methods (pytorch ... fdi) on a quantized spec keep the layer's ``vth_mant`` and use
  ``weight_exp = 0``; the float draw ``64 * w`` is rounded to the nearest legal mantissa
  (:func:`snnhw.loihi.round_to_grid`: even, [-256, 254] for a mixed-sign draw). Nothing rescues them:
  what rounding does to them is what the report shows.
* ``hardware``: per layer, the float design of :func:`snnhw.init.tensor.hardware_float` (CUBA kernel
  sums from the layer's decays, quenched + temporal drive of a population with fixed weights, the hard
  reset's effect through a seeded neuron ensemble, target rate) gives ``rho = sigma_w / theta``; then
  ``weight_exp`` and ``vth_mant`` are co-chosen so that the mantissa std is ``SIGMA_MANT`` = 32 (16 grid
  steps) and ``vth_mant = 32 * 2**e / rho`` (:func:`snnhw.init.quant.choose_exp_and_threshold`); the
  pre-rounding std is solved so that the variance of the *rounded* weights equals the design
  (:func:`quant.sigma_for_quantized_variance`).
* ``hardware-calibrated``: the same, then a calibration pass through the exact fixed-point forward
  (:mod:`snnhw.init.calibrate`: :func:`snnhw.core.network.synapse` + :func:`snnhw.core.neuron.cuba_lif`):
  layer by layer, in order, the threshold mantissa is bisected (integers) so the layer's measured rate
  on the calibration batch is closest to ``target_rate`` — equivalent to rescaling the layer's weights.
* ``identity`` option (hardware methods; ``lam`` in [0, 1), default 0): each square feed-forward Dense
  layer after the first draws its random weights with variance ``(1 - lam) sigma^2`` and gets a
  one-to-one weight ``sigma * sqrt(lam * n)`` on the diagonal (neuron i listens strongly to neuron i
  of the layer before), so the input-current variance is unchanged. Why: random thresholded layers
  keep *activity* but scramble *information* — on digits_deep_mlp (10 x 600, T = 3) a linear probe on
  spike counts falls from 94 % at fc1 to 20 % at fc10 with ``lam = 0`` and stays at 87 % with
  ``lam = 0.8``. The diagonal must fit the 8-bit mantissa (:data:`snnhw.loihi.MIXED_MANT_MAX` = 254),
  so the layer's mantissa std becomes ``min(sigma_mant, 254 / sqrt(lam n))`` (11.6 for n = 600, lam = 0.8).
* Recurrent Dense (``weight_rec``): the variance budget is split, ``alpha`` (default 0.9) to the
  feed-forward and ``1 - alpha`` to the recurrent afferents (stork's split) for micheli, fdi and
  hardware; baselines apply their own formula with fan-in ``n_out`` (bellec: autapses zeroed).
  The recurrent exponent ``rec_exp`` is chosen so the recurrent mantissa std is near 32.
* SumPool: every method sets the single pool mantissa so one input spike crosses the threshold
  (``weight * 2**e = ceil(1.25 * vth_mant)``, lava-dl's pooling convention); the layer then acts as a
  spike OR, predicted rate ``1 - (1 - p)**(kH kW)``.

Measurement and calibration factor out Lava's one-step Dense delay: each layer is run on the T steps
in which its input arrives (exact, since a layer that has received nothing stays at zero state), so a
10-layer net with T = 3 is calibrated on real activity rather than on the silent pipeline fill.
Trailing steps of ``calib_input`` in which no sample has any input (a recipe's ``pad_steps``) are
dropped before anything is measured: ``target_rate`` is the rate on the steps that carry input.

The law of each matrix is :mod:`snnhw.init.plan`; the report's dataclasses are :mod:`snnhw.init.report`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
import torch

from snnhw import loihi
from snnhw.errors import InputError
from snnhw.init import kernels, quant
from snnhw.init.calibrate import calibrate_threshold, layer_input, run_layer
from snnhw.init.plan import W_SCALE, draw, fan_in, fan_out, plan_weights, rec_exp_for, stats, write
from snnhw.init.report import InitReport, LayerReport
from snnhw.init.tensor import DEFAULT_TARGET_RATE, HARDWARE_METHODS, check_method, moments
from snnhw.spec import Conv, Dense, NetworkSpec, SumPool

__all__ = ["CALIB_BATCH", "CALIB_STEPS", "InitReport", "LayerReport", "W_SCALE", "init_spec", "plan_weights"]

CALIB_BATCH = 16  # samples of the default (Bernoulli) calibration batch
CALIB_STEPS = 32  # steps of the default calibration batch
CALIB_SEED_OFFSET = 7919  # the default calibration batch's torch seed is seed + this
POOL_MARGIN = 1.25  # a pool's one-spike input is ceil(1.25 vth_mant) (lava-dl's pooling convention)
KNOWN_OPTIONS = frozenset({"input_rate", "alpha", "sigma_u", "variant", "kernel", "dt", "nu", "mu_u", "xi",
                           "sigma_mant", "measure", "calib_batch", "calib_steps", "sg", "steps", "identity"})


@dataclass
class _Setup:
    """The checked settings of one init_spec call."""

    method: str
    target: float  # design rate, spikes/neuron/step
    split: float  # feed-forward share of the input variance with recurrence (alpha)
    sigma_mant: float  # hardware: mantissa std aimed at
    identity: float  # hardware: one-to-one share of a square hidden layer's input variance
    dt: float  # seconds per step (fdi analytic)
    exact: bool  # quantized spec: integer weights and the exact forward
    options: Dict

    @property
    def hw(self) -> bool:
        return self.method in HARDWARE_METHODS


@dataclass
class _Chain:
    """What flows from layer to layer: the predicted presynaptic rate and its second moment."""

    p: float
    m2: float
    first: bool = True
    prev_pool: bool = False


def _setup(spec: NetworkSpec, method: str, target_rate, options: Dict) -> _Setup:
    """Check method, spec type and options; one-line InputError naming the option otherwise."""
    method = check_method(method)
    if not isinstance(spec, NetworkSpec):
        raise InputError(f"init_spec needs a NetworkSpec, got {type(spec).__name__}")
    unknown = set(options) - KNOWN_OPTIONS
    if unknown:
        raise InputError(f"unknown init option(s): {', '.join(sorted(unknown))}")
    target = DEFAULT_TARGET_RATE if target_rate is None else float(target_rate)
    if not 0.0 < target < 1.0:
        raise InputError(f"target_rate must lie in (0, 1) spikes per step, got {target_rate}")
    split = float(options.get("alpha", 0.9))
    if not 0.0 < split < 1.0:
        raise InputError(f"alpha (feed-forward variance share) must lie in (0, 1), got {split}")
    sigma_mant = float(options.get("sigma_mant", quant.SIGMA_MANT))
    if not 2.0 <= sigma_mant <= 64.0:
        raise InputError(f"sigma_mant must lie in [2, 64] mantissa units, got {sigma_mant}")
    identity = float(options.get("identity", 0.0))
    if not 0.0 <= identity < 1.0:
        raise InputError(f"identity (one-to-one share of the input variance) must lie in [0, 1), got {identity}")
    if identity > 0 and method not in HARDWARE_METHODS:
        raise InputError(f"the identity option belongs to the hardware methods, not to '{method}'")
    dt = float(options.get("dt", spec.metadata.get("dt", 1e-3) if isinstance(spec.metadata, dict) else 1e-3))
    return _Setup(method, target, split, sigma_mant, identity, dt, bool(spec.quantized), options)


def _check_neurons(spec: NetworkSpec) -> None:
    for layer in spec.neuron_layers():
        n = layer.neuron
        kernels.check_decay(f"layer {layer.name}: i_decay", n.i_decay)
        kernels.check_decay(f"layer {layer.name}: v_decay", n.v_decay)
        if float(n.vth_mant) < 0:
            raise InputError(f"layer {layer.name}: threshold vth_mant must be >= 0, got {n.vth_mant}")


def _calib_steps_with_input(spec: NetworkSpec, calib_input) -> Optional[torch.Tensor]:
    """``calib_input`` as float32 [B, T, n_in] without its trailing all-silent steps (a recipe's
    ``pad_steps``: rates are measured on the steps that carry input, not averaged over the silence)."""
    if calib_input is None:
        return None
    x = torch.as_tensor(np.asarray(calib_input) if not isinstance(calib_input, torch.Tensor) else calib_input)
    if x.ndim != 3 or x.shape[2] != spec.n_in:
        raise InputError(f"calib_input must be shaped [batch, steps, {spec.n_in}], got {tuple(x.shape)}")
    x = x.to(torch.float32)
    carries = (x != 0).flatten(2).any(dim=2).any(dim=0).nonzero()
    if len(carries):
        x = x[:, : int(carries[-1]) + 1]
    return x


def _input_rate(options: Dict, x: Optional[torch.Tensor], target: float) -> float:
    """Network input spikes/step: the option, else the calibration batch's mean, else the target."""
    input_rate = options.get("input_rate")
    if input_rate is None:
        input_rate = float((x != 0).float().mean()) if x is not None else target
        input_rate = input_rate if input_rate > 0 else target
    input_rate = float(input_rate)
    if not 0.0 < input_rate <= 1.0:
        raise InputError(f"input_rate must lie in (0, 1] spikes per step, got {input_rate}")
    return input_rate


def _default_calib(n_in: int, seed: int, input_rate: float, options: Dict) -> torch.Tensor:
    """Bernoulli(``input_rate``) spikes [calib_batch, calib_steps, n_in], float32, seeded."""
    g = torch.Generator().manual_seed(int(seed) + CALIB_SEED_OFFSET)
    B = int(options.get("calib_batch", CALIB_BATCH))
    T = int(options.get("calib_steps", CALIB_STEPS))
    return (torch.rand(B, T, n_in, generator=g) < input_rate).to(torch.float32)


def _design_steps(options: Dict, calib_given: bool, x: Optional[torch.Tensor]):
    """T the rates are designed for: the option, else the given calibration input's T, else None
    (stationary)."""
    design_steps = options.get("steps")
    if design_steps is None and calib_given:
        design_steps = int(x.shape[1])
    if design_steps is not None and (int(design_steps) != design_steps or int(design_steps) < 1):
        raise InputError(f"steps must be a positive integer, got {design_steps}")
    return design_steps


def _first_spikes(first_layer, x: Optional[torch.Tensor], exact: bool) -> Optional[torch.Tensor]:
    """What the first layer receives: the calibration input as is (graded Dense input), else its spikes
    (int64 on a quantized spec, float32 otherwise)."""
    if x is None:
        return None
    if isinstance(first_layer, Dense) and first_layer.graded_input:
        return x
    return (x != 0).to(torch.int64 if exact else torch.float32)


def _init_pool(layer: SumPool, st: _Setup, chain: _Chain, rate_design: float):
    """Pool mantissa/exponent so one spike fires; returns (report, predicted m2 of the output rates)."""
    vth = float(layer.neuron.vth_mant)
    need = math.ceil(POOL_MARGIN * max(vth, 1.0))
    e = 0
    while st.exact and need / 2 ** e > loihi.ONE_SIGN_MANT_MAX and e < loihi.RANGES["weight_exp"][1]:
        e += 1
    layer.weight_exp = e
    layer.weight = int(math.ceil(need / 2 ** e)) if st.exact else float(need)
    k = fan_in(layer)
    pred = 1.0 - (1.0 - min(chain.p, 1.0)) ** k
    wq = float(layer.weight) * 2.0 ** e
    rep = LayerReport(layer.name, "pool", k, e, layer.neuron.vth_mant, wq, wq, 0.0, 0.0, math.inf,
                      rate_design, pred)
    return rep, pred ** 2


def _takes_identity(layer, is_first: bool) -> bool:
    """The ``identity`` option applies to square feed-forward Dense layers after the first."""
    return (isinstance(layer, Dense) and not is_first and layer.weight_rec is None
            and layer.n_in == layer.n_out)


def _neuron_factors(layer):
    n = layer.neuron
    return kernels.decay_to_factor(n.i_decay), kernels.decay_to_factor(n.v_decay)


def _init_weighted(layer, st: _Setup, chain: _Chain, rng, rate_design: float, is_first: bool, design_steps):
    """Draw a Dense/Conv layer's weights (and recurrent weights), set weight_exp and vth_mant; returns
    (report, predicted m2 of the output rates)."""
    alpha_f, beta_f = _neuron_factors(layer)
    reset = layer.neuron.reset
    n_in = fan_in(layer)
    hw, exact = st.hw, st.exact
    wshape = np.asarray(layer.weight).shape
    has_rec = isinstance(layer, Dense) and layer.weight_rec is not None
    lam = st.identity if _takes_identity(layer, is_first) else 0.0
    opts_l = dict(st.options, steps=design_steps)
    if lam > 0 and exact:  # the one-to-one weight sigma*sqrt(lam*n) must fit the 8-bit mantissa
        opts_l["sigma_mant"] = min(st.sigma_mant, loihi.MIXED_MANT_MAX / math.sqrt(lam * n_in))
    after_pool = hw and chain.prev_pool
    plan = plan_weights(st.method, n_in, fan_out(layer), alpha_f, beta_f, reset, layer.neuron.vth_mant, exact,
                        target=st.target, rate_in=(min(max(chain.p, 1e-3), 1.0) if after_pool else rate_design),
                        m2_in=(chain.m2 if after_pool else None), deep=not is_first,
                        share=st.split if has_rec else 1.0, rng=rng, dt=st.dt, **opts_l)
    e, vth, sigma_units = plan.exp, plan.vth, plan.sigma_units
    layer.weight_exp, layer.neuron.vth_mant = e, vth
    pre = plan.pre_sigma_units
    if lam > 0:
        pre = (quant.sigma_for_quantized_variance((sigma_units / 2 ** e) ** 2 * (1 - lam)) * 2 ** e
               if exact else sigma_units * math.sqrt(1 - lam))
    w_units = draw(rng, wshape, plan.mu_units, pre, plan.dist)
    if lam > 0:
        idx = np.arange(wshape[0])
        w_units[idx, idx] = sigma_units * math.sqrt(lam * n_in)
    layer.weight = write(w_units, exact, e)
    sq, zf, mq = stats(layer.weight, e)
    step = loihi.MIXED_STEP * 2.0 ** e if exact else 0.0
    zpred = quant.zero_fraction(sigma_units, step) if exact else 0.0
    var_rec_units, lr_kw = _init_recurrent(layer, st, chain, plan.kw, vth, rng, design_steps) if has_rec else (0.0, {})
    pred, m2_out = kernels.predict_population(n_in, mq, sq, chain.p, chain.m2, float(vth), alpha_f, beta_f, reset,
                                              extra_var=var_rec_units, steps=design_steps)
    rep = LayerReport(layer.name, layer.kind, n_in, int(layer.weight_exp), layer.neuron.vth_mant,
                      float(sigma_units), sq, zf, zpred,
                      (sigma_units / step) if step > 0 else math.inf, rate_design, pred, **lr_kw)
    return rep, m2_out


def _init_recurrent(layer: Dense, st: _Setup, chain: _Chain, kw: Dict, vth: float, rng, design_steps):
    """Draw ``weight_rec`` and set ``rec_exp``; returns (variance the recurrent input adds to a neuron's
    per-step input, in weight units squared; the report's recurrent fields)."""
    alpha_f, beta_f = _neuron_factors(layer)
    reset = layer.neuron.reset
    hw, exact, split, target = st.hw, st.exact, st.split, st.target
    n_rec = layer.n_out
    if hw:
        _, ratio_r, _ = moments("hardware", n_rec, threshold=1.0, beta=beta_f, alpha=alpha_f,
                                rate=target, target_rate=target, reset=reset, share=1.0 - split,
                                deep=True, steps=design_steps)
        sig_r = ratio_r * vth
        mu_r, dist_r = 0.0, "normal"
    else:
        kwr = dict(kw)
        if st.method in ("micheli", "fdi"):
            kwr["share"] = 1.0 - split
        mu_rf, sig_rf, dist_r = moments(st.method, n_rec, n_rec, **kwr)
        sig_r, mu_r = sig_rf * W_SCALE, mu_rf * W_SCALE
    re = rec_exp_for(sig_r) if (exact and hw) else 0
    pre_r = sig_r
    if exact and hw:
        pre_r = quant.sigma_for_quantized_variance((sig_r / 2 ** re) ** 2) * 2 ** re
    wr = draw(rng, (n_rec, n_rec), mu_r, pre_r, dist_r)
    if st.method == "bellec":
        np.fill_diagonal(wr, 0.0)
    layer.rec_exp = re
    layer.weight_rec = write(wr, exact, re)
    sqr, zfr, mqr = stats(layer.weight_rec, re)
    r_rec = target if hw else chain.p
    var_rec_units = n_rec * r_rec * (sqr ** 2 + mqr ** 2)
    return var_rec_units, dict(rec_exp=re, sigma_rec_float=sig_r, sigma_rec_quant=sqr, rec_zero_fraction=zfr)


def _measure(layer, s: torch.Tensor, st: _Setup, rep: LayerReport) -> torch.Tensor:
    """Run the layer on its input spikes ``s`` (calibrating its threshold for hardware-calibrated), record
    the measured rate in ``rep``; return the layer's spikes (int64 on a quantized spec)."""
    exact = st.exact
    a = layer_input(layer, s, exact)
    if st.method == "hardware-calibrated" and not isinstance(layer, SumPool):
        vth_c, out_s = calibrate_threshold(layer, a, exact, st.target)
        layer.neuron.vth_mant = int(vth_c) if exact else float(vth_c)
        rep.vth_mant = layer.neuron.vth_mant
    else:
        out_s = run_layer(layer, a, exact)
    rep.measured_rate = float(out_s.mean())
    return out_s.to(torch.int64) if exact else out_s


def init_spec(spec: NetworkSpec, method: str, *, seed: int = 0, calib_input=None,
              target_rate: Optional[float] = None, **options):
    """Initialize ``spec`` (a copy) with ``method``; return ``(new_spec, InitReport)``.

    ``spec``: layers with shapes and neuron parameters (weights may be zeros). ``seed``: numpy seed of
    all draws. ``calib_input``: [B, T, n_in] spikes for the measurement/calibration pass (default:
    Bernoulli(``input_rate``) spikes, ``CALIB_BATCH`` x ``CALIB_STEPS``, seeded). ``target_rate``:
    design rate in spikes per neuron per step (default 0.15; hardware methods, and fdi's global rate
    ``nu * dt``). Options: ``input_rate`` (network input spikes/step; default: mean of calib_input, else
    target_rate), ``alpha`` (ff variance share with recurrence, 0.9), ``sigma_u`` (micheli/fdi, float
    units, 1.0), ``variant`` (micheli: paper | finite-size | soft-reset), ``kernel`` (fdi: numerical |
    analytic), ``dt`` (s, for fdi analytic; default spec.metadata['dt'] or 1e-3), ``nu`` (Hz, fdi),
    ``mu_u``/``xi`` (fdi), ``sigma_mant`` (hardware, 32), ``steps`` (hardware design and predicted
    rates for the mean over the first T steps from rest; default: calib_input's T, else stationary),
    ``measure`` (run the forward to report measured rates, default True), ``calib_batch``/``calib_steps``
    (size of the default calibration batch), ``sg`` (ikun's surrogate), ``identity`` (hardware
    methods: share of a square hidden Dense layer's input variance on one-to-one weights, 0).
    Bad values raise :class:`~snnhw.errors.InputError` (one line).
    """
    st = _setup(spec, method, target_rate, options)
    rng = np.random.default_rng(int(seed))
    out = spec.copy()
    _check_neurons(out)
    x = _calib_steps_with_input(spec, calib_input)
    input_rate = _input_rate(options, x, st.target)
    if (bool(options.get("measure", True)) or st.method == "hardware-calibrated") and x is None:
        x = _default_calib(spec.n_in, seed, input_rate, options)
    design_steps = _design_steps(options, calib_input is not None, x)
    report = InitReport(method=st.method, seed=int(seed), quantized=st.exact, target_rate=st.target,
                        input_rate=input_rate, calibrated=st.method == "hardware-calibrated",
                        calib_shape=list(x.shape) if x is not None else None,
                        options={k: v for k, v in options.items() if k != "sg"})
    chain = _Chain(input_rate, input_rate ** 2)  # predicted presynaptic rate and its 2nd moment
    s = _first_spikes(out.layers[0], x, st.exact)
    for layer in out.layers:
        if not isinstance(layer, (Dense, Conv, SumPool)):
            continue
        rate_design = input_rate if chain.first else (st.target if st.hw else chain.p)
        is_first, chain.first = chain.first, False
        if isinstance(layer, SumPool):
            rep, m2_out = _init_pool(layer, st, chain, rate_design)
        else:
            rep, m2_out = _init_weighted(layer, st, chain, rng, rate_design, is_first, design_steps)
        if s is not None:
            s = _measure(layer, s, st, rep)
        report.layers.append(rep)
        chain.prev_pool = isinstance(layer, SumPool)
        chain.p, chain.m2 = rep.predicted_rate, m2_out
    out.validate()
    return out, report
