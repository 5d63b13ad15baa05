"""snnhw train end to end (tiny recipe): run directory, Lava verification, lava-dl netx loading model.net,
same seed -> same report, resume after an interruption -> same weights, DDP == one process. The tests that
need Lava skip without it (the run without Lava is tests/test_without_lava.py)."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from snnhw.backends.lava_runtime import lava_available
from snnhw.targets import load_target
from snnhw.train import build
from snnhw.train.loop import train
from snnhw.train.pipeline import RunOptions, prepare, run
from tiny_recipe import tiny_recipe

needs_lava = pytest.mark.skipif(not lava_available(), reason="lava-nc is not installed (snnhw[lava], Python 3.10)")



def _recipe(tmp_path, epochs=2, name="tiny.toml"):
    return tiny_recipe(tmp_path, epochs, name)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    outcome = run(RunOptions(recipe=_recipe(tmp), out=str(tmp / "out"), progress=False), log=lambda m: None)
    return tmp / "out", outcome


@pytest.mark.lava
@needs_lava
def test_run_directory_and_report(tiny_run):
    out, outcome = tiny_run
    assert outcome.out_dir == str(out)
    for f in ["checkpoint.pt", "spec.json", "model.net", "report.json", "report.md", "verify/inputs.npy",
              "verify/labels.npy", "verify/torch_output_spikes.npy", "verify/lava_output_spikes.npy",
              "plots/training_curves.png", "plots/firing_rates.png", "plots/spike_raster.png",
              "plots/weight_histograms.png"]:
        assert (out / f).exists(), f
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())  # no work directory left
    rep = json.loads((out / "report.json").read_text())
    for key in ["target", "seed", "recipe", "accuracy", "agreement", "layers", "synops_per_inference",
                "energy_estimate_uJ", "packages", "class_decision"]:
        assert key in rep
    assert set(rep["accuracy"]) == {"float", "quantized", "lava"}
    assert rep["agreement"]["output_spikes"] == 1.0 and rep["agreement"]["predictions"] == 1.0
    assert rep["agreement"]["samples"] == 24
    assert rep["verification"] == "lava-cpu-sim" and rep["verification_note"] == ""
    assert "artifact_roundtrip" not in rep
    from snnhw.commands.train import verification_line

    assert verification_line(outcome.report) == (
        "verification: lava-cpu-sim — snnhw core vs Lava's CPU simulator (fixed_pt) on 24 samples: 24/24 identical, "
        "output-spike agreement 1.000000, prediction agreement 1.0000")
    assert rep == json.loads(json.dumps(outcome.report.to_dict()))  # the schema is what report.json holds
    inputs = np.load(out / "verify/inputs.npy")
    torch_out = np.load(out / "verify/torch_output_spikes.npy")
    lava_out = np.load(out / "verify/lava_output_spikes.npy")
    assert inputs.shape == (24, 8, 64) and set(np.unique(inputs)) <= {0, 1}
    assert torch_out.shape == lava_out.shape == (24, 8, 10) and np.array_equal(torch_out, lava_out)
    labels = np.load(out / "verify/labels.npy")
    pred = np.argmax(torch_out.sum(1), axis=1)
    assert rep["agreement"]["torch_accuracy_on_samples"] == pytest.approx(np.mean(pred == labels))
    assert rep["accuracy"]["lava"] == pytest.approx(np.mean(pred == labels))
    for l in rep["layers"]:
        assert set(l["firing_rate"]) == {"float", "quantized", "lava"}
        assert l["firing_rate"]["quantized"] == pytest.approx(l["firing_rate"]["lava"])
    e = rep["energy_estimate_uJ"]
    t = load_target("loihi2")
    assert e["value"] == pytest.approx((rep["synops_per_inference"] * t.energy.synop_pJ
                                        + e["neuron_updates"] * t.energy.neuron_update_pJ) * 1e-6)
    assert "# snnhw run: tiny on loihi2" in (out / "report.md").read_text()


@pytest.mark.lava
@needs_lava
def test_lava_dl_netx_loads_model_net(tiny_run):
    """lava-dl's own netx loader (not snnhw's Lava builder) reproduces the stored torch output."""
    from snnhw.backends.netx_lava import run_netx_lava

    out, _ = tiny_run
    inputs = np.load(out / "verify/inputs.npy")[:4]
    expect = np.load(out / "verify/torch_output_spikes.npy")[:4]
    got = run_netx_lava(str(out / "model.net"), inputs)
    assert expect.sum() > 0
    assert np.array_equal(got, expect)


@pytest.mark.lava
@needs_lava
def test_verify_command(tiny_run, capsys):
    from snnhw.cli import main

    out, _ = tiny_run
    assert main(["verify", str(out), "--samples", "5"]) == 0
    text = capsys.readouterr().out
    assert "5 samples" in text and "agreement 1.000000" in text


@pytest.mark.lava
@needs_lava
def test_same_seed_same_report(tiny_run, tmp_path):
    out1, _ = tiny_run
    run(RunOptions(recipe=_recipe(tmp_path), out=str(tmp_path / "b"), progress=False), log=lambda m: None)
    a = json.loads((out1 / "report.json").read_text())
    b = json.loads((tmp_path / "b" / "report.json").read_text())
    a.pop("times"), b.pop("times")
    assert a == b
    sa = torch.load(out1 / "checkpoint.pt", weights_only=False)["model"]
    sb = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def _train_parts(recipe_path, ckpt, resume=False, on_batch=None):
    s = prepare(RunOptions(recipe=recipe_path))
    recipe, target, data, enc, shape = s.recipe, s.target, s.data, s.encoder, s.input_shape
    torch.manual_seed(0)
    model = build.build_model(recipe, target, shape, data.n_classes)
    init = {}
    if not resume:
        calib = enc(data.x_train[:64], index=np.arange(64))
        init = build.initialize(model, recipe, calib, 0)
    return train(model, recipe, data, enc, checkpoint_path=str(ckpt), init_report=init, resume=resume,
                 progress=False, on_batch=on_batch, val=s.val)


def test_label_smoothing_reaches_the_training_loss(tmp_path):
    """``train.label_smoothing`` changes the objective (other weights after the same batches); 0 is the
    plain cross-entropy (the same weights as a recipe that does not name it)."""
    rp = _recipe(tmp_path, epochs=1)
    text = open(rp).read()
    runs = {}
    for ls in (None, 0.0, 0.3):
        path = tmp_path / f"ls{ls}.toml"
        path.write_text(text if ls is None else text.replace("[train]\n", f"[train]\nlabel_smoothing = {ls}\n"))
        runs[ls] = _train_parts(str(path), tmp_path / f"ls{ls}.pt").model.state_dict()
    assert all(torch.equal(runs[None][k], runs[0.0][k]) for k in runs[None])
    assert not all(torch.equal(runs[None][k], runs[0.3][k]) for k in runs[None])


def test_weight_average_is_what_is_selected_and_resumes_exactly(tmp_path):
    """``train.ema``: the exported weights are the running average (not the raw weights of any epoch);
    its validation scores are the history's; an interrupted run resumes to the same average."""
    from snnhw.train.loop import _Average

    rp = tmp_path / "ema.toml"
    rp.write_text(open(_recipe(tmp_path, epochs=3)).read().replace("[train]\n", "[train]\nema = 0.9\nselect = \"last\"\n"))
    full = _train_parts(str(rp), tmp_path / "full.pt")
    raw = torch.load(tmp_path / "full.pt", weights_only=False)
    avg = raw["average"]
    assert avg["steps"] > 0
    a = full.model.state_dict()
    assert all(torch.equal(a[k], avg["model"][k]) for k in a)  # the run ends with the average
    plain = _train_parts(_recipe(tmp_path, epochs=3, name="plain.toml"), tmp_path / "plain.pt")
    assert not all(torch.equal(a[k], plain.model.state_dict()[k]) for k in a)

    def stop(epoch, batch):
        if epoch == 1 and batch == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train_parts(str(rp), tmp_path / "cut.pt", on_batch=stop)
    resumed = _train_parts(str(rp), tmp_path / "cut.pt", resume=True)
    b = resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["val_accuracy"] for h in full.history] == [h["val_accuracy"] for h in resumed.history]

    # the average itself: a warm-up, then decay d
    net = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(net.weight)
    av = _Average(net, 0.5)
    with torch.no_grad():
        net.weight.fill_(1.0)
    av.update(net)  # d_1 = min(0.5, 2/11)
    assert float(av.model.weight) == pytest.approx(9 / 11)


