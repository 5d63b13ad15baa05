"""Spec-level init: fill a :class:`~snnhw.spec.NetworkSpec`'s weights (and, for the hardware-aware
methods, its exponents and thresholds), and report what it did.

Units. A spec holds *weight units*: a neuron's threshold is ``vth_mant`` and a weight is
``mantissa * 2**weight_exp`` (the chip's v / 64). The float formulas of :mod:`snnhw.init.formulas`
are stated in *float units*; they are mapped with lava-dl's convention ``w_scale = 64``:
``theta = vth_mant / 64`` and ``weight = 64 * w_float`` (so ``vth_mant = 64`` is theta = 1).

* Float methods (pytorch ... fdi) on a quantized spec keep the layer's ``vth_mant`` and use
  ``weight_exp = 0``; the float draw ``64 * w`` is rounded to the nearest legal mantissa (even,
  [-256, 254]). Nothing rescues them: what rounding does to them is what the report shows.
* ``hardware``: per layer, the float design of :func:`snnhw.init.tensor.hardware_float` (CUBA kernel
  sums from the layer's decays, quenched + temporal drive of a population with fixed weights, the hard
  reset's effect through a seeded neuron ensemble, target rate) gives ``rho = sigma_w / theta``; then ``weight_exp`` and ``vth_mant`` are co-chosen so that the mantissa
  std is ``SIGMA_MANT`` = 32 (16 grid steps) and ``vth_mant = 32 * 2**e / rho``
  (:func:`snnhw.init.quant.choose_exp_and_threshold`); the pre-rounding std is solved so that the
  variance of the *rounded* weights equals the design (:func:`quant.sigma_for_quantized_variance`).
* ``hardware-calibrated``: the same, then a calibration pass through the exact fixed-point forward
  (:func:`snnhw.core.network.synapse` + :func:`snnhw.core.neuron.cuba_lif`): layer by layer, in order,
  the threshold mantissa is bisected (integers) so the layer's measured rate on the calibration batch
  is closest to ``target_rate`` — equivalent to rescaling the layer's weights.
* ``identity`` option (hardware methods; ``lam`` in [0, 1), default 0): each square feed-forward Dense
  layer after the first draws its random weights with variance ``(1 - lam) sigma^2`` and gets a
  one-to-one weight ``sigma * sqrt(lam * n)`` on the diagonal (neuron i listens strongly to neuron i
  of the layer before), so the input-current variance is unchanged. Why: random thresholded layers
  keep *activity* but scramble *information* — on digits_deep_mlp (10 x 600, T = 3) a linear probe on
  spike counts falls from 94 % at fc1 to 20 % at fc10 with ``lam = 0`` and stays at 87 % with
  ``lam = 0.8``. The diagonal must fit the 8-bit mantissa (254), so the layer's mantissa std becomes
  ``min(sigma_mant, 254 / sqrt(lam n))`` (11.6 for n = 600, lam = 0.8).
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
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch

from snnhw import loihi
from snnhw.core.network import layer_bias, synapse
from snnhw.core.neuron import CubaParams, cuba_lif
from snnhw.init import kernels, quant
from snnhw.init.tensor import DEFAULT_TARGET_RATE, HARDWARE_METHODS, check_method, moments
from snnhw.spec import Conv, Dense, NetworkSpec, SumPool

W_SCALE = 64.0  # lava-dl's w_scale: float units * 64 = weight units
CALIB_BATCH = 16
CALIB_STEPS = 32


@dataclass
class LayerReport:
    """What the init did to one layer. sigma_* in weight units (v/64; threshold = vth_mant)."""

    name: str
    kind: str
    fan_in: int
    weight_exp: int
    vth_mant: float
    sigma_w_float: float  # std the formula asked for
    sigma_w_quant: float  # std of the weights actually written (mantissa * 2**e)
    zero_fraction: float  # fraction of written weights equal to 0
    zero_fraction_predicted: float  # erf(D / (2 sqrt 2 sigma)) for the grid step D (0 on a float spec)
    sigma_over_step: float  # sigma_w_float / grid step (inf on a float spec)
    rate_in: float  # presynaptic rate the design assumed (spikes/step)
    predicted_rate: float  # Gaussian+reset prediction from the written weights (spikes/step)
    measured_rate: Optional[float] = None  # exact fixed-point forward on the calibration batch
    rec_exp: Optional[int] = None
    sigma_rec_float: Optional[float] = None
    sigma_rec_quant: Optional[float] = None
    rec_zero_fraction: Optional[float] = None


@dataclass
class InitReport:
    method: str
    seed: int
    quantized: bool
    target_rate: float
    input_rate: float
    calibrated: bool
    calib_shape: Optional[List[int]]
    options: Dict = field(default_factory=dict)
    layers: List[LayerReport] = field(default_factory=list)

    def to_dict(self) -> Dict:
        def clean(v):
            if isinstance(v, float) and not math.isfinite(v):
                return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
            if isinstance(v, (np.floating, np.integer)):
                return clean(v.item())
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            return v
        return clean(asdict(self))

    def table(self) -> str:
        """A plain-text table of the per-layer report."""
        head = f"{'layer':<12}{'exp':>4}{'vth':>8}{'sigma_f':>10}{'sigma_q':>10}{'zero%':>7}{'pred':>8}{'meas':>8}"
        rows = [head]
        for l in self.layers:
            meas = "-" if l.measured_rate is None else f"{l.measured_rate:.3f}"
            rows.append(f"{l.name:<12}{l.weight_exp:>4}{l.vth_mant:>8.4g}{l.sigma_w_float:>10.4g}"
                        f"{l.sigma_w_quant:>10.4g}{100 * l.zero_fraction:>7.1f}{l.predicted_rate:>8.3f}{meas:>8}")
        return "\n".join(rows)


def _fan_in(layer) -> int:
    if isinstance(layer, Dense):
        return layer.n_in
    if isinstance(layer, Conv):
        w = np.asarray(layer.weight)
        return int(w.shape[1] * w.shape[2] * w.shape[3])
    return int(layer.kernel[0] * layer.kernel[1])


def _fan_out(layer) -> int:
    if isinstance(layer, Conv):
        w = np.asarray(layer.weight)
        return int(w.shape[0] * w.shape[2] * w.shape[3])
    return layer.n_out


def _draw(rng: np.random.Generator, shape, mu: float, sigma: float, dist: str) -> np.ndarray:
    if dist == "uniform":
        b = math.sqrt(3.0) * sigma
        return rng.uniform(mu - b, mu + b, size=shape)
    return rng.normal(mu, sigma, size=shape)


def _write(w_units: np.ndarray, quantized: bool, exp: int) -> np.ndarray:
    """Weight-unit floats -> what the spec stores (legal mantissas at ``exp`` or floats)."""
    if not quantized:
        return w_units.astype(np.float32)
    return quant.round_to_grid(w_units / 2.0 ** exp)


def _stats(stored: np.ndarray, exp: int) -> tuple:
    w = np.asarray(stored, dtype=np.float64) * 2.0 ** exp
    return float(w.std()), float(np.mean(w == 0)), float(w.mean())


def _rec_exp_for(sigma_units: float) -> int:
    if sigma_units <= 0:
        return 0
    e = int(round(math.log2(sigma_units / quant.SIGMA_MANT)))
    lo, hi = loihi.RANGES["weight_exp"]
    return max(lo, min(hi, e))


def layer_input(layer, s: torch.Tensor, exact: bool) -> torch.Tensor:
    """Synaptic input [B, T, n_out] of ``layer`` for presynaptic spikes ``s`` [B, T, n_in], with the
    one-step Dense delay factored out (step t sees s[t]); exact integer arithmetic via the core."""
    pad = torch.zeros_like(s[:, :1])
    return synapse(layer, torch.cat([s, pad], dim=1), exact)[:, 1:]


def run_layer(layer, a: torch.Tensor, exact: bool, vth=None) -> torch.Tensor:
    """Spikes [B, T, n_out] of ``layer``'s neurons for input ``a`` (optionally another threshold)."""
    n = layer.neuron
    p = CubaParams(n.i_decay, n.v_decay, n.vth_mant if vth is None else vth, n.reset)
    w_rec, rec_exp = None, 0
    if isinstance(layer, Dense) and layer.weight_rec is not None:
        w_rec = torch.as_tensor(np.asarray(layer.weight_rec), dtype=torch.int64 if exact else torch.float32)
        rec_exp = layer.rec_exp
    with torch.no_grad():
        return cuba_lif(a, p, layer_bias(layer, exact), w_rec=w_rec, rec_exp=rec_exp, exact=exact)


