"""snnhw.init: closed forms against direct simulation, the 8-bit grid, init_spec on real specs, errors."""
import json
import math

import numpy as np
import pytest
import torch
from scipy.special import ndtr

from snnhw import loihi
from snnhw.core.neuron import CubaParams, cuba_lif_trace
from snnhw.init import METHODS, init_module, init_spec, init_tensor, kernels, quant
from snnhw.init.formulas import ikun_beta, micheli
from snnhw.spec import Conv, Dense, Flatten, Neuron, NetworkSpec, SumPool


# ---------------------------------------------------------------------------------------------
# kernel closed forms
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha,beta", [(0.0, 0.5), (0.75, 0.97), (0.6065, 0.9048), (0.8, 0.8), (0.3, 0.9)])
def test_kernel_sums_match_recursion(alpha, beta):
    k = kernels.kernel(alpha, beta, 5000)
    assert k.sum() == pytest.approx(kernels.sum_k(alpha, beta), rel=1e-9)
    assert (k ** 2).sum() == pytest.approx(kernels.sum_k2(alpha, beta), rel=1e-9)


@pytest.mark.parametrize("i_decay,v_decay", [(4096, 2048), (1024, 128), (1600, 400)])
def test_cuba_gains_match_core_neuron_impulse_response(i_decay, v_decay):
    """Sum k and sum k^2 from the decays equal the core neuron's simulated impulse response."""
    T = 1500
    a = torch.zeros(1, T, 1)
    a[0, 0, 0] = 1.0
    tr = cuba_lif_trace(a, CubaParams(i_decay, v_decay, 1e12, "zero"), exact=False)
    k = tr.v[0, :, 0].double().numpy() / (1 << loihi.ACT_SHIFT)  # v in weight units per unit input
    s1, s2 = kernels.cuba_gains(i_decay, v_decay)
    assert k.sum() == pytest.approx(s1, rel=1e-4)
    assert (k ** 2).sum() == pytest.approx(s2, rel=1e-4)
    # the exact integer neuron (truncating decays) with a large input lands within 1 %
    a_int = torch.zeros(1, T, 1, dtype=torch.int64)
    a_int[0, 0, 0] = 1000
    tri = cuba_lif_trace(a_int, CubaParams(i_decay, v_decay, 131071, "zero"), exact=True)
    ki = tri.v[0, :, 0].double().numpy() / (1000 << loihi.ACT_SHIFT)
    assert ki.sum() == pytest.approx(s1, rel=0.01)
    assert (ki ** 2).sum() == pytest.approx(s2, rel=0.01)


def test_free_membrane_quenched_and_temporal_variance():
    """With fixed random weights and Bernoulli(p) input, the free membrane's variance over neurons and time
    splits into temporal n s^2 p(1-p) sum_k2 and quenched n s^2 p^2 sum_k^2 (predict_population's model)."""
    g = torch.Generator().manual_seed(1)
    n, m, T, p, sw = 200, 400, 3000, 0.1, 0.05
    alpha, beta = 0.5, 0.8
    W = torch.randn(m, n, generator=g, dtype=torch.float64) * sw
    s = (torch.rand(T, n, generator=g, dtype=torch.float64) < p).double()
    x = s @ W.T
    i = torch.zeros(m, dtype=torch.float64)
    v = torch.zeros(m, dtype=torch.float64)
    vs = []
    for t in range(T):
        i = alpha * i + x[t]
        v = beta * v + i
        if t >= 200:
            vs.append(v.clone())
    V = torch.stack(vs)
    sw_emp = float(W.std())
    k1, k2 = kernels.sum_k(alpha, beta), kernels.sum_k2(alpha, beta)
    temporal = n * sw_emp ** 2 * p * (1 - p) * k2
    quenched = n * sw_emp ** 2 * p ** 2 * k1 ** 2
    assert float(V.var(dim=0).mean()) == pytest.approx(temporal, rel=0.1)
    assert float(V.mean(dim=0).var()) == pytest.approx(quenched, rel=0.2)


