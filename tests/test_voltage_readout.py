"""The voltage readout (recipe ``model.readout = "voltage"``): the output layer is a Loihi CUBA LIF with the
largest legal threshold, which never fires; its mean v decides the class; training runs through the exact
integer v (straight-through) and resumes; the written files reproduce the output v exactly; Lava's v,
read back every step, equals the core's bit for bit (the Lava test skips without Lava)."""
import json

import numpy as np
import pytest
import torch

from snnhw import loihi
from snnhw.backends.lava_runtime import lava_available
from snnhw.core.neuron import CubaParams, cuba_li, cuba_lif_trace
from snnhw.train import build
from snnhw.train.evaluate import predict
from snnhw.train.loop import train
from snnhw.train.pipeline import RunOptions, prepare, run
from snnhw.train.recipe import RecipeError
from snnhw.train.verify import RoundTripMismatch, artifact_roundtrip
from tiny_recipe import TINY

needs_lava = pytest.mark.skipif(not lava_available(), reason="lava-nc is not installed (snnhw[lava], Python 3.10)")


def _voltage_recipe(tmp_path, epochs=2, name="tiny_v.toml", extra=""):
    p = tmp_path / name
    p.write_text(TINY.replace("EPOCHS", str(epochs)).replace("[model]\n", f"[model]\nreadout = \"voltage\"\n{extra}"))
    return str(p)


def _drive(seed=0, B=3, T=12, N=5):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-300, 400, (B, T, N), generator=g).to(torch.float32)


def test_readout_never_fires_and_its_v_is_the_loops():
    a = _drive()
    p = CubaParams(1024, 256, loihi.READOUT_VTH_MANT)
    bias = torch.tensor([0.0, 64.0, -128.0, 640.0, 0.0])
    tr = cuba_li(a, p, bias)
    ref = cuba_lif_trace(a, p, bias)
    assert not tr.s.any() and not ref.s.any()
    assert tr.v.dtype == torch.float32 and torch.equal(tr.v.to(torch.int64), ref.v)
    assert ref.v.abs().max() > 1000  # a real trace, not zeros
    assert loihi.effective_threshold(loihi.READOUT_VTH_MANT) == loihi.V_LIMIT - 63
    # the bound says when a layer's inputs cannot take v near the threshold
    assert loihi.v_bound(400, 640, 1024, 256) < loihi.effective_threshold(loihi.READOUT_VTH_MANT)
    assert loihi.v_bound(1, 0, 1024, 0) == float("inf")


def _triton3() -> bool:
    """triton >= 3 installed (read from its metadata: importing triton 2.3 is left to test_fused_triton)."""
    from importlib import metadata

    try:
        return int(metadata.version("triton").split(".")[0]) >= 3
    except metadata.PackageNotFoundError:
        return False


@pytest.mark.parametrize("kernel", ["reference", "fused", "triton"])
def test_readout_v_is_the_same_on_every_kernel(kernel, monkeypatch):
    """The readout's forward takes whichever exact kernel ``SNNHW_KERNEL`` picks: the same v everywhere."""
    if kernel == "triton" and not _triton3():
        pytest.skip("the Triton interpreter runs on triton >= 3 (the 3.13 lane)")
    a, p = _drive(3, B=4, T=20, N=7), CubaParams(512, 128, loihi.READOUT_VTH_MANT)
    bias = torch.arange(7, dtype=torch.float32) * 64
    monkeypatch.setenv("SNNHW_KERNEL", "reference")
    ref = cuba_lif_trace(a, p, bias)
    monkeypatch.setenv("SNNHW_KERNEL", kernel)
    tr = cuba_li(a, p, bias)
    assert torch.equal(tr.v.to(torch.int64), ref.v) and not tr.s.any()