def test_resume_after_interruption_matches_uninterrupted(tmp_path):
    rp = _recipe(tmp_path, epochs=3)
    full = _train_parts(rp, tmp_path / "full.pt")

    def stop(epoch, batch):
        if epoch == 1 and batch == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train_parts(rp, tmp_path / "cut.pt", on_batch=stop)
    assert torch.load(tmp_path / "cut.pt", weights_only=False)["epoch"] == 1
    resumed = _train_parts(rp, tmp_path / "cut.pt", resume=True)
    assert resumed.resumed_from_epoch == 1
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]
    assert [h["val_accuracy"] for h in full.history] == [h["val_accuracy"] for h in resumed.history]
    assert full.selected_epoch == resumed.selected_epoch >= 1
    assert full.model.to_spec().to_json() == resumed.model.to_spec().to_json()


def test_validation_split_is_carved_from_training_and_stratified():
    from snnhw.data import load_dataset
    from snnhw.train.evaluate import carve_validation

    full = load_dataset("digits")
    train_part, val = carve_validation(full, 0.1, 0)
    assert len(train_part.y_train) + len(val.data.y_test) == len(full.y_train)
    assert np.array_equal(train_part.x_test, full.x_test)  # the test split is untouched
    rows = lambda x: {r.tobytes() for r in x}
    assert rows(train_part.x_train) | rows(val.data.x_test) == rows(full.x_train)
    assert np.array_equal(np.bincount(val.data.y_test), np.round(np.bincount(full.y_train) * 0.1).astype(int))
    assert val.offset == len(train_part.y_train) + len(full.y_test)  # encoder indices after the test split
    again, val2 = carve_validation(full, 0.1, 0)
    assert np.array_equal(val.data.y_test, val2.data.y_test) and np.array_equal(again.y_train, train_part.y_train)
    assert carve_validation(full, 0.0, 0) == (full, None)


