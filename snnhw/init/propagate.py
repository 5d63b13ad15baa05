"""Deep fully connected chains at initialization: how variance and spikes propagate (``snnhw propagate``).

The study of Micheli et al. (2024), Figs 2-6, extended to Loihi 2 arithmetic. A chain of ``layers``
dense layers of ``width`` neurons is driven by layer 0, whose "membrane" is ``u_0 ~ N(0, 1)`` i.i.d.
per neuron, sample and step, so it spikes with probability ``P = P(N(0,1) > theta)`` (the paper's
input model: layer 1 then sees ``Var[u_1] = n Var[w] P``). There is no pipeline delay between layers:
layer l at step t sees layer l-1's spikes of step t.

Every neuron runs through the core's one CUBA time loop, batched over the repeats (one threshold per
repeat where the calibration gives one): :func:`snnhw.core.neuron.cuba_loop` in float, and on loihi2 the
core's dispatcher :func:`snnhw.core.neuron.exact_run` (the fused kernel by default, the same integers). Semantics (``semantics``):

* ``float-soft``: snnTorch ``Leaky`` with optional synaptic filter, float32, reset "subtract-undecayed":
  ``i_t = alpha i_{t-1} + W s_t``; ``u_t = beta u_{t-1} + i_t - theta S_{t-1}``; ``S_t = [u_t > theta]``.
* ``float-hard``: the same with reset "zero": ``u_t = beta u_{t-1} (1 - S_{t-1}) + i_t``.
* ``loihi2``: the chip. Weights are legal 8-bit mantissas with the init's ``weight_exp``/``vth_mant``;
  the synapse is :func:`snnhw.loihi.dense_accumulate` and the neuron the exact integer CUBA LIF (hard
  reset) with ``i_decay``/``v_decay`` in netx units (defaults 4096 / 2048: no synaptic filter, beta =
  0.5). Lava's one-step Dense delay per layer is factored out: layer l's T steps are the T steps after
  its input arrives, which is exact because a layer that has received nothing stays at zero state
  (``tests/test_propagate.py`` checks it against ``simulate``). Float formulas (micheli, fdi,
  baselines) are evaluated at theta = vth_mant / 64 with ``vth_mant = round(64 theta)`` and
  ``weight_exp = 0``, then rounded — not rescued.

Recorded per layer, step and repeat: ``var_u`` the variance over neurons and samples of the tested
membrane (float: u; loihi2: the pre-reset v in weight units, v / 64) and ``spike_count`` the spikes per
neuron per step (Micheli et al.'s ``spike_count``). Each repeat draws new weights.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from snnhw import loihi
from snnhw.core.neuron import CubaParams, FloatCuba, cuba_loop, exact_run
from snnhw.errors import InputError
from snnhw.init import kernels
from snnhw.init.plan import W_SCALE, plan_weights
from snnhw.init.tensor import METHODS, moments
from snnhw.io import atomic

SEMANTICS = ("float-soft", "float-hard", "loihi2")


@dataclass
class PropagateConfig:
    """Configuration of one study. Decays in netx units (0..4096); beta/alpha are per-step factors."""

    layers: int = 100
    widths: Sequence[int] = (1000,)
    threshold: float = 1.0
    beta: Optional[float] = None
    current_decay: Optional[float] = None
    voltage_decay: Optional[float] = None
    steps: int = 20
    inits: Sequence[str] = ("kaiming", "micheli")
    semantics: str = "float-soft"
    repeats: int = 20
    batch: int = 10
    seed: int = 0
    target_rate: Optional[float] = None
    calib_batch: int = 8

    def resolve(self) -> Dict:
        """Validate and return the resolved configuration (one-line :class:`~snnhw.errors.InputError`)."""
        for name in ("layers", "steps", "repeats", "batch", "calib_batch"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or int(v) < 1:
                raise InputError(f"{name} must be a positive integer, got {v}")
        widths = [self.widths] if isinstance(self.widths, (int, np.integer)) else list(self.widths)
        if not widths:
            raise InputError("give at least one width")
        for w in widths:
            if isinstance(w, bool) or int(w) != w or int(w) < 1:
                raise InputError(f"width must be a positive integer, got {w}")
        theta = float(self.threshold)
        if not math.isfinite(theta) or theta < 0:
            raise InputError(f"threshold must be >= 0, got {self.threshold}")
        if self.semantics not in SEMANTICS:
            raise InputError(f"unknown semantics '{self.semantics}'; choose one of {', '.join(SEMANTICS)}")
        if self.beta is not None and self.voltage_decay is not None:
            raise InputError("give either beta or voltage_decay, not both")
        if self.beta is not None and not 0.0 <= float(self.beta) <= 1.0:
            raise InputError(f"beta must lie in [0, 1], got {self.beta}")
        for name in ("current_decay", "voltage_decay"):
            v = getattr(self, name)
            if v is not None:
                kernels.check_decay(name.replace("_", "-"), v)
        inits = []
        for spec in self.inits:
            name, _, variant = str(spec).partition(":")
            if name not in METHODS:
                raise InputError(f"unknown init '{name}'; choose from {', '.join(METHODS)}")
            inits.append(str(spec))
        if not inits:
            raise InputError("give at least one init")
        loihi_ = self.semantics == "loihi2"
        if loihi_:
            i_decay = 4096 if self.current_decay is None else self.current_decay
            if self.voltage_decay is not None:
                v_decay = self.voltage_decay
            elif self.beta is not None:
                v_decay = round((1.0 - float(self.beta)) * loihi.DECAY_UNITY)
            else:
                v_decay = 2048
            for name, v in (("current-decay", i_decay), ("voltage-decay", v_decay)):
                if float(v) != int(v):
                    raise InputError(f"{name} must be an integer on loihi2, got {v}")
            i_decay, v_decay = int(i_decay), int(v_decay)
        else:
            i_decay = 4096.0 if self.current_decay is None else float(self.current_decay)
            if self.voltage_decay is not None:
                v_decay = float(self.voltage_decay)
            else:
                v_decay = (1.0 - (0.5 if self.beta is None else float(self.beta))) * loihi.DECAY_UNITY
        alpha = 1.0 - i_decay / loihi.DECAY_UNITY
        beta = 1.0 - v_decay / loihi.DECAY_UNITY
        p0 = kernels.norm_sf(theta)
        target = p0 if self.target_rate is None else float(self.target_rate)
        if not 0.0 < target < 1.0:
            raise InputError(f"target rate must lie in (0, 1) spikes per step, got {self.target_rate}")
        cfg = asdict(self)
        cfg.update(widths=[int(w) for w in widths], inits=inits, threshold=theta, i_decay=i_decay,
                   v_decay=v_decay, alpha=alpha, beta=beta, input_rate=p0, target_rate=target,
                   reset="zero" if self.semantics in ("float-hard", "loihi2") else "subtract-undecayed",
                   vth_mant=int(round(W_SCALE * theta)) if loihi_ else None,
                   var_u_units="weight units (v/64, pre-reset)" if loihi_ else "float units (u, pre-reset)",
                   spike_count_units="spikes per neuron per step")
        cfg.pop("current_decay"), cfg.pop("voltage_decay")
        return cfg


# ------------------------------------------------------------------------------------------------
# neurons: the core's CUBA loop, batched over repeats [R, B, T, n]
# ------------------------------------------------------------------------------------------------
def _float_layer(I: torch.Tensor, theta: torch.Tensor, alpha: float, beta: float, soft: bool):
    """I [R, B, T, n] synaptic input; theta [R, 1, 1]. Returns spikes [R, B, T, n] (float32) and the
    tested membrane u [R, B, T, n] (snnTorch units: no input gain)."""
    p = FloatCuba(alpha, beta, theta, gain=1.0, reset="subtract-undecayed" if soft else "zero")
    run = cuba_loop(I, p, keep_vpre=True)
    return run.s, run.v_pre


def _float_rates(I, theta, alpha, beta, soft):
    return _float_layer(I, theta, alpha, beta, soft)[0].mean(dim=(1, 2, 3))


def _calibrate_float(I_cal, theta: float, alpha, beta, soft, target) -> torch.Tensor:
    """Per-repeat weight scale g (bisection in log g) so the layer's rate on the calibration stream is
    ``target``; scaling W by g equals dividing the threshold by g. (A vectorized bisection over all
    repeats at once; scipy's scalar brentq would take other steps and change the study's numbers.)"""
    R = I_cal.shape[0]
    lo = torch.full((R,), -12.0)
    hi = torch.full((R,), 12.0)
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        th = (theta / torch.exp2(mid)).reshape(R, 1, 1)
        r = _float_rates(I_cal, th, alpha, beta, soft)
        lo = torch.where(r < target, mid, lo)
        hi = torch.where(r < target, hi, mid)
    return torch.exp2(0.5 * (lo + hi))


def _loihi_synapse(s: torch.Tensor, W: torch.Tensor, exps: List[int]) -> torch.Tensor:
    """s [R, B, T, n] (0/1 int64), W [R, n_out, n] exact-integer mantissas (float32) -> a [R, B, T, n_out]
    via :func:`snnhw.loihi.dense_accumulate` (per repeat)."""
    return torch.stack([loihi.dense_accumulate(s[r], W[r].to(torch.int64), exps[r]) for r in range(s.shape[0])])


def _exact_run(a: torch.Tensor, i_decay: int, v_decay: int, vth: torch.Tensor, keep_vpre: bool):
    """The exact loop on a [R, B, T, n] (int64) with one threshold mantissa per repeat (``vth`` [R]), on
    the core's dispatcher (:func:`snnhw.core.neuron.exact_run`: the fused kernel by default)."""
    p = CubaParams(i_decay, v_decay, vth.to(torch.int64).reshape(-1, 1, 1))
    return exact_run(a, p, keep_vpre=keep_vpre)