def test_reset_mean_shift_identity():
    """Hard reset: E[v_tested] = E[v_free] - r q beta/(1-beta), q = E[v_pre | spike] (exact in stationarity)."""
    rng = np.random.default_rng(0)
    beta, alpha, theta = 0.7, 0.3, 1.0
    N, T = 4000, 3000
    x = 0.25 + 0.4 * rng.standard_normal((T, N))
    i = np.zeros(N)
    v = np.zeros(N)
    tested, spikes, vpre = [], [], []
    for t in range(T):
        i = alpha * i + x[t]
        v = beta * v + i
        s = v > theta
        if t > 200:
            tested.append(v.mean())
            spikes.append(s.mean())
            vpre.append(v[s].sum())
        v = np.where(s, 0.0, v)
    r = np.mean(spikes)
    q = np.sum(vpre) / (np.mean(spikes) * N * len(spikes))
    mu_free = 0.25 * kernels.sum_k(alpha, beta)
    assert np.mean(tested) == pytest.approx(mu_free + kernels.reset_mean_shift(r, q, beta), rel=0.02)


def test_ensemble_rates_one_step_equals_gaussian_tail():
    """From rest, one step: v = x, so the rate is P(N(m, s^2) > theta) exactly (up to MC noise)."""
    m = np.array([-0.5, 0.0, 0.3, 1.0])
    r = kernels.ensemble_rates(m, 0.8, 1.0, 0.5, 0.5, "zero", steps=1)
    expect = ndtr(-(1.0 - m) / 0.8)
    assert np.allclose(r, expect, atol=0.015)


def test_normal_tail_matches_scipy():
    """kernels.norm_sf (kept as erfc for bit-stable inits) agrees with scipy's ndtr to float precision."""
    for z in np.linspace(-8.0, 8.0, 161):
        assert kernels.norm_sf(z) == pytest.approx(ndtr(-z), rel=1e-12, abs=1e-300)
        assert kernels.norm_pdf(z) == pytest.approx(math.exp(-z * z / 2) / math.sqrt(2 * math.pi), rel=1e-14)


def test_ensemble_rates_subtract_reset_mean_balance():
    """Soft reset, drift-dominated: rate -> mean input per step * sum_k (1-beta)... / theta balance."""
    # with subtractive reset and no noise, a perfect-ish integrator fires at m/theta per step
    r = kernels.ensemble_rates(np.array([0.2]), 1e-9, 1.0, 0.0, 1.0 - 1e-3, "subtract")
    assert r[0] == pytest.approx(0.2 / 1.0, abs=0.01)


# ---------------------------------------------------------------------------------------------
# quantization grid
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ratio,zero,varratio", [(0.25, 0.95, 0.73), (0.5, 0.68, 1.30), (1, 0.38, 1.08),
                                                 (2, 0.20, 1.02), (4, 0.10, 1.005)])
def test_quantization_tables(ratio, zero, varratio):
    step = 2.0
    sigma = ratio * step
    assert quant.zero_fraction(sigma, step) == pytest.approx(zero, abs=0.01)
    assert quant.quantized_variance(sigma, step) / sigma ** 2 == pytest.approx(varratio, abs=0.01)
    w = np.random.default_rng(0).normal(0, sigma, 400000)
    q = step * np.round(w / step)
    assert np.mean(q == 0) == pytest.approx(quant.zero_fraction(sigma, step), abs=0.005)
    assert q.var() == pytest.approx(quant.quantized_variance(sigma, step), rel=0.02)


def test_quantized_variance_matches_scipy_cdf():
    """The kept math.erf cdf sum equals the same sum over scipy's ndtr to float precision."""
    for sigma in (0.3, 0.9, 2.5, 7.0, 15.9):
        k = np.arange(1, int(12 * sigma / 2) + 5, dtype=np.float64)
        ref = 2.0 * np.sum((2 * k) ** 2 * (ndtr((k + 0.5) * 2 / sigma) - ndtr((k - 0.5) * 2 / sigma)))
        assert quant.quantized_variance(sigma) == pytest.approx(ref, rel=1e-12)


def test_sigma_for_quantized_variance_inverts():
    for target in (0.5, 2.0, 9.0, 1000.0):
        s = quant.sigma_for_quantized_variance(target)
        assert quant.quantized_variance(s) == pytest.approx(target, rel=1e-6)