def test_validation_folds_are_disjoint_and_cover_the_training_split():
    from snnhw.data import load_dataset
    from snnhw.data.datasets import n_folds
    from snnhw.train.evaluate import carve_validation

    full = load_dataset("digits")
    rows = lambda x: {r.tobytes() for r in x}
    assert n_folds(0.1) == 10 and n_folds(0.2) == 5
    folds = [carve_validation(full, 0.2, 0, k) for k in range(5)]
    assert np.array_equal(folds[0][1].data.y_test, carve_validation(full, 0.2, 0)[1].data.y_test)  # fold 0 = plain
    held = [rows(v.data.x_test) for _, v in folds]
    assert all(not (held[i] & held[j]) for i in range(5) for j in range(i + 1, 5))
    assert set().union(*held) == rows(full.x_train)  # the last fold takes the remainder: every sample once
    for train_part, val in folds:
        assert rows(train_part.x_train) | rows(val.data.x_test) == rows(full.x_train)
        assert np.array_equal(train_part.x_test, full.x_test)


def test_a_validation_fold_out_of_range_is_a_one_line_error(tmp_path):
    from snnhw.train.pipeline import RunOptions, prepare
    from snnhw.train.recipe import RecipeError

    recipe = tmp_path / "r.toml"
    recipe.write_text(open(os.path.join(os.path.dirname(__file__), "..", "models", "digits_mlp.toml")).read()
                      .replace("[data]", "[data]\nval_fold = 10"))
    with pytest.raises(RecipeError, match=r"data.val_fold 10: val_fraction 0.1 gives folds 0..9"):
        prepare(RunOptions(recipe=str(recipe)))


