"""snnhw propagate: the study's exactness on loihi2 semantics, the paper's acceptance numbers, the CLI."""
import json
import os

import numpy as np
import pytest
import torch

from snnhw.cli import main
from snnhw.core.network import simulate
from snnhw.init.propagate import (PropagateConfig, _loihi_neuron, _loihi_rates_vth, _loihi_synapse,
                                  propagate)
from snnhw.spec import Dense, Neuron, NetworkSpec
from snnhw.report.plots import propagation_plots


def test_loihi2_chain_equals_simulate_with_the_pipeline_delay_factored_out():
    """propagate's loihi2 forward (dense_accumulate + cuba_lif_trace, no inter-layer delay) equals the
    spec simulator (Lava's pipeline, one step of delay per Dense) shifted by the layer index."""
    g = torch.Generator().manual_seed(0)
    R, B, T, n, L = 2, 3, 12, 24, 3
    i_decay, v_decay = 1024, 2048
    s0 = (torch.rand(R, B, T, n, generator=g) < 0.3).to(torch.int64)
    Ws = [(torch.randint(-40, 40, (R, n, n), generator=g) * 2).to(torch.float32) for _ in range(L)]
    exps, vths = [0, 1, -1], [60, 150, 40]
    s = s0
    ours = []
    for l in range(L):
        a = _loihi_synapse(s, Ws[l], [exps[l]] * R)
        s, vpre = _loihi_neuron(a, i_decay, v_decay, [vths[l]] * R)
        ours.append(s)
        # the calibration search's vectorized rate equals the measured rate
        r = _loihi_rates_vth(a, i_decay, v_decay, torch.tensor([vths[l]] * R))
        assert torch.allclose(r, s.float().mean(dim=(1, 2, 3)))
        # pre-reset v is above threshold exactly where the neuron spiked
        assert torch.equal(vpre > (vths[l] << 6), s.bool())
    for r in range(R):
        spec = NetworkSpec((n,), [Dense(f"l{l}", Ws[l][r].numpy().astype(np.int64),
                                        Neuron(i_decay, v_decay, vths[l]), weight_exp=exps[l]) for l in range(L)])
        x = torch.cat([s0[r], torch.zeros(B, L + 1, n, dtype=torch.int64)], dim=1)
        sim = simulate(spec, x)
        for l in range(L):
            assert torch.equal(sim.layer_spikes[l][:, l + 1:l + 1 + T].to(torch.int64), ours[l][r])


def test_json_schema_and_plots(tmp_path):
    data = propagate(layers=4, widths=[60], steps=3, repeats=2, batch=2,
                     inits=["kaiming", "micheli", "hardware-calibrated"], semantics="float-hard", seed=1)
    json.dumps(data)
    cfg = data["config"]
    for k in ("layers", "widths", "threshold", "beta", "alpha", "i_decay", "v_decay", "steps", "inits",
              "semantics", "repeats", "seed", "input_rate", "target_rate", "reset"):
        assert k in cfg
    for key in ("kaiming", "micheli", "hardware-calibrated"):
        r = data["results"][key]
        for k in ("var_u", "var_u_std", "spike_count", "spike_count_std", "var_u_ratio"):
            assert len(r[k]) == 4
        assert np.array(r["var_u_per_step"]).shape == (4, 3)
        assert np.array(r["spike_count_per_step"]).shape == (4, 3)
        assert np.allclose(np.mean(r["spike_count_per_step"], axis=1), r["spike_count"])
    paths = propagation_plots(data, str(tmp_path))
    assert {os.path.basename(p) for p in paths} == {"var_u.png", "spike_count.png", "spike_count_per_step.png"}
    again = propagate(layers=4, widths=[60], steps=3, repeats=2, batch=2, inits=["micheli"],
                      semantics="float-hard", seed=1)
    assert again["results"]["micheli"]["spike_count"] == data["results"]["micheli"]["spike_count"]


def test_fig3_short_micheli_conserves_variance_kaiming_dies():
    """Fig. 3 setup (float soft reset, T = 1, theta = 1, n = 1000), 20 layers x 5 repeats (the full 100 x 20
    is the slow test below)."""
    d = propagate(layers=20, widths=[1000], steps=1, repeats=5, batch=10, inits=["micheli", "kaiming", "hardware"],
                  semantics="float-soft", threshold=1.0)
    h = d["results"]["hardware"]["spike_count"]
    assert 0.5 <= h[-1] / h[0] <= 2.0  # the finite-T hardware design holds activity at T = 1 too
    ratio = np.array(d["results"]["micheli"]["var_u_ratio"])
    assert np.all((ratio >= 0.75) & (ratio <= 1.25)), ratio
    k = d["results"]["kaiming"]["spike_count"]
    assert k[9] < 0.01 * k[0]