def test_round_to_grid_is_lava_legal():
    """The init writes weights through loihi's one grid rule: legal, even, within [-256, 254]."""
    w = np.random.default_rng(1).normal(0, 60, (50, 40))
    q = loihi.round_to_grid(w)
    eff, _ = loihi.dense_effective_weights(q)
    assert np.array_equal(eff, q) and np.all(q % loihi.MIXED_STEP == 0)
    assert q.min() >= loihi.WEIGHT_MANT_MIN and q.max() <= loihi.MIXED_MANT_MAX
    qt = loihi.round_to_grid_torch_(torch.as_tensor(w, dtype=torch.float32))
    assert np.array_equal(qt.numpy().astype(np.int64), q)
    spec, _ = init_spec(_mlp([64, 32, 10]), "hardware", seed=0, measure=False)
    for layer in spec.layers:
        assert np.array_equal(loihi.dense_effective_weights(np.asarray(layer.weight))[0], layer.weight)


def test_choose_exp_and_threshold_keeps_sigma_above_step():
    for ratio in (1e-4, 0.003, 0.05, 0.3, 2.0, 20.0):
        e, vth, s = quant.choose_exp_and_threshold(ratio)
        loihi.check_range("weight_exp", e)
        loihi.check_range("vth_mant", vth)
        assert s / loihi.MIXED_STEP >= 4  # the mantissa std sits well above one grid step
        assert ratio * vth / 2 ** e == pytest.approx(s, rel=0.02)


# ---------------------------------------------------------------------------------------------
# formulas
# ---------------------------------------------------------------------------------------------
def test_micheli_closed_form_values():
    assert 1000 * micheli(1000, 1.0)[1] ** 2 == pytest.approx(6.30, abs=0.01)
    assert 1000 * micheli(1000, 0.5)[1] ** 2 == pytest.approx(3.24, abs=0.01)
    assert 1000 * micheli(1000, 2.0)[1] ** 2 == pytest.approx(44.0, abs=0.1)
    # sigma_u generalization: scale invariance sigma_u -> c sigma_u, theta -> c theta scales sigma_w by c
    assert micheli(500, 2.0, sigma_u=2.0)[1] == pytest.approx(2 * micheli(500, 1.0)[1])
    # finite-size: a smaller tail estimate -> larger variance, deterministic given the rng
    a = micheli(100, 1.0, variant="finite-size", rng=np.random.default_rng(3))[1]
    b = micheli(100, 1.0, variant="finite-size", rng=np.random.default_rng(3))[1]
    assert a == b and a > micheli(100, 1.0)[1]


def test_ikun_beta_atan():
    assert ikun_beta() == pytest.approx(4 / math.pi, rel=1e-6)


def test_stork_shd_eps_and_sigma():
    """stork SHD example (dt 2 ms, tau_mem 20 ms, tau_syn 10 ms, nu 15.8 Hz, n = 700) — reference values."""
    eb_n, eh_n = kernels.stork_eps(20e-3, 10e-3, 2e-3, "numerical")
    eb_a, eh_a = kernels.stork_eps(20e-3, 10e-3, 2e-3, "analytic")
    assert eh_n == pytest.approx(2.04e-3, rel=0.01)
    assert eh_a == pytest.approx(1.67e-3, rel=0.01)
    assert eb_a == pytest.approx(10e-3)
    w = torch.empty(10, 700)
    from snnhw.init import moments
    sn = moments("fdi", 700, nu=15.8, dt=2e-3, tau_mem=20e-3, tau_syn=10e-3, normalization="stork")[1]
    sa = moments("fdi", 700, nu=15.8, dt=2e-3, tau_mem=20e-3, tau_syn=10e-3, normalization="stork",
                 kernel="analytic")[1]
    assert sn == pytest.approx(0.211, abs=0.002) and sa == pytest.approx(0.233, abs=0.002)
    init_tensor(w, "fdi", nu=15.8, dt=2e-3, tau_mem=20e-3, tau_syn=10e-3, normalization="stork", seed=0)
    assert float(w.std()) == pytest.approx(sn, rel=0.03)


