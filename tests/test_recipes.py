"""Recipes: every shipped recipe parses and plans; bad input is one line, exit 2, and leaves no directory."""
import os

import pytest

from snnhw.cli import main
from snnhw.loihi import DECAY_UNITY
from snnhw.targets import load_target
from snnhw.train import build
from snnhw.train.pipeline import make_encoder
from snnhw.train.recipe import RecipeError, available_recipes, load_recipe, parse_recipe

SHIPPED = ["digits_mlp", "digits_deep_mlp", "digits_cnn", "mnist1d_rsnn", "mnist_mlp", "fmnist_mlp",
           "nmnist_mlp", "shd_rsnn"]
# (feature shape, input channels, classes); None: a series dataset, whose channels the recipe's encoder sets
INPUTS = {"digits": ((1, 8, 8), 64, 10), "mnist1d": ((40,), None, 10), "mnist": ((1, 28, 28), 784, 10),
          "fmnist": ((1, 28, 28), 784, 10), "nmnist": ((2, 34, 34), 2312, 10), "shd": ((700,), 700, 20)}


def test_all_recipes_present():
    assert set(SHIPPED) <= set(available_recipes())


@pytest.mark.parametrize("name", SHIPPED)
def test_recipe_parses_plans_and_fits_loihi2(name):
    r = load_recipe(name)
    fshape, channels, classes = INPUTS[r.data.dataset]
    if channels is None:
        channels = make_encoder(r, 0).series_channels()
    shape = build.input_shape_for(r, fshape, channels)
    plan = build.plan_layers(r, shape, classes)
    load_target("loihi2").check_fit(build.layer_costs(plan))
    model = build.build_model(r, load_target("loihi2"), shape, classes)
    assert [l.name for l in model.layers] == [l.name for l in r.model.layers]


def test_deep_mlp_is_the_seed_papers_net():
    r = load_recipe("digits_deep_mlp")
    hidden = r.model.layers[:-1]
    assert len(hidden) == 10 and all(l.out == 600 for l in hidden) and r.data.steps == 3


def test_mnist1d_rsnn_recurrent_layer_keeps_no_voltage_and_readout_integrates():
    """docs/train.md's recurrent recipe: 48 input channels (thermometer + up/down crossings of 16 levels);
    the recurrent layer has v_decay = 4096 (v = u + B every step, so the hard reset erases no memory) and
    a short current; the readout keeps most of its voltage from step to step."""
    r = load_recipe("mnist1d_rsnn")
    assert make_encoder(r, 0).series_channels() == 48
    model = build.build_model(r, load_target("loihi2"), (48,), 10)
    rec, out = model.layers
    assert rec.weight_rec is not None and out.weight_rec is None
    assert rec.v_decay == DECAY_UNITY and rec.i_decay > DECAY_UNITY // 2
    assert out.v_decay < DECAY_UNITY // 8 and out.i_decay < rec.i_decay