def test_selection_keeps_the_best_validation_epoch():
    from snnhw.train.loop import _Selection

    net = torch.nn.Linear(2, 2)
    sel = _Selection()
    sel.update({"epoch": 1, "val_accuracy": 0.5, "val_loss": 1.0}, net)
    best = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net.weight += 1.0
    sel.update({"epoch": 2, "val_accuracy": 0.4, "val_loss": 0.1}, net)  # worse accuracy: not kept
    sel.update({"epoch": 3, "val_accuracy": 0.5, "val_loss": 1.0}, net)  # tie, same loss: the earlier stays
    assert sel.epoch == 1 and all(torch.equal(sel.state[k], best[k]) for k in best)
    sel.update({"epoch": 4, "val_accuracy": 0.5, "val_loss": 0.9}, net)  # tie, lower loss: kept
    assert sel.epoch == 4 and torch.equal(sel.state["weight"], net.weight)
    last = _Selection()
    last.update({"epoch": 7, "val_accuracy": None, "val_loss": None}, net)
    assert last.epoch == 7 and last.state is None
    by_loss = _Selection(rule="val_loss")
    by_loss.update({"epoch": 1, "val_accuracy": 0.9, "val_loss": 0.5}, net)
    by_loss.update({"epoch": 2, "val_accuracy": 0.95, "val_loss": 0.6}, net)  # better accuracy, worse loss
    assert by_loss.epoch == 1
    by_last = _Selection(rule="last")
    for e in (1, 2):
        by_last.update({"epoch": e, "val_accuracy": 1.0 / e, "val_loss": float(e)}, net)
    assert by_last.epoch == 2 and by_last.state is None


@pytest.mark.lava
@needs_lava
def test_seeds_benchmark_rows_and_summary(tiny_run):
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks", "seeds.py")
    spec = importlib.util.spec_from_file_location("seeds_bench", path)
    seeds = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seeds)
    out, outcome = tiny_run
    rep = json.loads((out / "report.json").read_text())
    row = seeds.seed_row(rep)
    sel = rep["training"]["selected_epoch"]
    assert row["val"] == rep["training"]["history"][sel - 1]["val_accuracy"] and row["selected_epoch"] == sel
    assert row["quantized"] == rep["accuracy"]["quantized"] and row["agreement"] == 1.0
    rows = [dict(row, seed=0, quantized=0.90), dict(row, seed=1, quantized=0.94)]
    summ = seeds.summarize(rows)
    assert summ["quantized"]["mean"] == pytest.approx(0.92)
    assert summ["quantized"]["std"] == pytest.approx(np.std([0.90, 0.94], ddof=1))
    assert summ["agreement"] == {"mean": 1.0, "std": 0.0, "min": 1.0, "max": 1.0}
    md = seeds.markdown("tiny", "loihi2", rows, summ)
    assert "| **mean ± std** | | " in md and "92.00 ± 2.83 %" in md
    assert seeds.summarize([dict(row, lava=None)])["lava"] is None


def test_cv_benchmark_pools_folds_without_test_figures_and_resumes(tmp_path, capsys):
    """``benchmarks/cv.py``: one run per (variant, fold, seed), validation figures only, pooled by size;
    a second call with the same ``--jsonl`` trains nothing."""
    import importlib.util
    import sys as _sys

    bench = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")
    _sys.path.insert(0, bench)
    try:
        spec = importlib.util.spec_from_file_location("cv_bench", os.path.join(bench, "cv.py"))
        cv = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cv)
    finally:
        _sys.path.remove(bench)
    assert cv.parse_variant('a:train.lr=0.1;model.readout="voltage"') == (
        "a", {"train.lr": 0.1, "model.readout": "voltage"})
    rp, jl, md = _recipe(tmp_path, epochs=1), tmp_path / "cv.jsonl", tmp_path / "cv.md"
    args = [rp, "--folds", "2", "--variant", "ls:train.label_smoothing=0.1", "--jsonl", str(jl), "--md", str(md)]
    assert cv.main(args) == 0
    rows = [json.loads(line) for line in jl.read_text().splitlines()]
    assert sorted((r["variant"], r["fold"]) for r in rows) == [("ls", 0), ("ls", 1), ("recipe", 0), ("recipe", 1)]
    assert not any("test" in k for r in rows for k in r)
    assert len({r["samples"] for r in rows}) == 1 and rows[0]["samples"] > 0
    summ = cv.summarize(rows)
    for name in ("recipe", "ls"):
        mine = [r for r in rows if r["variant"] == name]
        assert summ[name]["val_last"] == pytest.approx(np.mean([r["val_last"] for r in mine]))
        assert summ[name]["samples"] == sum(r["samples"] for r in mine)
    before = jl.read_text()
    capsys.readouterr()
    assert cv.main(args) == 0
    assert jl.read_text() == before and "{" not in capsys.readouterr().out.split("|")[0]  # no new run
    assert "| recipe |" in md.read_text() and "| ls |" in md.read_text()


