"""Subtract reset emulated on loihi2 (snnhw.nir_import.emulate): u carries the NIR membrane, the current
filter runs as delayed synaptic taps (relay populations on Lava), the reset as a -beta*theta self-connection."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from snnhw.io.nir import load_model
from snnhw.nir_import import import_nir
from snnhw.nir_import.emulate import emulation_spec, simulate_emulation, why_not
from snnhw.nir_import.measure import agreement, poisson_inputs
from snnhw.nir_import.reference import float_reference

FIX = Path(__file__).parent / "fixtures" / "nir"
BRAILLE = FIX / "braille_noDelay_noBias_subtract.nir"


@pytest.fixture(scope="module")
def braille():
    return load_model(BRAILLE)


def _run_core(model, spec, x):
    L = len(spec.pops)
    xp = np.concatenate([x, np.zeros((x.shape[0], L, x.shape[2]), x.dtype)], axis=1)
    spikes, _ = simulate_emulation(spec, xp)
    return [s[:, k + 1:k + 1 + x.shape[1]] for k, s in enumerate(spikes)]


@pytest.mark.parametrize("reset", ["subtract", "subtract-undecayed"])
def test_emulation_follows_the_subtract_reference_on_the_core(braille, reset):
    """Issue 12's subtract-reset line at the CLI's defaults (64 Poisson samples, rate 0.2, 200 steps, seed 0;
    calibration on a separate draw), on snnhw's bit-exact core: cosine >= 0.99, arg-max >= 0.95. Both
    subtract conventions: the self-connection is -beta*theta (subtract) or -theta (undecayed)."""
    x = poisson_inputs(12, rate=0.2, steps=200, samples=64, seed=0)
    calib = poisson_inputs(12, rate=0.2, steps=200, samples=64, seed=1_000_003)
    spec, _ = emulation_spec(braille, calib, reset)
    assert spec.pops[0].groups[0].n_later > 10 and spec.pops[0].groups[1].n_later > 10  # the taps exist
    chip = _run_core(braille, spec, x)
    ref = float_reference(braille, x, reset=reset)
    a = agreement(chip[-1].sum(axis=1), ref.output.sum(axis=1))
    assert a["output_cosine"] >= 0.99 and a["predictions"] >= 0.95
    assert np.mean(chip[0] == ref.layer_spikes[0]) > 0.998  # layer 1 follows step by step
    # the zero-reset reading of the same chip is far off: the emulation is what makes it a subtract reset
    zero = float_reference(braille, x, reset="zero")
    assert agreement(chip[-1].sum(axis=1), zero.output.sum(axis=1))["output_cosine"] < a["output_cosine"] - 0.005


def test_emulation_without_taps_or_self_connection_is_worse(braille):
    """Dropping the delayed taps (tap 0 only) or the reset's self-connection breaks the agreement."""
    x = poisson_inputs(12, rate=0.2, steps=120, samples=16, seed=2)
    spec, _ = emulation_spec(braille, x, "subtract")
    ref = float_reference(braille, x, reset="subtract").output.sum(axis=1)
    full = agreement(_run_core(braille, spec, x)[-1].sum(axis=1), ref)["output_cosine"]
    no_taps = dataclasses.replace(spec, pops=[dataclasses.replace(p, groups=[
        dataclasses.replace(g, later=None, later_fine=None) for g in p.groups]) for p in spec.pops])
    cut = agreement(_run_core(braille, no_taps, x)[-1].sum(axis=1), ref)["output_cosine"]
    assert full > 0.99 and cut < full - 0.02


def test_emulation_lava_equals_core(braille):
    """Lava (relay populations, Sparse taps, 4 samples side by side) equals snnhw's core spike for spike."""
    pytest.importorskip("lava")
    from snnhw.nir_import.emulate import run_emulation_lava

    x = poisson_inputs(12, rate=0.3, steps=70, samples=4, seed=7)
    spec, _ = emulation_spec(braille, x, "subtract")
    lava = run_emulation_lava(spec, x)
    core, _ = simulate_emulation(spec, x)
    assert sum(int(s.sum()) for s in core) > 30
    for a, b in zip(lava, core):
        np.testing.assert_array_equal(a, b)


def test_why_not_names_what_cannot_be_emulated():
    assert why_not(load_model(BRAILLE)) is None
    cnn = load_model(FIX / "peers" / "sinabs_cnn.nir", source="sinabs")
    assert "conv" in why_not(cnn)
    li = load_model(FIX / "peers" / "sinabs_mlp_li.nir", source="sinabs")
    assert "readout" in why_not(li)


@pytest.mark.slow
def test_braille_subtract_acceptance_on_lava(tmp_path):
    """The issue's line through the import (Lava where installed): cosine >= 0.99, arg-max >= 0.95; the
    compensation mode stays available and is what ran before."""
    rep = import_nir(BRAILLE, reset="subtract", rate=0.2, steps=200, samples=64, seed=0, out=tmp_path / "e")
    assert rep["spec_from"] == "subtract-reset emulation"
    assert rep["agreement"]["output_cosine"] >= 0.99 and rep["agreement"]["predictions"] >= 0.95
    assert "subtractive reset: Loihi resets v to 0" not in rep["lossy"]
    assert rep["model_net"].startswith("not written")
    comp = import_nir(BRAILLE, reset="subtract", rate=0.2, steps=200, samples=64, seed=0, out=tmp_path / "c",
                      subtract_mode="compensate")
    assert comp["spec_from"] == "hardware-aware calibration" and comp["compensation"] is not None


def test_snntorch_export_with_biases_is_emulated_like_snntorch():
    """snnTorch 1.0's own export (Affine biases, CubaLIF then LIF, subtract-undecayed reset): the biases come
    through the always-on unit's taps; the chip follows snnTorch's stored spikes (count cosine >= 0.99,
    >= 90 % of the spike values; the threshold compensation gave 0.997 and 86 %), and Lava equals the core."""
    peers = FIX / "peers"
    model = load_model(peers / "snntorch_mlp.nir", source="snntorch")
    assert why_not(model) is None and model.convention.reset == "subtract-undecayed"
    x = np.load(peers / "snntorch_mlp_input.npy")
    x = x.reshape(x.shape[0], x.shape[1], -1)
    spec, notes = emulation_spec(model, x, model.convention.reset)
    assert any(g.src == -2 for g in spec.pops[0].groups) and any("bias" in n for n in notes)
    chip = _run_core(model, spec, x)[-1]
    want = np.load(peers / "snntorch_mlp_spikes.npy").reshape(chip.shape)
    from snnhw.nir_import import cosine

    assert cosine(chip.sum(axis=1), want.sum(axis=1)) >= 0.99 and np.mean(chip == want) >= 0.9
    try:
        from snnhw.nir_import.emulate import run_emulation_lava

        import lava  # noqa: F401
    except ImportError:
        return
    L = len(spec.pops)
    xp = np.concatenate([x, np.zeros((x.shape[0], L, x.shape[2]), x.dtype)], axis=1)
    for a, b in zip(run_emulation_lava(spec, xp), simulate_emulation(spec, xp)[0]):
        np.testing.assert_array_equal(a, b)