@pytest.mark.parametrize("bad, msg", [
    ({"train": {"epochz": 3}}, "unknown key 'train.epochz'"),
    ({"trainning": {}}, "unknown section '[trainning]'"),
    ({"train": {"epochs": "ten"}}, "'train.epochs' must be int"),
    ({"model": {"layers": [{"kind": "dense", "out": 10, "size": 3}]}}, "unknown key 'model.layers[0].size'"),
    ({"model": {"layers": [{"kind": "lstm", "out": 10}]}}, "unknown kind 'lstm'"),
    ({"model": {"layers": [{"kind": "dense"}]}}, "'model.layers[0].out' is required (int; must be >= 1)"),
    ({"model": {"layers": [{"kind": "dense", "out": 0}]}}, "model.layers[0].out must be >= 1, got 0"),
    ({"model": {"layers": [{"kind": "dense", "out": 10, "i_decay": 5000}]}},
     "model.layers[0].i_decay must lie in [0, 4096], got 5000"),
    ({"model": {"layers": [{"kind": "dense", "out": 10, "recurrent": "yes"}]}},
     "'model.layers[0].recurrent' must be bool, got 'yes'"),
    ({"model": {"layers": [{"kind": "dense", "name": "a", "out": 10}, {"kind": "dense", "name": "a", "out": 10}]}},
     "duplicate layer name 'a'"),
    ({"model": {"layers": []}}, "[model] layers is empty"),
    ({"data": {"steps": 0}}, "data.steps must be >= 1, got 0"),
    ({"data": {"verify_samples": 0}}, "data.verify_samples must be >= 1, got 0"),  # export and verify need one
    ({"data": {"dataset": "cifar"}}, "data.dataset must be one of digits, mnist1d"),
    ({"data": {"encoding": "events"}}, "encoding 'events' needs an event dataset (nmnist, shd), not 'digits'"),
    ({"neuron": {"v_decay": -1}}, "neuron.v_decay must lie in [0, 4096], got -1"),
    ({"init": {"method": "xavier"}}, "init.method must be one of pytorch, kaiming"),
    ({"train": {"schedule": "step"}}, "train.schedule must be one of cosine, constant, got 'step'"),
    ({"train": {"surrogate": "relu"}}, "train.surrogate must be one of arctan"),
    ({"data": []}, "'data' must be a table"),
    ({"train": {"readout_lr": 0}}, "train.readout_lr must be > 0"),
    ({"train": {"label_smoothing": 1.0}}, "train.label_smoothing must lie in [0, 1)"),
    ({"init": {"identity": 1.0}}, "init.identity must lie in [0, 1)"),
])
def test_bad_recipes_one_line(bad, msg):
    d = {"model": {"layers": [{"kind": "dense", "out": 10}]}}
    d.update(bad)
    with pytest.raises(RecipeError) as e:
        parse_recipe(d)
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_resolved_recipe_is_the_file_plus_defaults():
    d = {"model": {"layers": [{"kind": "dense", "out": 10}]}, "train": {"lr": 1}}
    r = parse_recipe(d, where="x")
    res = r.to_dict()
    assert res["model"]["layers"] == [{"kind": "dense", "name": "dense1", "out": 10}]
    assert res["train"]["lr"] == 1 and isinstance(res["train"]["lr"], int)  # stored as written
    assert res["recipe"]["name"] == "x" and res["train"]["epochs"] == 10
    assert parse_recipe(res, where="x") == r


def test_overrides_are_checked():
    r = load_recipe("digits_mlp")
    assert r.with_overrides({"train.seed": 3}).train.seed == 3 and r.train.seed == 0
    with pytest.raises(RecipeError, match="train.epochs must be >= 0, got -1"):
        r.with_overrides({"train.epochs": -1})


def _cli(args, tmp_path, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def _write(tmp_path, text):
    p = tmp_path / "r.toml"
    p.write_text(text)
    return str(p)


GOOD = """
[data]
dataset = "digits"
steps = 4
[model]
layers = [{ kind = "dense", name = "fc1", out = 10 }]
[train]
epochs = 1
"""


@pytest.mark.parametrize("case", ["unknown_key", "unknown_target", "missing_dataset", "misfit", "unknown_recipe"])
def test_cli_bad_input_leaves_nothing(case, tmp_path, capsys):
    out = tmp_path / "run"
    target = "loihi2"
    if case == "unknown_key":
        recipe = _write(tmp_path, GOOD + "learning_rate = 3\n")
    elif case == "unknown_target":
        recipe, target = _write(tmp_path, GOOD), "loihi9"
    elif case == "missing_dataset":
        recipe = "mnist_mlp"
    elif case == "misfit":
        recipe = _write(tmp_path, GOOD.replace('out = 10 }]', 'out = 2000000 }, { kind = "dense", name = "fc2", '
                                                               'out = 10 }]'))
    else:
        recipe = "no_such_recipe"
    code, err = _cli(["train", recipe, "--target", target, "--out", str(out), "--data-dir",
                      str(tmp_path / "data"), "--no-progress"], tmp_path, capsys)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("snnhw: error:")
    expect = {"unknown_key": "unknown key 'train.learning_rate'", "unknown_target": "unknown target 'loihi9'",
              "missing_dataset": "MNIST not found", "misfit": "needs",
              "unknown_recipe": "unknown recipe 'no_such_recipe'"}[case]
    assert expect in err[0]
    if case == "missing_dataset":
        assert "download" in err[0] and str(tmp_path / "data") in err[0]
    if case == "misfit":
        assert "synapses" in err[0] or "neurons" in err[0]
    assert sorted(os.listdir(tmp_path)) == sorted(p for p in os.listdir(tmp_path) if p.endswith(".toml"))