def test_shift_images_moves_each_image_by_its_offset():
    from snnhw.train.loop import shift_images

    x = np.arange(1, 1 + 3 * 16, dtype=np.float32).reshape(3, 16)
    out = shift_images(x, (1, 4, 4), 1, np.random.default_rng(5))
    dy, dx = np.random.default_rng(5).integers(-1, 2, size=(2, 3))
    for k in range(3):
        img, got = x[k].reshape(4, 4), out[k].reshape(4, 4)
        for i in range(4):
            for j in range(4):
                si, sj = i - dy[k], j - dx[k]
                want = img[si, sj] if 0 <= si < 4 and 0 <= sj < 4 else 0.0
                assert got[i, j] == want
    assert not np.array_equal(out, x)


def test_augment_shift_needs_images(tmp_path):
    from snnhw.errors import InputError

    rp = _recipe(tmp_path, epochs=1)
    s = prepare(RunOptions(recipe=rp))
    recipe = s.recipe.with_overrides({"train.augment_shift": 1})
    series = dataclasses.replace(s.data, kind="series", feature_shape=(64,))
    model = build.build_model(recipe, s.target, s.input_shape, s.data.n_classes)
    with pytest.raises(InputError, match="augment_shift needs image data"):
        train(model, recipe, series, s.encoder, checkpoint_path=str(tmp_path / "a.pt"), progress=False)


def test_run_exports_the_selected_epoch(tmp_path):
    """The trained model is the selected epoch's: its validation accuracy is that epoch's record, and
    that epoch has the best validation accuracy of the run."""
    from snnhw.train.evaluate import evaluate

    rp = _recipe(tmp_path, epochs=4)
    res = _train_parts(rp, tmp_path / "sel.pt")
    s = prepare(RunOptions(recipe=rp))
    accs = [h["val_accuracy"] for h in res.history]
    assert len(s.val.data.y_test) == 143 and all(a is not None for a in accs)
    assert accs[res.selected_epoch - 1] == max(accs)
    ev = evaluate(res.model, s.val.data, s.encoder, offset=s.val.offset, logit_scale=0.5)
    assert ev["accuracy"] == accs[res.selected_epoch - 1]
    assert ev["loss"] == pytest.approx(res.history[res.selected_epoch - 1]["val_loss"])
    assert torch.load(tmp_path / "sel.pt", weights_only=False)["selection"]["epoch"] == res.selected_epoch


