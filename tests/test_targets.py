"""Targets: typed target files (the chip's number formats are snnhw.loihi's, not configurable), budgets
refuse what cannot fit, energy formula, one-line errors for bad target files."""
import pytest

from snnhw.targets import LayerCost, TargetError, TargetMisfit, available_targets, load_target


def test_loihi2_is_quantized_with_budget_and_energy():
    t = load_target("loihi2")
    assert t.quantized and t.name == "loihi2"
    assert not hasattr(t, "ranges")  # the ranges are snnhw.loihi.RANGES, one place


def test_budget_and_energy_have_sources():
    t = load_target("loihi2")
    b = t.budget
    for v in (b.cores_per_chip, b.neurons_per_core, b.synapses_per_core, b.neurons_per_chip, b.synapses_per_chip):
        assert v > 0
    assert b.source and t.energy.source
    e = t.energy_uJ(1000, 100)
    assert e.value == pytest.approx((1000 * t.energy.synop_pJ + 100 * t.energy.neuron_update_pJ) * 1e-6)
    assert e.formula == "(synops * 23.6 pJ + neuron_updates * 52.0 pJ) * 1e-6"


def test_float_target():
    t = load_target("float")
    assert not t.quantized and t.budget is None
    assert t.energy_uJ(10, 10) is None
    fit = t.check_fit([LayerCost("big", 10 ** 9, 10 ** 12)])
    assert fit.neurons == 10 ** 9 and fit.cores is None
    assert {"loihi2", "float"} <= set(available_targets())


def test_fit_and_misfit_messages():
    t = load_target("loihi2")
    ok = t.check_fit([LayerCost("fc1", 128, 64 * 128), LayerCost("fc2", 10, 1280)])
    assert ok.cores == 2 and ok.synapses == 64 * 128 + 1280
    with pytest.raises(TargetMisfit) as e:
        t.check_fit([LayerCost("fc2", 1000, 1_400_000_000)])
    msg = str(e.value)
    assert "\n" not in msg and "fc2" in msg and "1 400 000 000" in msg and "120 000 000" in msg
    with pytest.raises(TargetMisfit, match="the model needs 140 cores but 1 chip\\(s\\) have 128"):
        t.check_fit([LayerCost(f"l{i}", 8192 * 20, 10) for i in range(7)])


def test_unknown_target_is_one_line():
    with pytest.raises(TargetError) as e:
        load_target("loihi9")
    assert "unknown target 'loihi9'; choose one of" in str(e.value) and "\n" not in str(e.value)


GOOD = '[target]\nquantized = true\n[budget]\ncores_per_chip = 4\n'


@pytest.mark.parametrize("text, msg", [
    (GOOD + "[ranges]\ni_decay = [0, 4096]\n", "section '[ranges]' is not read: the chip's number formats are fixed"),
    (GOOD + "[bits]\nstate = 24\n", "section '[bits]' is not read"),
    (GOOD + "[power]\n", "unknown section '[power]' (known: target, budget, energy)"),
    (GOOD + "cores_per_core = 3\n", "unknown key 'budget.cores_per_core'"),
    (GOOD + "max_chips = 0\n", "budget.max_chips must be >= 1, got 0"),
    (GOOD.replace("4", '"four"'), "'budget.cores_per_chip' must be int, got 'four'"),
    ("[target]\nname = 'x'\n", "'target.quantized' is required (bool)"),
    ("[budget]\n", "[target] needs 'quantized = true|false'"),
    (GOOD + "[energy]\nsynop_pJ = 1.0\n", "'energy.neuron_update_pJ' is required"),
    ("[target\n", "target "),
])
def test_bad_target_files_one_line(tmp_path, text, msg):
    p = tmp_path / "t.toml"
    p.write_text(text)
    with pytest.raises(TargetError) as e:
        load_target(str(p))
    assert msg in str(e.value) and "\n" not in str(e.value) and str(p) in str(e.value)
