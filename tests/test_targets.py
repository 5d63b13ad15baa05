"""Targets: loihi2.toml agrees with snnhw.loihi, budgets refuse what cannot fit, energy formula."""
import pytest

from snnhw import loihi
from snnhw.core.layers import WEIGHT_MANT_MAX
from snnhw.targets import LayerCost, TargetMisfit, available_targets, load_target


def test_loihi2_ranges_equal_core_ranges():
    t = load_target("loihi2")
    assert t.quantized
    assert t.ranges == {k: tuple(v) for k, v in loihi.RANGES.items()}
    assert t.bits["state"] == loihi.STATE_BITS
    assert t.bits["threshold_shift"] == loihi.VTH_SHIFT
    assert t.bits["activation_shift"] == loihi.ACT_SHIFT
    assert 1 << t.bits["decay"] == loihi.DECAY_UNITY
    assert t.ranges["vth_mant"][1] == (1 << t.bits["threshold_mantissa"]) - 1
    assert t.ranges["bias_mant"] == (-(1 << (t.bits["bias_mantissa"] - 1)), (1 << (t.bits["bias_mantissa"] - 1)) - 1)
    assert t.training["weight_mantissa_max"] == WEIGHT_MANT_MAX


def test_budget_and_energy_have_sources():
    t = load_target("loihi2")
    for key in ("cores_per_chip", "neurons_per_core", "synapses_per_core", "neurons_per_chip", "synapses_per_chip"):
        assert t.budget[key] > 0
    assert t.budget["source"] and t.energy["source"]
    e = t.energy_uJ(1000, 100)
    assert e["value"] == pytest.approx((1000 * t.energy["synop_pJ"] + 100 * t.energy["neuron_update_pJ"]) * 1e-6)
    assert "synops" in e["formula"]


def test_float_target():
    t = load_target("float")
    assert not t.quantized
    assert t.energy_uJ(10, 10) is None
    assert t.check_fit([LayerCost("big", 10 ** 9, 10 ** 12)])["neurons"] == 10 ** 9
    assert {"loihi2", "float"} <= set(available_targets())


def test_fit_and_misfit_messages():
    t = load_target("loihi2")
    ok = t.check_fit([LayerCost("fc1", 128, 64 * 128), LayerCost("fc2", 10, 1280)])
    assert ok["cores"] == 2 and ok["synapses"] == 64 * 128 + 1280
    with pytest.raises(TargetMisfit) as e:
        t.check_fit([LayerCost("fc2", 1000, 1_400_000_000)])
    msg = str(e.value)
    assert "\n" not in msg and "fc2" in msg and "1 400 000 000" in msg and "120 000 000" in msg
    with pytest.raises(TargetMisfit, match="cores"):
        t.check_fit([LayerCost(f"l{i}", 8192 * 20, 10) for i in range(7)])


def test_unknown_target_is_one_line():
    with pytest.raises(ValueError) as e:
        load_target("loihi9")
    assert "unknown target 'loihi9'" in str(e.value) and "\n" not in str(e.value)