def _calibrate_threshold(layer, a: torch.Tensor, exact: bool, target: float):
    """Bisect the threshold so the layer's measured rate is closest to ``target``. Integer mantissas on
    a quantized spec (1 .. 2**17-1), floats otherwise. Returns (vth, spikes)."""
    vmax = loihi.RANGES["vth_mant"][1]
    v0 = max(float(layer.neuron.vth_mant), 1.0)
    rate = lambda vth: float(run_layer(layer, a, exact, vth).mean())  # noqa: E731
    # bracket [v0/2, 2 v0] around the analytic threshold, widened to the full range when it misses
    lo, hi = (max(1, int(v0) // 2), min(vmax, 2 * int(v0) + 1)) if exact else (v0 / 2, v0 * 2)
    if rate(lo) <= target:
        lo = 1 if exact else v0 * 1e-4
    if rate(hi) > target:
        hi = vmax if exact else v0 * 1e4
    for _ in range(40):
        if exact and hi - lo <= 1:
            break
        mid = (lo + hi) // 2 if exact else math.sqrt(lo * hi)
        if rate(mid) > target:
            lo = mid
        else:
            hi = mid
    best = min((lo, hi), key=lambda v: abs(rate(v) - target))
    return best, run_layer(layer, a, exact, best)


def _takes_identity(layer, is_first: bool) -> bool:
    """The ``identity`` option applies to square feed-forward Dense layers after the first."""
    return (isinstance(layer, Dense) and not is_first and layer.weight_rec is None
            and layer.n_in == layer.n_out)


def _neuron_factors(layer):
    n = layer.neuron
    return kernels.decay_to_factor(n.i_decay), kernels.decay_to_factor(n.v_decay)


@dataclass
class WeightPlan:
    """How one afferent matrix is drawn: law in weight units and the layer's exponent/threshold."""

    mu_units: float
    pre_sigma_units: float  # std of the float draw (before rounding)
    sigma_units: float  # std the formula asks for (of the rounded weights, for hardware)
    dist: str
    exp: int
    vth: float
    kw: Dict


def plan_weights(method: str, fan_in: int, fan_out: int, alpha_f: float, beta_f: float, reset: str,
                 vth_mant: float, quantized: bool, *, target: float, rate_in: float, m2_in: Optional[float] = None,
                 deep: bool = False, share: float = 1.0, rng=None, dt: float = 1e-3, **options) -> WeightPlan:
    """The law of one feed-forward matrix under ``method`` (see the module docstring for the rules).

    Float methods: formula in float units at ``theta = vth_mant / 64``, ``weight_exp = 0``, threshold kept.
    Hardware: design ratio sigma_w/theta from the population model (Bernoulli(``rate_in``) afferents,
    or a target-rate layer when ``deep``; ``m2_in`` overrides the afferent rates' second moment), then on
    a quantized target the exponent/threshold co-choice and the pre-rounding std for the grid."""
    hw = method in HARDWARE_METHODS
    sigma_mant = float(options.get("sigma_mant", quant.SIGMA_MANT))
    steps = options.get("steps")
    if hw:
        if m2_in is not None:
            ratio = kernels.design_ratio(fan_in, target, rate_in, min(max(m2_in, rate_in ** 2), rate_in),
                                         alpha_f, beta_f, reset, share, steps)
        else:
            _, ratio, _ = moments("hardware", fan_in, threshold=1.0, beta=beta_f, alpha=alpha_f, rate=rate_in,
                                  target_rate=target, reset=reset, share=share, deep=deep, steps=steps)
        if quantized:
            e, vth, _ = quant.choose_exp_and_threshold(ratio, sigma_mant)
        else:
            e, vth = 0, vth_mant if vth_mant > 0 else 64.0
        sigma_units = ratio * vth
        pre = quant.sigma_for_quantized_variance((sigma_units / 2 ** e) ** 2) * 2 ** e if quantized else sigma_units
        return WeightPlan(0.0, pre, sigma_units, "normal", e, vth, {})
    theta_f = vth_mant / W_SCALE
    kw = dict(threshold=theta_f, beta=beta_f, alpha=alpha_f, sigma_u=float(options.get("sigma_u", 1.0)),
              variant=options.get("variant", "paper"), kernel=options.get("kernel", "numerical"),
              normalization="cuba", dt=dt, mu_u=float(options.get("mu_u", 0.0)), xi=options.get("xi"),
              sg=options.get("sg"), rng=rng, reset=reset, target_rate=target)
    if method == "fdi":
        kw["nu"] = options.get("nu")
        kw["rate"] = target
    if method in ("micheli", "fdi"):
        kw["share"] = share
    mu_f, sig_f, dist = moments(method, fan_in, fan_out, **kw)
    return WeightPlan(mu_f * W_SCALE, sig_f * W_SCALE, sig_f * W_SCALE, dist, 0, vth_mant, kw)


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
    ``measure`` (run the forward to report measured rates, default True), ``identity`` (hardware
    methods: share of a square hidden Dense layer's input variance on one-to-one weights, 0).
    """
    method = check_method(method)
    if not isinstance(spec, NetworkSpec):
        raise ValueError(f"init_spec needs a NetworkSpec, got {type(spec).__name__}")
    known = {"input_rate", "alpha", "sigma_u", "variant", "kernel", "dt", "nu", "mu_u", "xi", "sigma_mant",
             "measure", "calib_batch", "calib_steps", "sg", "steps", "identity"}
    unknown = set(options) - known
    if unknown:
        raise ValueError(f"unknown init option(s): {', '.join(sorted(unknown))}")
    target = DEFAULT_TARGET_RATE if target_rate is None else float(target_rate)
    if not 0.0 < target < 1.0:
        raise ValueError(f"target_rate must lie in (0, 1) spikes per step, got {target_rate}")
    split = float(options.get("alpha", 0.9))
    if not 0.0 < split < 1.0:
        raise ValueError(f"alpha (feed-forward variance share) must lie in (0, 1), got {split}")
    sigma_mant = float(options.get("sigma_mant", quant.SIGMA_MANT))
    if not 2.0 <= sigma_mant <= 64.0:
        raise ValueError(f"sigma_mant must lie in [2, 64] mantissa units, got {sigma_mant}")
    identity = float(options.get("identity", 0.0))
    if not 0.0 <= identity < 1.0:
        raise ValueError(f"identity (one-to-one share of the input variance) must lie in [0, 1), got {identity}")
    if identity > 0 and method not in HARDWARE_METHODS:
        raise ValueError(f"the identity option belongs to the hardware methods, not to '{method}'")
    dt = float(options.get("dt", spec.metadata.get("dt", 1e-3) if isinstance(spec.metadata, dict) else 1e-3))
    rng = np.random.default_rng(int(seed))
    out = spec.copy()
    for layer in out.neuron_layers():
        n = layer.neuron
        kernels.check_decay(f"layer {layer.name}: i_decay", n.i_decay)
        kernels.check_decay(f"layer {layer.name}: v_decay", n.v_decay)
        if float(n.vth_mant) < 0:
            raise ValueError(f"layer {layer.name}: threshold vth_mant must be >= 0, got {n.vth_mant}")

    # calibration / measurement input
    x = None
    if calib_input is not None:
        x = torch.as_tensor(np.asarray(calib_input) if not isinstance(calib_input, torch.Tensor) else calib_input)
        if x.ndim != 3 or x.shape[2] != spec.n_in:
            raise ValueError(f"calib_input must be shaped [batch, steps, {spec.n_in}], got {tuple(x.shape)}")
        x = x.to(torch.float32)
        # trailing steps where no sample has any input are pipeline fill (pad_steps): rates are
        # measured and calibrated on the steps that carry input, not averaged over the silence
        carries = (x != 0).flatten(2).any(dim=2).any(dim=0).nonzero()
        if len(carries):
            x = x[:, : int(carries[-1]) + 1]
    input_rate = options.get("input_rate")
    if input_rate is None:
        input_rate = float((x != 0).float().mean()) if x is not None else target
        input_rate = input_rate if input_rate > 0 else target
    input_rate = float(input_rate)
    if not 0.0 < input_rate <= 1.0:
        raise ValueError(f"input_rate must lie in (0, 1] spikes per step, got {input_rate}")
    measure = bool(options.get("measure", True)) or method == "hardware-calibrated"
    if measure and x is None:
        g = torch.Generator().manual_seed(int(seed) + 7919)
        B = int(options.get("calib_batch", CALIB_BATCH))
        T = int(options.get("calib_steps", CALIB_STEPS))
        x = (torch.rand(B, T, spec.n_in, generator=g) < input_rate).to(torch.float32)

    design_steps = options.get("steps")
    if design_steps is None and calib_input is not None:
        design_steps = int(x.shape[1])
    if design_steps is not None and (int(design_steps) != design_steps or int(design_steps) < 1):
        raise ValueError(f"steps must be a positive integer, got {design_steps}")
    report = InitReport(method=method, seed=int(seed), quantized=bool(spec.quantized), target_rate=target,
                        input_rate=input_rate, calibrated=method == "hardware-calibrated",
                        calib_shape=list(x.shape) if x is not None else None,
                        options={k: v for k, v in options.items() if k != "sg"})
    hw = method in HARDWARE_METHODS
    exact = bool(spec.quantized)
    p_pred, m2_pred = input_rate, input_rate ** 2  # predicted presynaptic rate and its 2nd moment (chain)
    s = None
    if x is not None:
        s = x.to(torch.int64) if exact and not (isinstance(out.layers[0], Dense) and out.layers[0].graded_input) else x
        if not (isinstance(out.layers[0], Dense) and out.layers[0].graded_input):
            s = (x != 0).to(torch.int64 if exact else torch.float32)
    first, prev_pool = True, False
    for layer in out.layers:
        if not isinstance(layer, (Dense, Conv, SumPool)):
            continue
        alpha_f, beta_f = _neuron_factors(layer)
        reset = layer.neuron.reset
        fan_in = _fan_in(layer)
        rate_design = input_rate if first else (target if hw else p_pred)
        is_first, first = first, False
        has_rec = isinstance(layer, Dense) and layer.weight_rec is not None
        lr_kw = {}
        if isinstance(layer, SumPool):
            vth = float(layer.neuron.vth_mant)
            need = math.ceil(1.25 * max(vth, 1.0))
            e = 0
            while exact and need / 2 ** e > 255 and e < loihi.RANGES["weight_exp"][1]:
                e += 1
            layer.weight_exp = e
            layer.weight = int(math.ceil(need / 2 ** e)) if exact else float(need)
            k = fan_in
            pred = 1.0 - (1.0 - min(p_pred, 1.0)) ** k
            m2_out = pred ** 2
            wq = float(layer.weight) * 2.0 ** e
            rep = LayerReport(layer.name, "pool", k, e, layer.neuron.vth_mant, wq, wq, 0.0, 0.0, math.inf,
                              rate_design, pred)
        else:
            wshape = np.asarray(layer.weight).shape
            share = split if has_rec else 1.0
            lam = identity if _takes_identity(layer, is_first) else 0.0
            opts_l = dict(options, steps=design_steps)
            if lam > 0 and exact:  # the one-to-one weight sigma*sqrt(lam*n) must fit the 8-bit mantissa
                opts_l["sigma_mant"] = min(sigma_mant, quant.MANT_HI / math.sqrt(lam * fan_in))
            plan = plan_weights(method, fan_in, _fan_out(layer), alpha_f, beta_f, reset,
                                layer.neuron.vth_mant, exact, target=target,
                                rate_in=(min(max(p_pred, 1e-3), 1.0) if (hw and prev_pool) else rate_design),
                                m2_in=(m2_pred if (hw and prev_pool) else None), deep=not is_first,
                                share=share, rng=rng, dt=dt, **opts_l)
            e, vth, sigma_units = plan.exp, plan.vth, plan.sigma_units
            layer.weight_exp, layer.neuron.vth_mant = e, vth
            pre = plan.pre_sigma_units
            if lam > 0:
                pre = (quant.sigma_for_quantized_variance((sigma_units / 2 ** e) ** 2 * (1 - lam)) * 2 ** e
                       if exact else sigma_units * math.sqrt(1 - lam))
            w_units = _draw(rng, wshape, plan.mu_units, pre, plan.dist)
            if lam > 0:
                idx = np.arange(wshape[0])
                w_units[idx, idx] = sigma_units * math.sqrt(lam * fan_in)
            kw = plan.kw
            layer.weight = _write(w_units, exact, e)
            sq, zf, mq = _stats(layer.weight, e)
            step = quant.STEP * 2.0 ** e if exact else 0.0
            zpred = quant.zero_fraction(sigma_units, step) if exact else 0.0
            # recurrent afferents
            var_rec_units = 0.0
            if has_rec:
                n_rec = layer.n_out
                if hw:
                    _, ratio_r, _ = moments("hardware", n_rec, threshold=1.0, beta=beta_f, alpha=alpha_f,
                                            rate=target, target_rate=target, reset=reset, share=1.0 - split,
                                            deep=True, steps=design_steps)
                    sig_r = ratio_r * vth
                    mu_r, dist_r = 0.0, "normal"
                else:
                    kwr = dict(kw)
                    if method in ("micheli", "fdi"):
                        kwr["share"] = 1.0 - split
                    mu_rf, sig_rf, dist_r = moments(method, n_rec, n_rec, **kwr)
                    sig_r, mu_r = sig_rf * W_SCALE, mu_rf * W_SCALE
                re = _rec_exp_for(sig_r) if (exact and hw) else 0
                pre_r = sig_r
                if exact and hw:
                    pre_r = quant.sigma_for_quantized_variance((sig_r / 2 ** re) ** 2) * 2 ** re
                wr = _draw(rng, (n_rec, n_rec), mu_r, pre_r, dist_r)
                if method == "bellec":
                    np.fill_diagonal(wr, 0.0)
                layer.rec_exp = re
                layer.weight_rec = _write(wr, exact, re)
                sqr, zfr, mqr = _stats(layer.weight_rec, re)
                r_rec = target if hw else p_pred
                var_rec_units = n_rec * r_rec * (sqr ** 2 + mqr ** 2)
                lr_kw = dict(rec_exp=re, sigma_rec_float=sig_r, sigma_rec_quant=sqr, rec_zero_fraction=zfr)
            pred, m2_out = kernels.predict_population(fan_in, mq, sq, p_pred, m2_pred, float(vth), alpha_f,
                                                      beta_f, reset, extra_var=var_rec_units, steps=design_steps)
            rep = LayerReport(layer.name, layer.kind, fan_in, int(layer.weight_exp), layer.neuron.vth_mant,
                              float(sigma_units), sq, zf, zpred,
                              (sigma_units / step) if step > 0 else math.inf, rate_design, pred, **lr_kw)
        # measurement / calibration on the exact forward
        if s is not None:
            a = layer_input(layer, s, exact)
            if method == "hardware-calibrated" and not isinstance(layer, SumPool):
                vth_c, out_s = _calibrate_threshold(layer, a, exact, target)
                layer.neuron.vth_mant = int(vth_c) if exact else float(vth_c)
                rep.vth_mant = layer.neuron.vth_mant
            else:
                out_s = run_layer(layer, a, exact)
            rep.measured_rate = float(out_s.mean())
            s = out_s.to(torch.int64) if exact else out_s
        report.layers.append(rep)
        prev_pool = isinstance(layer, SumPool)
        p_pred, m2_pred = rep.predicted_rate, m2_out
    out.validate()
    return out, report