def test_fdi_shd_free_membrane_sigma_within_10_percent(capsys):
    """Acceptance: stork SHD settings, wide layer, measured free-membrane sigma_U within 10 % of sigma_u = 1."""
    g = torch.Generator().manual_seed(0)
    n, m, T, burn, dt = 1000, 300, 2500, 200, 2e-3
    W = init_tensor(torch.empty(m, n), "fdi", nu=15.8, dt=dt, tau_mem=20e-3, tau_syn=10e-3,
                    normalization="stork", sigma_u=1.0, generator=g)
    dsyn, dmem = math.exp(-dt / 10e-3), math.exp(-dt / 20e-3)
    s = (torch.rand(T, n, generator=g) < 15.8 * dt).float()
    x = s @ W.T
    syn = torch.zeros(m)
    mem = torch.zeros(m)
    us = []
    for t in range(T):  # stork LIFGroup, free membrane: syn <- dsyn syn + in; mem <- dmem mem + (1-dmem) syn
        mem = dmem * mem + (1 - dmem) * syn
        syn = dsyn * syn + x[t]
        if t >= burn:
            us.append(mem.clone())
    U = torch.stack(us)  # [time, neuron]
    # FDI's sigma_U is the membrane fluctuation (Campbell: n nu eps_hat sigma_w^2): std over time, RMS over neurons
    sigma_U = float(U.var(dim=0).mean().sqrt())
    with capsys.disabled():
        print(f"\nFDI SHD settings: measured free-membrane sigma_U = {sigma_U:.4f} (target 1.0)")
    assert sigma_U == pytest.approx(1.0, rel=0.10)


def test_init_tensor_linear_and_conv_fan_in():
    lin = torch.nn.Linear(400, 300)
    conv = torch.nn.Conv2d(8, 16, 3)
    init_module(torch.nn.Sequential(lin, conv), "kaiming", seed=0)
    assert float(lin.weight.std()) == pytest.approx(math.sqrt(2 / 400), rel=0.03)
    assert float(conv.weight.std()) == pytest.approx(math.sqrt(2 / (8 * 9)), rel=0.06)
    w = init_tensor(torch.empty(500, 500), "pytorch", seed=0)
    assert float(w.abs().max()) <= 1 / math.sqrt(500) + 1e-7
    w = init_tensor(torch.empty(300, 300), "bellec", seed=0, zero_diagonal=True)
    assert float(w.diagonal().abs().max()) == 0.0
    w = init_tensor(torch.empty(300, 300), "zenke", beta=0.9, seed=0)
    assert float(w.std()) == pytest.approx(0.7 / math.sqrt(300), rel=0.03)


# ---------------------------------------------------------------------------------------------
# init_spec
# ---------------------------------------------------------------------------------------------
def _mlp(sizes, quantized=True, rec=False, i_decay=1024, v_decay=128, vth=80):
    layers = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Dense(f"fc{k}", np.zeros((b, a)), Neuron(i_decay=i_decay, v_decay=v_decay, vth_mant=vth),
                            weight_rec=np.zeros((b, b)) if (rec and k == 0) else None))
    return NetworkSpec((sizes[0],), layers, quantized=quantized)


def _cnn(quantized=True):
    nrn = lambda: Neuron(i_decay=1024, v_decay=512, vth_mant=64)  # noqa: E731
    layers = [Conv("c1", np.zeros((8, 2, 3, 3)), (2, 12, 12), nrn(), padding=(1, 1)),
              SumPool("p1", (8, 12, 12), neuron=nrn()),
              Conv("c2", np.zeros((8, 8, 3, 3)), (8, 6, 6), nrn(), padding=(1, 1)),
              Flatten("f", (8, 6, 6)),
              Dense("fc", np.zeros((10, 288)), nrn())]
    return NetworkSpec((2, 12, 12), layers, quantized=quantized)


@pytest.mark.parametrize("method", METHODS)
def test_init_spec_every_method_gives_valid_quantized_spec(method):
    spec, rep = init_spec(_mlp([32, 64, 64, 10], rec=True), method, seed=3, calib_steps=16, calib_batch=4)
    spec.validate()
    for layer in spec.layers:
        assert np.all(np.asarray(layer.weight) % 2 == 0)
    d = json.loads(json.dumps(rep.to_dict()))
    assert len(d["layers"]) == 3 and d["method"] == method
    for lr in rep.layers:
        assert lr.measured_rate is not None and 0 <= lr.measured_rate <= 1
        assert 0 <= lr.zero_fraction <= 1


def test_init_spec_is_deterministic_and_does_not_touch_input():
    base = _mlp([32, 64, 10])
    a, _ = init_spec(base, "hardware", seed=5, measure=False)
    b, _ = init_spec(base, "hardware", seed=5, measure=False)
    c, _ = init_spec(base, "hardware", seed=6, measure=False)
    assert np.array_equal(a.layers[0].weight, b.layers[0].weight)
    assert not np.array_equal(a.layers[0].weight, c.layers[0].weight)
    assert not np.any(base.layers[0].weight)