@pytest.mark.slow
def test_fig3_full_and_threshold_sweep(capsys):
    """Acceptance: 100 layers x 1000 neurons, 20 repeats, T = 1: micheli's mean Var[u_l]/Var[u_1] in
    [0.75, 1.25] at every layer for theta in {0.25, 0.5, 0.75, 1.0}; Kaiming's layer-10 spike count < 1 %
    of layer 1's."""
    for theta in (0.25, 0.5, 0.75, 1.0):
        inits = ["micheli", "kaiming"] if theta == 1.0 else ["micheli"]
        d = propagate(layers=100, widths=[1000], steps=1, repeats=20, batch=10, inits=inits,
                      semantics="float-soft", threshold=theta)
        ratio = np.array(d["results"]["micheli"]["var_u_ratio"])
        with capsys.disabled():
            print(f"\ntheta={theta}: micheli Var[u_l]/Var[u_1] in [{ratio.min():.3f}, {ratio.max():.3f}] over 100 layers")
        assert np.all((ratio >= 0.75) & (ratio <= 1.25)), (theta, ratio.min(), ratio.max())
        if theta == 1.0:
            k = d["results"]["kaiming"]["spike_count"]
            with capsys.disabled():
                print(f"kaiming spike count L1 {k[0]:.4f}, L10 {k[9]:.6f}")
            assert k[9] < 0.01 * k[0]


@pytest.mark.slow
def test_loihi2_hardware_init_keeps_layer_100_within_factor_2(capsys):
    """Acceptance: Loihi 2 semantics (8-bit weights, i_decay 4096, v_decay 2048, hard reset, exact
    fixed-point forward), n = 1000, T = 20, 100 layers: layer 100's spike count within x2 of layer 1's."""
    d = propagate(layers=100, widths=[1000], steps=20, repeats=3, batch=4, inits=["hardware", "hardware-calibrated"],
                  semantics="loihi2")
    for key in ("hardware", "hardware-calibrated"):
        sc = d["results"][key]["spike_count"]
        with capsys.disabled():
            print(f"\nloihi2 {key}: spike count L1 {sc[0]:.4f}, L100 {sc[-1]:.4f}, ratio {sc[-1] / sc[0]:.3f}")
        assert 0.5 <= sc[-1] / sc[0] <= 2.0, (key, sc[0], sc[-1])


def test_config_errors_are_one_line():
    for kw, text in ((dict(widths=[-5]), "width"), (dict(threshold=-0.5), "threshold"),
                     (dict(inits=["nope"]), "unknown init"), (dict(voltage_decay=4097), "0..4096"),
                     (dict(current_decay=-1), "0..4096"), (dict(semantics="float"), "semantics"),
                     (dict(layers=0), "layers"), (dict(beta=0.5, voltage_decay=100), "either")):
        with pytest.raises(ValueError) as e:
            PropagateConfig(**kw).resolve()
        assert text in str(e.value) and "\n" not in str(e.value)


def test_cli(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["propagate", "--layers", "3", "--width", "50", "--steps", "4", "--repeats", "2", "--batch", "2",
               "--inits", "hardware,fdi", "--semantics", "loihi2", "--out", str(out), "--no-progress"])
    assert rc == 0
    data = json.loads((out / "propagation.json").read_text())
    assert data["config"]["i_decay"] == 4096 and data["config"]["v_decay"] == 2048
    assert data["results"]["hardware"]["vth_mant"][0] > 0
    assert (out / "spike_count.png").stat().st_size > 1000
    for argv, text in ((["--width", "-5"], "width"), (["--inits", "xyz"], "unknown init"),
                       (["--threshold", "-1"], "threshold"), (["--voltage-decay", "5000"], "0..4096")):
        rc = main(["propagate", "--out", str(tmp_path / "bad")] + argv)
        err = capsys.readouterr().err.strip()
        assert rc == 2 and text in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_finite_size_effect(capsys):
    """Acceptance (Fig. 4): with Micheli's init, theta = 1, T = 1, n = 100 loses activity in deep layers,
    n = 1000 does not."""
    d = propagate(layers=100, widths=[100, 1000], steps=1, repeats=20, batch=10, inits=["micheli"],
                  semantics="float-soft", threshold=1.0)
    small, large = d["results"]["micheli@n100"]["spike_count"], d["results"]["micheli@n1000"]["spike_count"]
    with capsys.disabled():
        print(f"\nfinite size: n=100 L100/L1 = {small[-1] / small[0]:.3f}; n=1000 L100/L1 = {large[-1] / large[0]:.3f}")
    assert small[-1] < 0.25 * small[0]
    assert 0.75 <= large[-1] / large[0] <= 1.25


def test_loihi2_propagate_fused_equals_reference_kernel(monkeypatch):
    """The loihi2 study runs on the core's dispatcher (snnhw.core.neuron.exact_run): with one threshold
    per repeat (the calibration's search and its final run), the fused kernel gives the same spikes and
    pre-reset voltages as the reference loop, and the whole study the same numbers (apart from times)."""
    g = torch.Generator().manual_seed(4)
    a = torch.randint(-300, 900, (3, 2, 15, 17), generator=g)
    out = {}
    for kernel in ("fused", "reference"):
        monkeypatch.setenv("SNNHW_KERNEL", kernel)
        s, vpre = _loihi_neuron(a, 1024, 2048, [3, 40, 90])
        d = propagate(layers=4, widths=[64], steps=8, repeats=3, batch=2, inits=["hardware-calibrated"],
                      semantics="loihi2")
        res = {k: {f: x for f, x in v.items() if "seconds" not in f} for k, v in d["results"].items()}
        out[kernel] = (s, vpre, res)
    assert 0 < float(out["fused"][0].float().mean()) < 1
    assert torch.equal(out["fused"][0], out["reference"][0]) and torch.equal(out["fused"][1], out["reference"][1])
    assert json.dumps(out["fused"][2], sort_keys=True) == json.dumps(out["reference"][2], sort_keys=True)