def _loihi_rates_vth(a: torch.Tensor, i_decay: int, v_decay: int, vth: torch.Tensor) -> torch.Tensor:
    """Rates per repeat (float32) for per-repeat threshold mantissas ``vth`` [R] (int64): the
    calibration search's objective."""
    R, B, T, n = a.shape
    count = _exact_run(a, i_decay, v_decay, vth, keep_vpre=False).s.sum(dim=(1, 2, 3))
    return count.to(torch.float32) / (B * T * n)


def _calibrate_loihi(a_cal: torch.Tensor, i_decay: int, v_decay: int, target: float, vth0: int) -> torch.Tensor:
    """Per-repeat integer threshold mantissa whose rate on the calibration stream is closest to target
    (integer bisection, bracket [vth0/2, 2 vth0] around the analytic threshold, widened to the full
    17-bit range for repeats whose rate it does not bracket; vectorized over repeats, so no brentq)."""
    R = a_cal.shape[0]
    vmax = loihi.RANGES["vth_mant"][1]
    lo = torch.full((R,), max(1, vth0 // 2), dtype=torch.int64)
    hi = torch.full((R,), min(vmax, 2 * vth0 + 1), dtype=torch.int64)
    r_lo = _loihi_rates_vth(a_cal, i_decay, v_decay, lo)
    r_hi = _loihi_rates_vth(a_cal, i_decay, v_decay, hi)
    lo = torch.where(r_lo > target, lo, torch.ones_like(lo))
    hi = torch.where(r_hi > target, torch.full_like(hi, vmax), hi)
    while bool((hi - lo > 1).any()):
        mid = (lo + hi) // 2
        r = _loihi_rates_vth(a_cal, i_decay, v_decay, mid)
        lo = torch.where(r > target, mid, lo)
        hi = torch.where(r > target, hi, mid)
    r_lo = _loihi_rates_vth(a_cal, i_decay, v_decay, lo)
    r_hi = _loihi_rates_vth(a_cal, i_decay, v_decay, hi)
    return torch.where((r_lo - target).abs() < (r_hi - target).abs(), lo, hi)


def _loihi_neuron(a: torch.Tensor, i_decay: int, v_decay: int, vths: List[int]):
    """Exact neurons with per-repeat thresholds ``vths``: spikes [R, B, T, n] (int64) and the pre-reset
    v [R, B, T, n] (state units; float32, which holds |v| < 2**23 exactly)."""
    run = _exact_run(a, i_decay, v_decay, torch.as_tensor(vths, dtype=torch.int64), keep_vpre=True)
    return run.s.to(torch.int64), run.v_pre


# ------------------------------------------------------------------------------------------------
# one init at one width: a chain of layers
# ------------------------------------------------------------------------------------------------
@dataclass
class _Chain:
    """What flows from layer to layer: the spikes (and calibration spikes), the generators, the log."""

    cfg: Dict
    name: str
    variant: str
    width: int
    s: torch.Tensor
    s_cal: Optional[torch.Tensor]
    gen_w: torch.Generator
    rng: np.random.Generator
    opts: Dict
    info: Dict = field(default_factory=lambda: {k: [] for k in (
        "weight_exp", "vth_mant", "sigma_w", "sigma_w_quant", "zero_fraction")})


def _input_spikes(R, B, T, n, theta, gen) -> torch.Tensor:
    return (torch.randn(R, B, T, n, generator=gen) > theta).to(torch.float32)


def _start(cfg: Dict, init: str, width: int) -> _Chain:
    """Seeded generators and the layer-0 spikes of one (init, width) chain."""
    name, _, variant = init.partition(":")
    R, T, theta = cfg["repeats"], cfg["steps"], cfg["threshold"]
    offset = METHODS.index(name) + 1
    gen_in = torch.Generator().manual_seed(cfg["seed"] * 7919 + width)
    gen_w = torch.Generator().manual_seed(cfg["seed"] * 104729 + offset * 1009 + width)
    rng = np.random.default_rng(cfg["seed"] * 31 + offset)
    s = _input_spikes(R, cfg["batch"], T, width, theta, gen_in)
    s_cal = _input_spikes(R, cfg["calib_batch"], T, width, theta, gen_in) if name == "hardware-calibrated" else None
    opts = {"variant": variant} if (variant and name == "micheli") else ({"kernel": variant} if variant else {})
    return _Chain(cfg, name, variant, width, s, s_cal, gen_w, rng, opts)


def _loihi_layer(ch: _Chain, l: int):
    """Layer l on the chip: draw, round to the grid, run (calibrating the threshold per repeat for
    hardware-calibrated). Returns (tested membrane in weight units, sigma_w)."""
    cfg, R, width = ch.cfg, ch.cfg["repeats"], ch.width
    plan = plan_weights(ch.name, width, width, cfg["alpha"], cfg["beta"], "zero", cfg["vth_mant"], True,
                        target=cfg["target_rate"], rate_in=cfg["input_rate"], deep=l > 0, rng=ch.rng,
                        steps=cfg["steps"], **ch.opts)
    e, vth = int(plan.exp), int(plan.vth)
    if plan.dist == "uniform":
        W = torch.rand(R, width, width, generator=ch.gen_w).mul_(2).sub_(1).mul_(math.sqrt(3.0))
    else:
        W = torch.randn(R, width, width, generator=ch.gen_w)
    W.mul_(plan.pre_sigma_units / 2.0 ** e)
    if plan.mu_units:
        W.add_(plan.mu_units / 2.0 ** e)
    W = loihi.round_to_grid_torch_(W)
    ch.info["sigma_w_quant"].append(float(W.std()) * 2.0 ** e)
    ch.info["zero_fraction"].append(float((W == 0).float().mean()))
    exps = [e] * R
    a = _loihi_synapse(ch.s.to(torch.int64), W, exps)
    vths = [vth] * R
    if ch.s_cal is not None:
        a_cal = _loihi_synapse(ch.s_cal.to(torch.int64), W, exps)
        vt = _calibrate_loihi(a_cal, cfg["i_decay"], cfg["v_decay"], cfg["target_rate"], vth)
        vths = [int(x) for x in vt]
        s_cal, _ = _loihi_neuron(a_cal, cfg["i_decay"], cfg["v_decay"], vths)
        ch.s_cal = s_cal.to(torch.float32)
    s_new, v_pre = _loihi_neuron(a, cfg["i_decay"], cfg["v_decay"], vths)
    ch.info["weight_exp"].append(e)
    ch.info["vth_mant"].append(float(np.mean(vths)))
    ch.s = s_new.to(torch.float32)
    return v_pre.to(torch.float64) / (1 << loihi.ACT_SHIFT), plan.sigma_units


def _float_layer_run(ch: _Chain, l: int):
    """Layer l in float: the init's moments, the draw, (per-repeat scale for hardware-calibrated), run.
    Returns (tested membrane u, sigma_w)."""
    cfg, R, width = ch.cfg, ch.cfg["repeats"], ch.width
    theta, alpha, beta, T = cfg["threshold"], cfg["alpha"], cfg["beta"], cfg["steps"]
    soft = cfg["semantics"] == "float-soft"
    calibrated = ch.s_cal is not None
    sig = np.zeros(R)
    mu, dist = 0.0, "normal"
    for r in range(R if (ch.name == "micheli" and ch.variant == "finite-size") else 1):
        mu, sg, dist = moments("hardware" if calibrated else ch.name, width, width, threshold=theta, beta=beta,
                               alpha=alpha, rate=cfg["input_rate"], target_rate=cfg["target_rate"],
                               reset=cfg["reset"], deep=l > 0, rng=ch.rng, steps=T, **ch.opts)
        sig[r:] = sg
    sig_t = torch.as_tensor(sig, dtype=torch.float32).reshape(R, 1, 1)
    if dist == "uniform":
        W = torch.rand(R, width, width, generator=ch.gen_w).mul_(2).sub_(1).mul_(math.sqrt(3.0) * sig_t)
    else:
        W = torch.randn(R, width, width, generator=ch.gen_w).mul_(sig_t)
    if mu:
        W.add_(mu)
    sig_f = float(sig.mean())
    if calibrated:
        Bc = cfg["calib_batch"]
        I_cal = torch.matmul(ch.s_cal.reshape(R, Bc * T, width), W.transpose(1, 2)).reshape(R, Bc, T, width)
        g = _calibrate_float(I_cal, theta, alpha, beta, soft, cfg["target_rate"])
        W = W * g.reshape(R, 1, 1)
        I_cal = I_cal * g.reshape(R, 1, 1, 1)
        ch.s_cal, _ = _float_layer(I_cal, torch.full((R, 1, 1), theta), alpha, beta, soft)
        sig_f = float((sig * g.numpy()).mean())
    B = cfg["batch"]
    I = torch.matmul(ch.s.reshape(R, B * T, width), W.transpose(1, 2)).reshape(R, B, T, width)
    ch.s, u_meas = _float_layer(I, torch.full((R, 1, 1), theta), alpha, beta, soft)
    ch.info["weight_exp"].append(None)
    ch.info["vth_mant"].append(None)
    return u_meas, sig_f


def _summary(ch: _Chain, var_u: np.ndarray, spikes: np.ndarray) -> Dict:
    """The result entry of one chain from var_u and spikes [L, R, T]."""
    L = var_u.shape[0]
    v1 = var_u[0].mean(axis=1, keepdims=True)  # [R, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(v1 > 0, var_u.mean(axis=2).T / v1, np.nan)  # [R, L]
    finite = np.isfinite(ratio).any()
    res = {
        "init": ch.name, "variant": ch.variant or None, "width": ch.width,
        "var_u": var_u.mean(axis=(1, 2)).tolist(), "var_u_std": var_u.mean(axis=2).std(axis=1).tolist(),
        "var_u_ratio": np.nanmean(ratio, axis=0).tolist() if finite else [None] * L,
        "var_u_ratio_std": np.nanstd(ratio, axis=0).tolist() if finite else [None] * L,
        "spike_count": spikes.mean(axis=(1, 2)).tolist(), "spike_count_std": spikes.mean(axis=2).std(axis=1).tolist(),
        "var_u_per_step": var_u.mean(axis=1).tolist(), "spike_count_per_step": spikes.mean(axis=1).tolist(),
    }
    res.update(ch.info)
    if ch.cfg["semantics"] != "loihi2":
        for k in ("weight_exp", "vth_mant", "sigma_w_quant", "zero_fraction"):
            res.pop(k, None)
    return res


def _run_one(cfg: Dict, init: str, width: int, progress=None) -> Dict:
    """One (init, width) chain of ``cfg["layers"]`` layers; ``progress()`` is called after each layer."""
    ch = _start(cfg, init, width)
    L, R, T = cfg["layers"], cfg["repeats"], cfg["steps"]
    var_u = np.zeros((L, R, T))
    spikes = np.zeros((L, R, T))
    for l in range(L):
        u_meas, sig_f = _loihi_layer(ch, l) if cfg["semantics"] == "loihi2" else _float_layer_run(ch, l)
        ch.info["sigma_w"].append(sig_f)
        var_u[l] = u_meas.permute(0, 2, 1, 3).reshape(R, T, -1).to(torch.float64).var(dim=2).numpy()
        spikes[l] = ch.s.mean(dim=(1, 3)).to(torch.float64).numpy()
        if progress is not None:
            progress()
    return _summary(ch, var_u, spikes)


def _progress_bar(total: int):
    """A rich progress bar on stderr (the caller starts and stops it) and its task id."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    return bar, bar.add_task("propagate", total=total)


def propagate(config: Optional[PropagateConfig] = None, *, progress: bool = False, **kwargs) -> Dict:
    """Run the study; returns ``{"config": ..., "results": {key: ...}}`` (the ``propagation.json``
    schema). Keys are init names (``micheli``, ``micheli:finite-size``) and, with several widths,
    ``<init>@n<width>``."""
    config = config or PropagateConfig(**kwargs)
    cfg = config.resolve()
    torch.manual_seed(cfg["seed"])
    results: Dict[str, Dict] = {}
    bar, task = _progress_bar(len(cfg["inits"]) * len(cfg["widths"]) * cfg["layers"]) if progress else (None, None)
    t0 = time.perf_counter()
    if bar is not None:
        bar.start()
    try:
        for width in cfg["widths"]:
            for init in cfg["inits"]:
                key = init if len(cfg["widths"]) == 1 else f"{init}@n{width}"
                if bar is not None:
                    bar.update(task, description=key)
                t1 = time.perf_counter()
                res = _run_one(cfg, init, width, (lambda: bar.advance(task)) if bar is not None else None)
                res["seconds"] = time.perf_counter() - t1
                results[key] = res
    finally:
        if bar is not None:
            bar.stop()
    cfg["seconds"] = time.perf_counter() - t0
    return atomic.to_jsonable({"config": cfg, "results": results})


def write_json(data: Dict, path: str) -> None:
    """Write ``propagation.json`` (indent 1) atomically."""
    atomic.write_json(path, data, indent=1)