@pytest.mark.slow
def test_cli_kill_and_resume(tmp_path):
    """A real SIGKILL of `snnhw train` mid-run, then --resume: same final weights as an uninterrupted run."""
    rp = _recipe(tmp_path, epochs=6)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cli = [sys.executable, "-m", "snnhw.cli", "train", rp, "--no-progress", "--verify-samples", "4"]
    ref = subprocess.run(cli + ["--out", str(tmp_path / "ref")], env=env, capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "cut"
    work = tmp_path / ".cut.partial" / "checkpoint.pt"
    p = subprocess.Popen(cli + ["--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 300:
        if work.exists() and torch.load(work, weights_only=False)["epoch"] >= 2:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not out.exists()
    res = subprocess.run(cli + ["--out", str(out), "--resume"], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    a = torch.load(tmp_path / "ref" / "checkpoint.pt", weights_only=False)
    b = torch.load(out / "checkpoint.pt", weights_only=False)
    assert a["model"].keys() == b["model"].keys()  # parameters and the per-layer constants (buffers)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


DDP_SCRIPT = """
import sys, numpy as np, torch
torch.set_num_threads(1)
sys.path.insert(0, {root!r})
from test_train import _train_parts
res = _train_parts({recipe!r}, {ckpt!r})
import torch.distributed as dist
if not dist.is_initialized() or dist.get_rank() == 0:
    torch.save(res.model.state_dict(), {out!r})
"""


@pytest.mark.slow
def test_ddp_two_processes_equal_one(tmp_path):
    rp = _recipe(tmp_path, epochs=2)
    root = os.path.dirname(os.path.abspath(__file__))
    outs = {}
    for n in (1, 2):
        script = tmp_path / f"ddp{n}.py"
        outs[n] = tmp_path / f"w{n}.pt"
        script.write_text(DDP_SCRIPT.format(root=root, recipe=rp, ckpt=str(tmp_path / f"c{n}.pt"), out=str(outs[n])))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", str(script)]
        r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
        assert r.returncode == 0, r.stderr[-2000:]
    a, b = torch.load(outs[1]), torch.load(outs[2])
    for k in a:
        # same global batch: identical up to float summation order of the gradient all-reduce
        assert torch.allclose(a[k], b[k], atol=1e-3, rtol=1e-4), k


def test_float_target_run(tmp_path):
    run(RunOptions(recipe=_recipe(tmp_path, epochs=1), target="float", out=str(tmp_path / "f"), progress=False),
            log=lambda m: None)
    out = tmp_path / "f"
    rep = json.loads((out / "report.json").read_text())
    assert rep["target"] == "float" and rep["accuracy"]["quantized"] is None and rep["accuracy"]["lava"] is None
    assert rep["accuracy"]["float"] > 0.15 and rep["agreement"] is None and rep["verification"] is None
    assert not (out / "model.net").exists() and (out / "verify/inputs.npy").exists()
    assert any("model.net not written" in n for n in rep["notes"])
    from snnhw.spec import NetworkSpec

    spec = NetworkSpec.from_json((out / "spec.json").read_text())
    assert not spec.quantized and any(np.any(np.asarray(l.weight) % 1 != 0) for l in spec.neuron_layers())


def test_verification_names():
    """report.json's ``verification`` for each backend name a Lava run returns."""
    from snnhw.report.schema import VERIFICATIONS
    from snnhw.train.verify import verification_name

    assert [verification_name(b) for b in ("lava-cpu-sim", "loihi2", "lava-dl-netx-cpu-sim")] == [
        "lava-cpu-sim", "loihi2-hw", "lava-dl-netx-cpu-sim"]
    assert set(VERIFICATIONS) == {"lava-cpu-sim", "loihi2-hw", "lava-dl-netx-cpu-sim", "artifact-roundtrip"}


def test_readout_lr_scales_only_the_output_layer(tmp_path):
    from snnhw.train.loop import param_groups

    s = prepare(RunOptions(recipe=_recipe(tmp_path)))
    model = build.build_model(s.recipe, s.target, s.input_shape, s.data.n_classes)
    build.initialize(model, s.recipe, s.encoder(s.data.x_train[:32], index=np.arange(32)), 0)
    base = {g["name"]: g["lr"] for g in param_groups(model, 0.01)}
    fast = {g["name"]: g["lr"] for g in param_groups(model, 0.01, readout_lr=5.0)}
    out = {n for n, _ in model.layers[-1].named_parameters(prefix=f"layers.{len(model.layers) - 1}")}
    assert out and set(base) == set(fast)
    for name in base:
        assert fast[name] == pytest.approx(base[name] * (5.0 if name in out else 1.0))


@pytest.mark.slow
def test_deep_mlp_hardware_init_active_kaiming_silent():
    """digits_deep_mlp (10 x 600, T=3): the hardware-aware init leaves every layer active; Kaiming's
    init, mapped to the 8-bit grid, silences the deep layers (reported, not tuned away)."""
    from snnhw.train.evaluate import evaluate

    rates = {}
    for method in ("hardware-calibrated", "kaiming"):
        s = prepare(RunOptions(recipe="digits_deep_mlp", init=method))
        torch.manual_seed(0)
        model = build.build_model(s.recipe, s.target, s.input_shape, s.data.n_classes)
        calib = s.encoder(s.data.x_train[:128], index=np.arange(128))
        build.initialize(model, s.recipe, calib, 0)
        rates[method] = evaluate(model, s.data, s.encoder, n=64)["rates"]
    assert all(r > 0 for r in rates["hardware-calibrated"]), rates
    assert rates["kaiming"][-1] == 0 and any(r == 0 for r in rates["kaiming"][:-1]), rates


@pytest.mark.slow
@pytest.mark.lava
@needs_lava
def test_deep_mlp_trains_with_hardware_init(tmp_path):
    """Acceptance: digits_deep_mlp (10 x 600, T = 3) trains from the hardware-aware init (calibrated
    thresholds, identity 0.9, readout_lr 5) and the report shows every layer active, quantized
    accuracy equal on Lava. Measured on the full recipe: quantized 88.9 %, Lava 89.0 % (200 samples)."""
    run(RunOptions(recipe="digits_deep_mlp", out=str(tmp_path / "deep"), verify_samples=50,
                       progress=False), log=lambda m: None)
    rep = json.loads((tmp_path / "deep" / "report.json").read_text())
    assert rep["init"]["method"] == "hardware-calibrated" and rep["init"]["options"]["identity"] == 0.9
    assert len(rep["layers"]) == 11 and not any(l["silent"] for l in rep["layers"]), rep["layers"]
    assert all(l["firing_rate"]["lava"] > 0.01 for l in rep["layers"])
    assert rep["accuracy"]["quantized"] >= 0.8, rep["accuracy"]
    assert rep["agreement"]["output_spikes"] == 1.0


def test_load_checkpoint_rejects_what_is_not_a_checkpoint(tmp_path):
    from snnhw.core.layers import SpikingDense, SpikingNet
    from snnhw.errors import FileFormatError, MissingFileError
    from snnhw.spec import Neuron
    from snnhw.train.checkpoint import FORMAT, load_checkpoint, save_checkpoint

    net = SpikingNet((4,), [SpikingDense("fc", 4, 2, Neuron(vth_mant=77))])
    good = tmp_path / "good.pt"
    save_checkpoint(str(good), net, None, None, 3, {"history": [1]})
    st = load_checkpoint(str(good))
    assert st["format"] == FORMAT and st["epoch"] == 3 and st["model"]["layers.0.vth_mant"].item() == 77
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.pt").write_text("not a checkpoint\n")
    torch.save({"format": "snnhw-checkpoint-1", "model": {}}, tmp_path / "old.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    for name, text in (("cut.pt", "not a torch.save zip archive"), ("text.pt", "not a torch.save zip archive"),
                       ("old.pt", "format 'snnhw-checkpoint-1'"), ("list.pt", "no snnhw checkpoint format")):
        with pytest.raises(FileFormatError) as e:
            load_checkpoint(str(tmp_path / name))
        assert text in str(e.value) and name in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(MissingFileError):
        load_checkpoint(str(tmp_path / "absent.pt"))


def test_export_command_user_errors(tmp_path, capsys):
    """``snnhw export``: every bad source is one specific line (exit 2), never a traceback."""
    from nir_specs import mlp

    from snnhw.cli import main

    def err(args):
        assert main(["export"] + args) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("snnhw: error: ")
        return lines[0]

    (tmp_path / "checkpoint.pt").write_bytes(b"junk")
    assert "a checkpoint needs its run directory's spec.json beside it" in err([str(tmp_path / "checkpoint.pt")])
    assert "no spec.json (with or without checkpoint.pt) or model.net in this directory" in err([str(tmp_path)])
    assert "no such file or directory" in err([str(tmp_path / "none.json")])
    (tmp_path / "x.txt").write_text("")
    assert "unknown file type '.txt'" in err([str(tmp_path / "x.txt")])
    (tmp_path / "spec.json").write_text(mlp().to_json())
    assert "cannot read checkpoint" in err([str(tmp_path)])  # the run directory's checkpoint.pt is junk
    assert "cannot write" in err([str(tmp_path / "spec.json"), "--out", str(tmp_path / "x.txt" / "m.nir")])
    (tmp_path / "checkpoint.pt").unlink()
    assert main(["export", str(tmp_path), "--format", "nir"]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "model.nir").is_file()


def _ablate_module():
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks", "ablate.py")
    spec = importlib.util.spec_from_file_location("ablate_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ablate_overrides_reach_the_encoder_and_the_result_is_the_selected_epoch(tmp_path):
    """benchmarks/ablate.py: a `--set` override is checked like the recipe's own keys, reaches what
    prepare derives from the recipe (here the encoder's steps), the printed validation accuracy is the
    selected epoch's, and `--stop-after 1` reproduces the first epoch of the same schedule."""
    from snnhw.train.recipe import RecipeError

    ablate = _ablate_module()
    over = ablate.overrides(["data.steps=4", 'train.surrogate="fast_sigmoid"'], epochs=2)
    assert over == {"data.steps": 4, "train.surrogate": "fast_sigmoid", "train.epochs": 2}
    row = ablate.run(tiny_recipe(tmp_path), over)
    assert row["set"] == over and row["steps"] == 4 and row["inputs"] == 64 and 1 <= row["selected_epoch"] <= 2
    assert 0.0 <= row["val_best"] <= 1.0 and 0.0 <= row["test"] <= 1.0
    assert row["val_best"] == row["val_per_epoch"][row["selected_epoch"] - 1] and len(row["val_per_epoch"]) == 2
    first = ablate.run(tiny_recipe(tmp_path), over, stop_after=1)  # epoch 1 of the same 2-epoch schedule
    assert first["selected_epoch"] == 1 and first["val_per_epoch"] == row["val_per_epoch"][:1]
    with pytest.raises(RecipeError, match="data.steps must be >= 1, got 0"):
        ablate.run(tiny_recipe(tmp_path), {"data.steps": 0})


def test_rate_floor_covers_the_readout_only_when_asked():
    """recipe rate_reg / min_rate / rate_reg_readout: the penalty is rate_reg * relu(min_rate - rate) per
    layer; the output layer (the last) counts only with rate_reg_readout, and its gradient then raises
    the silent readout's spikes."""
    from snnhw.train.loop import rate_penalty

    hidden = torch.full((2, 5, 4), 0.25)  # rate 0.25: above the floor
    quiet = torch.full((2, 5, 3), 0.01)  # rate 0.01
    silent = torch.zeros(2, 5, 10, requires_grad=True)
    assert float(rate_penalty([hidden, quiet, silent], 20.0, 0.05)) == pytest.approx(20.0 * 0.04)
    pen = rate_penalty([hidden, quiet, silent], 20.0, 0.05, readout=True)
    assert float(pen) == pytest.approx(20.0 * 0.04 + 20.0 * 0.05)
    pen.backward()
    assert torch.all(silent.grad < 0)  # descending the penalty adds output spikes
    assert float(rate_penalty([hidden, silent], 20.0, 0.0, readout=True)) == 0.0


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_weight_decay_adam_is_l2_in_the_gradient_adamw_a_decoupled_shrink(optimizer):
    """recipe train.weight_decay: with "adam" the decay is L2 added to the gradient, so on a weight whose
    loss gradient is 0 Adam's first step is a full step of the tensor's learning rate (lr * initial RMS,
    mantissa units) toward 0, whatever the decay's size; with "adamw" it is the decoupled shrink
    w *= 1 - lr_tensor * weight_decay."""
    from snnhw.core.layers import SpikingDense, SpikingNet
    from snnhw.spec import Neuron
    from snnhw.train.loop import make_optimizer
    from snnhw.train.recipe import TrainConfig

    layer = SpikingDense("fc", 3, 2, Neuron(1024, 256, 64))
    net = SpikingNet((3,), [layer])
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[10.0, -20.0, 30.0], [4.0, 6.0, -8.0]]))
    w0 = layer.weight.detach().clone()
    lr_tensor = 0.01 * float(w0.pow(2).mean().sqrt())
    tr = TrainConfig(lr=0.01, weight_decay=1e-3, optimizer=optimizer, schedule="constant")
    opt, _ = make_optimizer(net, tr, 1)
    layer.weight.grad = torch.zeros_like(layer.weight)
    opt.step()
    if optimizer == "adam":
        want = w0 - lr_tensor * torch.sign(w0)
    else:
        want = w0 * (1 - lr_tensor * 1e-3)
    assert torch.allclose(layer.weight.detach(), want, rtol=0, atol=1e-5)
