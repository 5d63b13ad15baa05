"""``snnhw demo``: a seeded random network through the core and Lava, agreement table, exit status."""
from __future__ import annotations

import numpy as np
import pytest

from snnhw.backends import lava as lb
from snnhw.backends import lava_runtime
from snnhw.cli import main
from snnhw.commands.demo import random_spec

needs_lava = pytest.mark.skipif(not lb.lava_available(), reason="lava-nc is not installed")
SMALL = ["demo", "--sizes", "6,12,4", "--steps", "20", "--samples", "2"]


@needs_lava
def test_demo_agrees_and_exits_0(capsys):
    assert main(SMALL) == 0
    out = capsys.readouterr().out
    assert "AGREE" in out and "DISAGREE" not in out
    assert "layer1" in out and "layer2" in out and "lava-cpu-sim" in out
    assert "NO" not in out


@needs_lava
def test_demo_recurrent_agrees(capsys):
    assert main(SMALL + ["--recurrent", "--seed", "5"]) == 0
    assert "(layer1 recurrent)" in capsys.readouterr().out


@needs_lava
def test_demo_reports_a_disagreement_with_exit_1(monkeypatch, capsys):
    real = lb.run_lava

    def flipped(spec, x, **kw):
        res = real(spec, x, **kw)
        res.layer_spikes[-1][0, -1, 0] ^= 1  # one spike of the last layer changed
        return res

    monkeypatch.setattr(lb, "run_lava", flipped)
    assert main(SMALL) == 1
    out = capsys.readouterr().out
    assert "DISAGREE" in out and "NO" in out


@pytest.mark.parametrize("args,msg", [
    (["--sizes", "5"], "--sizes needs 2 to 9 widths"),
    (["--sizes", "5,x"], "--sizes must be comma-separated integers"),
    (["--sizes", "5,0"], "widths must be in 1..2048"),
    (["--steps", "0"], "--steps must be in 1..10000"),
    (["--samples", "0"], "--samples must be in 1..10000"),
    (["--density", "1.5"], "--density must be in 0..1"),
])
def test_demo_bad_arguments_one_line_exit_2(args, msg, capsys):
    assert main(["demo"] + args) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1


def test_demo_without_lava_says_so(monkeypatch, capsys):
    monkeypatch.setattr(lava_runtime, "lava_available", lambda: False)
    assert main(SMALL) == 2
    assert capsys.readouterr().err == ("snnhw: error: snnhw demo compares snnhw's core against Lava and cannot "
                                       "compare without it: lava-nc is not installed (pip install 'snnhw[lava]' "
                                       "on Python 3.10)\n")


def test_random_spec_is_seeded_and_valid():
    a, b, c = random_spec([5, 9, 3], 1), random_spec([5, 9, 3], 1), random_spec([5, 9, 3], 2)
    assert a.to_json() == b.to_json() != c.to_json()
    r = random_spec([5, 9, 3], 1, recurrent=True)
    assert r.layers[0].weight_rec.shape == (9, 9) and r.layers[1].weight_rec is None
    assert all(np.abs(l.weight).max() <= 256 for l in a.layers)