def test_hardware_init_grid_and_calibration():
    spec = _mlp([200, 300, 300, 10])
    hs, hr = init_spec(spec, "hardware", seed=0, target_rate=0.1)
    for lr in hr.layers:
        assert lr.sigma_over_step >= 8  # sigma_w well above one quantization step
        assert lr.zero_fraction < 0.1
        assert lr.sigma_w_quant == pytest.approx(lr.sigma_w_float, rel=0.1)
    cs, cr = init_spec(spec, "hardware-calibrated", seed=0, target_rate=0.1)
    for lr in cr.layers:
        assert lr.measured_rate == pytest.approx(0.1, abs=0.02)
    # calibration only moves thresholds; the weights are the analytic ones
    assert np.array_equal(hs.layers[1].weight, cs.layers[1].weight)


def test_hardware_calibration_with_real_input_and_float_spec():
    x = (np.random.default_rng(0).random((6, 12, 32)) < 0.3).astype(np.float32)
    spec, rep = init_spec(_mlp([32, 64, 64], quantized=False), "hardware-calibrated", calib_input=x,
                          target_rate=0.2)
    assert rep.input_rate == pytest.approx(float((x != 0).mean()))
    assert rep.calib_shape == [6, 12, 32]
    for lr in rep.layers:
        assert lr.measured_rate == pytest.approx(0.2, abs=0.03)


def test_calibration_ignores_trailing_pipeline_padding():
    """Steps where no sample has input (recipe pad_steps: pipeline fill) are not part of the rate the
    calibration aims at: padded input gives the same thresholds and the target rate on the input steps."""
    x = (np.random.default_rng(1).random((16, 3, 32)) < 0.3).astype(np.float32)
    padded = np.concatenate([x, np.zeros((16, 11, 32), np.float32)], axis=1)
    spec = _mlp([32, 64, 64, 64])
    a, ra = init_spec(spec, "hardware-calibrated", seed=0, calib_input=x, target_rate=0.2)
    b, rb = init_spec(spec, "hardware-calibrated", seed=0, calib_input=padded, target_rate=0.2)
    assert rb.calib_shape == [16, 3, 32]
    assert [l.neuron.vth_mant for l in a.layers] == [l.neuron.vth_mant for l in b.layers]
    for lr in rb.layers:
        assert lr.measured_rate == pytest.approx(0.2, abs=0.03)


def test_identity_option_puts_variance_on_one_to_one_weights():
    """identity = lam: square hidden Dense layers get a diagonal of sigma*sqrt(lam*n) (fitting the 8-bit
    mantissa) and off-diagonal variance (1-lam) sigma^2; the first and non-square layers are untouched."""
    spec = _mlp([64, 200, 200, 200, 10])
    plain, _ = init_spec(spec, "hardware", seed=0, measure=False)
    ident, rep = init_spec(spec, "hardware", seed=0, measure=False, identity=0.8)
    assert np.array_equal(plain.layers[0].weight, ident.layers[0].weight)  # first layer: no identity
    for layer in ident.layers[1:3]:
        w = np.asarray(layer.weight)
        d = np.diag(w)
        off = w[~np.eye(200, dtype=bool)]
        assert np.all(d == d[0]) and 200 <= d[0] <= 254 and d[0] % 2 == 0
        # diagonal share of the input variance: d^2 / (d^2 + n var_off) ~ 0.8
        share = d[0] ** 2 / (d[0] ** 2 + 200 * off.var())
        assert share == pytest.approx(0.8, abs=0.05)
    assert np.asarray(ident.layers[3].weight).shape == (10, 200)
    assert not np.any(np.diag(np.asarray(ident.layers[3].weight)[:, :10]) == 254)
    assert rep.options["identity"] == 0.8


