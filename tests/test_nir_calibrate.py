"""``snnhw import-nir --calibrate N`` (:mod:`snnhw.nir_import.calibrate`): distillation of the chip spec
on the chip's own arithmetic against the float reference, on unlabelled inputs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from snnhw import loihi
from snnhw.errors import InputError
from snnhw.io.nir import load_model
from snnhw.nir_import import aligned, float_reference, poisson_inputs, quantize_model, run_twin
from snnhw.nir_import.calibrate import _forward, _trainables, distill

BRAILLE = "tests/fixtures/nir/braille_noDelay_noBias_subtract.nir"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def braille():
    m = load_model(BRAILLE)
    x = poisson_inputs(m.n_in, rate=0.2, steps=60, samples=8, seed=3)
    spec, _ = quantize_model(m, x, reset="subtract")
    return m, x, spec


def test_student_forward_is_the_chip(braille):
    """The distillation's differentiable forward is the chip's arithmetic bit for bit (snnhw's exact core,
    itself checked against Lava elsewhere): what is trained is what runs."""
    import torch

    m, x, spec = braille
    xp = np.concatenate([x, np.zeros((x.shape[0], 2, x.shape[2]), x.dtype)], axis=1)
    with torch.no_grad():
        student = [s.numpy() for s in _forward(spec, _trainables(spec), torch.as_tensor(xp, dtype=torch.float32))]
    chip = run_twin(spec, xp)
    assert sum(c.sum() for c in chip) > 0
    for a, b in zip(student, chip):
        np.testing.assert_array_equal(a, b)


def test_distill_keeps_a_legal_spec_and_never_raises_the_loss(braille):
    m, x, spec = braille
    ref = float_reference(m, x, reset="subtract")
    tuned, rec = distill(spec, ref.layer_spikes, x, iterations=3)
    assert rec["loss_after"] <= rec["loss_before"]
    assert 0 <= rec["kept_iteration"] <= 3
    tuned.validate()
    for a, b in zip(spec.neuron_layers(), tuned.neuron_layers()):
        assert (a.weight_exp, a.rec_exp, a.neuron) == (b.weight_exp, b.rec_exp, b.neuron)
        assert np.array_equal(loihi.round_to_grid(b.weight), b.weight)
    # the record's "after" is the kept spec's chip output on the calibration inputs
    xp = np.concatenate([x, np.zeros((x.shape[0], 2, x.shape[2]), x.dtype)], axis=1)
    out = aligned(run_twin(tuned, xp), x.shape[1])[-1].sum(axis=1)
    from snnhw.nir_import import agreement

    assert agreement(out, ref.output.sum(axis=1)) == rec["calibration_set_after"]


def test_distill_refuses_a_float_spec(braille):
    from snnhw.nir_import import float_spec

    m, x, _ = braille
    with pytest.raises(InputError, match="quantized"):
        distill(float_spec(m), float_reference(m, x).layer_spikes, x, iterations=1)


def test_cli_calibrate_reports_before_and_after(tmp_path):
    from snnhw.cli import main

    out = tmp_path / "run"
    rc = main(["import-nir", BRAILLE, "--reset", "subtract", "--samples", "4", "--steps", "40", "--calibrate", "4",
               "--out", str(out)])
    assert rc == 0
    cal = json.loads((out / "report.json").read_text())["calibration"]
    assert cal["samples"] == 4
    for k in ("agreement_before", "agreement_after", "calibration_set_before", "calibration_set_after"):
        assert 0.0 <= cal[k]["predictions"] <= 1.0
    assert cal["loss_after"] <= cal["loss_before"]
    assert main(["import-nir", BRAILLE, "--calibrate", "0", "--samples", "2", "--steps", "10",
                 "--out", str(tmp_path / "r0")]) == 0
    assert json.loads((tmp_path / "r0" / "report.json").read_text())["calibration"] is None


def test_self_excitation_is_a_diagonal_worth_c_thresholds():
    from snnhw.nir_import.compensate import with_self_excitation

    m = load_model(BRAILLE)
    mm = with_self_excitation(m, [0.0, 0.25])
    s0, s1 = m.neuron_stages[1], mm.neuron_stages[1]
    assert s0.weight_rec is None and s1.weight_rec is not None
    nd = s1.neuron
    np.testing.assert_allclose(np.diag(s1.weight_rec) * nd.g_syn * nd.g_mem, 0.25 * nd.theta)
    assert np.count_nonzero(s1.weight_rec - np.diag(np.diag(s1.weight_rec))) == 0
    assert mm.neuron_stages[0] is m.neuron_stages[0]  # c = 0 leaves a stage untouched


def test_compensation_with_self_excitation_beats_threshold_alone(braille):
    """On the calibration inputs, the (k, c) compensation reproduces the subtract-reset reference's output
    counts at least as well as the best threshold multiplier alone (c = 0 is in its grid), and here better."""
    from snnhw.nir_import.compensate import compensate_subtract, with_self_excitation

    m, x, _ = braille
    target = float_reference(m, x, reset="subtract").output.sum(axis=1)

    def err(ks, cs):
        out = float_reference(with_self_excitation(m, cs), x, reset="zero", theta_scale=ks).output.sum(axis=1)
        return float(np.mean((out - target) ** 2))

    ks, cs, cos = compensate_subtract(m, x)
    k_only, _, _ = compensate_subtract(m, x, self_grid=[0.0])
    assert len(ks) == len(cs) == len(cos) == 2 and all(0 <= c <= 0.4 for c in cs)
    assert err(ks, cs) < err(k_only, [0.0, 0.0])