def test_readout_gradient_is_the_linear_filters():
    """Straight-through on the truncations: d(loss)/d(a, bias) is the float CUBA filter's gradient."""
    a = _drive(1).requires_grad_(True)
    bias = torch.tensor([0.0, 64.0, -128.0, 640.0, 0.0], requires_grad=True)
    p = CubaParams(1024, 256, loihi.READOUT_VTH_MANT)
    w = torch.randn(3, 12, 5, generator=torch.Generator().manual_seed(2))
    (cuba_li(a, p, bias).v * w).sum().backward()
    ga, gb = a.grad.clone(), bias.grad.clone()
    a2, b2 = a.detach().clone().requires_grad_(True), bias.detach().clone().requires_grad_(True)
    alpha, beta = 1 - 1024 / 4096, 1 - 256 / 4096
    u = v = torch.zeros(3, 5)
    vs = []
    for t in range(12):
        u = alpha * u + 64.0 * a2[:, t]
        v = beta * v + u + b2
        vs.append(v)
    (torch.stack(vs, 1) * w).sum().backward()
    torch.testing.assert_close(ga, a2.grad, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(gb, b2.grad, rtol=1e-5, atol=1e-3)


def test_class_decision_is_the_highest_mean_v_ties_lowest_index():
    v = np.array([[[5, 9, 1], [5, -3, 1]],  # means 5, 3, 1 -> 0
                  [[0, 2, 2], [0, 2, 2]],  # tie 1 / 2 -> 1
                  [[-8388607, -1, -2], [-8388607, -1, -2]]]).astype(np.int64)  # all negative -> 1
    assert predict(v, "voltage").tolist() == [0, 1, 1]
    assert predict(v.astype(np.float32), "voltage").tolist() == [0, 1, 1]  # the model's float32 v: the same
    assert predict(np.array([[[0.4, 0.6]], [[0.9, 0.2]]]), "voltage").tolist() == [1, 0]  # float twin: not truncated
    spikes = np.array([[[1, 0], [0, 1]], [[0, 1], [0, 1]]])
    assert predict(spikes).tolist() == predict(spikes, "spikes").tolist() == [0, 1]


def test_bad_readout_is_a_one_line_recipe_error(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text(TINY.replace("EPOCHS", "1").replace("[model]\n", "[model]\nreadout = \"membrane\"\n"))
    with pytest.raises(RecipeError, match="readout") as e:
        prepare(RunOptions(recipe=str(p)))
    assert "\n" not in str(e.value) and "membrane" in str(e.value)
    rec = _voltage_recipe(tmp_path, name="rec.toml")
    p.write_text(open(rec).read().replace('out = 10 }', 'out = 10, recurrent = true }'))
    with pytest.raises(RecipeError, match="non-recurrent dense last layer"):
        prepare(RunOptions(recipe=str(p)))
    p.write_text(open(rec).read().replace("[train]\n", "[train]\nrate_reg_readout = true\n"))
    with pytest.raises(RecipeError, match="rate_reg_readout .* never fires"):
        prepare(RunOptions(recipe=str(p)))


def _train_parts(recipe_path, ckpt, resume=False, on_batch=None):
    s = prepare(RunOptions(recipe=recipe_path))
    torch.manual_seed(0)
    model = build.build_model(s.recipe, s.target, s.input_shape, s.data.n_classes)
    init = {} if resume else build.initialize(model, s.recipe, s.encoder(s.data.x_train[:64], index=np.arange(64)), 0)
    return train(model, s.recipe, s.data, s.encoder, checkpoint_path=str(ckpt), init_report=init, resume=resume,
                 progress=False, on_batch=on_batch, val=s.val)


def test_training_with_a_voltage_readout_learns_and_resumes(tmp_path):
    rp = _voltage_recipe(tmp_path, epochs=3)
    full = _train_parts(rp, tmp_path / "full.pt")
    m = full.model
    assert m.readout == "voltage" and m.layers[-1].vth_mant == loihi.READOUT_VTH_MANT
    assert m.readout_scale > 64  # the calibrated threshold of the output layer, state units
    assert all(h["rates"]["fc2"] == 0.0 for h in full.history)  # never fired in training
    assert full.history[-1]["loss"] < full.history[0]["loss"] and full.history[-1]["val_accuracy"] > 0.2  # learns

    def stop(epoch, batch):
        if epoch == 1 and batch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train_parts(rp, tmp_path / "cut.pt", on_batch=stop)
    resumed = _train_parts(rp, tmp_path / "cut.pt", resume=True)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert "readout_scale" in a and all(torch.equal(a[k], b[k]) for k in a)
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]
    assert full.model.to_spec().to_json() == resumed.model.to_spec().to_json()


@pytest.fixture(scope="module")
def voltage_run(tmp_path_factory):
    """``snnhw train`` of the tiny recipe with a voltage readout (Lava when installed, else the round trip)."""
    tmp = tmp_path_factory.mktemp("vrun")
    outcome = run(RunOptions(recipe=_voltage_recipe(tmp, epochs=1), out=str(tmp / "out"), progress=False),
                  log=lambda m: None)
    return tmp / "out", outcome


def test_artifact_roundtrip_compares_the_output_v_exactly(voltage_run):
    out, _ = voltage_run
    rep = json.loads((out / "report.json").read_text())
    assert rep["readout"] == "voltage" and "mean membrane voltage" in rep["class_decision"]
    assert rep["layers"][-1]["vth_mant"] == loihi.READOUT_VTH_MANT and not rep["layers"][-1]["silent"]
    note = "voltage readout fc2: 0 output spikes on the 24 verification samples"
    assert any(n.startswith(note) for n in rep["notes"])
    inputs = np.load(out / "verify/inputs.npy")
    spikes = np.load(out / "verify/torch_output_spikes.npy")
    v = np.load(out / "verify/torch_output_voltage.npy")
    assert not spikes.any() and v.dtype == np.int64 and len(np.unique(v)) > 50
    labels = np.load(out / "verify/labels.npy")
    assert rep["accuracy"]["quantized"] > 0.15 and np.mean(predict(v, "voltage") == labels) > 0.15  # chance: 0.1
    rt = artifact_roundtrip(str(out), ["model.net", "model.nir"], inputs, spikes, v)
    assert all(r.exact and r.output_voltage == 1.0 and r.identical_samples == len(inputs) for r in rt)
    from snnhw.io.nir import read_nir_spec

    assert read_nir_spec(str(out / "model.nir")).metadata["readout"] == "voltage"
    bad = v.copy()
    bad[3, 5, 2] += 1  # one v value off by one state unit is a mismatch
    with pytest.raises(RoundTripMismatch, match="model.net .* on 1/24 samples"):
        artifact_roundtrip(str(out), ["model.net"], inputs, spikes, bad)


@pytest.mark.lava
@needs_lava
def test_lava_reads_back_the_cores_v_bit_for_bit(voltage_run, capsys):
    out, outcome = voltage_run
    rep = json.loads((out / "report.json").read_text())
    ag = rep["agreement"]
    assert rep["verification"] == "lava-cpu-sim"
    assert ag["output_voltage"] == 1.0 and ag["identical_samples"] == ag["samples"] == 24 and ag["predictions"] == 1.0
    tv, lv = np.load(out / "verify/torch_output_voltage.npy"), np.load(out / "verify/lava_output_voltage.npy")
    assert tv.shape == lv.shape == (24, 8, 10) and np.array_equal(tv, lv) and len(np.unique(lv)) > 50
    labels = np.load(out / "verify/labels.npy")
    assert rep["accuracy"]["lava"] == pytest.approx(np.mean(predict(lv, "voltage") == labels))
    from snnhw.commands.train import verification_line

    line = verification_line(outcome.report)
    assert "voltage readout: 24/24 output v traces identical, output-voltage agreement 1.000000" in line
    assert "output-voltage agreement **1.000000**" in (out / "report.md").read_text()
    from snnhw.backends.netx_lava import run_netx_lava

    # lava-dl's own netx loader takes model.net as an ordinary CUBA network: the readout stays silent there too
    got = run_netx_lava(str(out / "model.net"), np.load(out / "verify/inputs.npy")[:4])
    assert got.shape == (4, 8, 10) and not got.any()
    from snnhw.cli import main

    capsys.readouterr()
    assert main(["verify", str(out), "--samples", "5"]) == 0  # snnhw verify compares the v again
    text = capsys.readouterr().out
    assert "voltage readout: output-voltage agreement 1.000000 (identical v traces 5/5)" in text
    assert "torch_output_voltage.npy: yes" in text