def test_identity_keeps_spike_patterns_through_depth():
    """With identity = 0.8 and calibrated thresholds, layer 6 of a 200-wide chain still carries the
    first hidden layer's spike pattern (neuron i follows neuron i); plain random layers scramble it."""
    from snnhw.core.network import simulate

    x = (np.random.default_rng(2).random((64, 3, 64)) < 0.3).astype(np.float32)
    x = np.concatenate([x, np.zeros((64, 6, 64), np.float32)], axis=1)  # 3 input steps + pipeline fill
    spec = _mlp([64] + [200] * 6)
    corr = {}
    for lam in (0.0, 0.8):
        s, rep = init_spec(spec, "hardware-calibrated", seed=0, calib_input=x, target_rate=0.2, identity=lam)
        assert all(lr.measured_rate == pytest.approx(0.2, abs=0.03) for lr in rep.layers)
        spikes = simulate(s, x).layer_spikes
        first, last = spikes[0].sum(1).flatten().numpy(), spikes[-1].sum(1).flatten().numpy()
        corr[lam] = float(np.corrcoef(first, last)[0, 1])
    assert corr[0.8] > 0.3 and abs(corr[0.0]) < 0.1, corr  # measured: 0.46 vs 0.005


@pytest.mark.parametrize("kw, msg", [
    (dict(method="hardware", identity=1.0), "identity"),
    (dict(method="hardware", identity=-0.1), "identity"),
    (dict(method="kaiming", identity=0.5), "hardware methods"),
])
def test_identity_option_errors(kw, msg):
    method = kw.pop("method")
    with pytest.raises(ValueError, match=msg):
        init_spec(_mlp([8, 16, 16]), method, measure=False, **kw)


@pytest.mark.parametrize("quantized", [True, False])
def test_init_spec_cnn_with_pool(quantized):
    for method in ("kaiming", "micheli", "hardware", "hardware-calibrated"):
        spec, rep = init_spec(_cnn(quantized), method, seed=0, calib_steps=16, calib_batch=4)
        spec.validate()
        assert [l.kind for l in rep.layers] == ["conv", "pool", "conv", "dense"]
        assert rep.layers[0].fan_in == 2 * 9  # conv fan-in C_in kH kW
        pool = spec.layers[1]
        assert pool.weight * 2 ** pool.weight_exp > pool.neuron.vth_mant  # one spike fires


def test_float_inits_quantize_as_predicted_and_fdi_collapses_on_slow_decay():
    """lava-dl N-MNIST-like layer (n = 2312, theta = 1.25 -> vth 80, decays 1024/128): FDI's float sigma_w is
    below one grid step; the report's zero fraction matches erf(step / (2 sqrt 2 sigma))."""
    spec = _mlp([2312, 512], vth=80)
    _, rep = init_spec(spec, "fdi", seed=0, target_rate=0.02, measure=False)
    lr = rep.layers[0]
    assert lr.sigma_over_step < 1.0
    assert lr.zero_fraction > 0.4
    assert lr.zero_fraction == pytest.approx(lr.zero_fraction_predicted, abs=0.03)
    _, hrep = init_spec(spec, "hardware", seed=0, target_rate=0.02, measure=False)
    assert hrep.layers[0].zero_fraction < 0.1


# ---------------------------------------------------------------------------------------------
# one-line errors
# ---------------------------------------------------------------------------------------------
def _one_line(excinfo):
    msg = str(excinfo.value)
    assert msg and "\n" not in msg
    return msg


def test_errors_are_one_line():
    with pytest.raises(ValueError) as e:
        init_spec(_mlp([8, 4]), "xavier")
    assert "unknown init method" in _one_line(e)
    with pytest.raises(ValueError) as e:
        init_tensor(torch.empty(4, 4), "kaiming", fan_in=-3)
    assert "positive integer" in _one_line(e)
    with pytest.raises(ValueError) as e:
        init_tensor(torch.empty(4, 4), "micheli", threshold=-1.0)
    assert "threshold" in _one_line(e)
    bad = _mlp([8, 4])
    bad.layers[0].neuron.v_decay = 5000
    with pytest.raises(ValueError) as e:
        init_spec(bad, "hardware")
    assert "0..4096" in _one_line(e)
    with pytest.raises(ValueError) as e:
        init_spec(_mlp([8, 4]), "hardware", target_rate=1.5)
    _one_line(e)
    with pytest.raises(ValueError) as e:
        init_spec(_mlp([8, 4]), "kaiming", calib_input=np.zeros((2, 3, 5)))
    _one_line(e)
    with pytest.raises(ValueError) as e:
        init_spec(_mlp([8, 4]), "kaiming", bogus=1)
    _one_line(e)
    with pytest.raises(ValueError) as e:
        init_tensor(torch.empty(4, 4), "hardware-calibrated")
    _one_line(e)
