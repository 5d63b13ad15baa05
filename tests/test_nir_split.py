"""Split weights: per weight matrix a coarse and a fine Dense into the same LIF (snnhw.loihi.split_weight,
snnhw.spec.Dense.weight_fine / weight_rec_fine), the default of the loihi2 NIR import."""
from pathlib import Path

import numpy as np
import pytest

from snnhw import loihi
from snnhw.core.network import simulate
from snnhw.errors import FileFormatError, InputError
from snnhw.io.netx import write_netx
from snnhw.io.nir import export_nir, load_model
from snnhw.nir_import import import_nir
from snnhw.nir_import.measure import poisson_inputs
from snnhw.nir_import.quantize import quantize_model
from snnhw.spec import Dense, NetworkSpec, Neuron

BRAILLE = Path(__file__).parent / "fixtures" / "nir" / "braille_noDelay_noBias_subtract.nir"


def test_split_sum_equals_two_floored_sums():
    """floor(hi@s 2**e) + floor(lo@s 2**f) == floor(wide@s 2**f): what Lava's two Dense give, summed in a_in."""
    rng = np.random.default_rng(0)
    for e in range(0, 8):
        w = rng.normal(0, 60 * 2.0 ** e, size=(9, 13))
        hi, lo, f = loihi.split_weight(w, e)
        wide, f2 = loihi.split_wide(hi, e, lo, f)
        assert f2 == f == max(e - loihi.SPLIT_SHIFT, 0)
        s = rng.integers(0, 2, size=(13, 50))
        two = np.floor(hi @ s * 2.0 ** e) + np.floor(lo @ s * 2.0 ** f)
        np.testing.assert_array_equal(two, np.floor(wide @ s * 2.0 ** f))
        for m in (hi, lo):  # both are legal Lava Dense mantissas, unchanged by Lava's clip/truncation
            np.testing.assert_array_equal(loihi.dense_effective_weights(m)[0], m)
        # the effective weight is within half a fine step; the coarse one alone only within 2**e
        assert np.abs(wide * 2.0 ** f - w).max() <= 2.0 ** f
        if e > 0:
            assert np.abs(hi * 2.0 ** e - w).max() > 2.0 ** f
    with pytest.raises(loihi.RangeError):
        loihi.split_weight(np.ones((2, 2)), -1)


@pytest.fixture(scope="module")
def braille():
    return load_model(BRAILLE)


def test_braille_quantization_is_split_and_fine(braille, tmp_path):
    """Every Braille matrix (feed-forward and recurrent) gets a fine synapse, and the effective chip weight is
    within half a fine step of the wanted weight ``vth_mant * w`` (this graph has theta = 1 and gains 1); the
    coarse weight alone is not."""
    calib = poisson_inputs(12, rate=0.2, steps=100, samples=16, seed=5)
    spec, maps = quantize_model(braille, calib, reset="zero", split=True)
    plain, _ = quantize_model(braille, calib, reset="zero", split=False)
    pairs = []
    for st, layer, p in zip(braille.neuron_stages, spec.neuron_layers(), plain.neuron_layers()):
        assert np.all(st.neuron.theta == 1) and np.all(st.neuron.g_syn * st.neuron.g_mem == 1)
        np.testing.assert_array_equal(layer.weight, p.weight)  # the coarse synapse is the unsplit one
        pairs.append((st.weight, layer.weight, layer.weight_exp, layer.weight_fine, layer.fine_exp,
                      layer.neuron.vth_mant))
        if st.weight_rec is not None:
            pairs.append((st.weight_rec, layer.weight_rec, layer.rec_exp, layer.weight_rec_fine,
                          layer.rec_fine_exp, layer.neuron.vth_mant))
    assert len(pairs) == 3
    for w, hi, e, lo, f, s in pairs:
        assert lo is not None and f == max(e - loihi.SPLIT_SHIFT, 0)
        wide, _ = loihi.split_wide(hi, e, lo, f)
        assert np.abs(wide * 2.0 ** f - s * w).max() <= 2.0 ** f + 1e-9
        assert np.abs(hi * 2.0 ** e - s * w).max() > 2.0 ** (f + 1)
    assert all(m.as_dict()["fine_exp"] is not None for m in maps)
    # a spec round trip keeps the fine synapses; the writers that cannot hold them say so
    back = NetworkSpec.from_json(spec.to_json())
    np.testing.assert_array_equal(back.layers[0].weight_rec_fine, spec.layers[0].weight_rec_fine)
    x = poisson_inputs(12, rate=0.2, steps=40, samples=3, seed=6)
    np.testing.assert_array_equal(simulate(back, x).output, simulate(spec, x).output)
    with pytest.raises(FileFormatError, match="split weights"):
        write_netx(spec, tmp_path / "model.net")
    with pytest.raises(FileFormatError, match="split weights"):
        export_nir(spec, tmp_path / "model.nir")


def test_split_spec_is_checked():
    w = np.array([[2, -4], [6, 8]])
    layer = Dense(name="d", weight=w, weight_exp=-1, weight_fine=w, fine_exp=-3, neuron=Neuron())
    with pytest.raises(loihi.RangeError, match="weight_exp >= 0"):
        NetworkSpec(input_shape=(2,), layers=[layer]).validate()
    layer = Dense(name="d", weight=w, weight_exp=2, weight_fine=np.ones((3, 2), np.int64), fine_exp=-3)
    with pytest.raises(InputError, match="shape"):
        NetworkSpec(input_shape=(2,), layers=[layer]).validate()
    layer = Dense(name="d", weight=w, weight_exp=2, weight_fine=w, fine_exp=-3)
    with pytest.raises(InputError, match="quantized"):
        NetworkSpec(input_shape=(2,), layers=[layer], quantized=False).validate()


def _random_split_spec(rng) -> NetworkSpec:
    """12 -> 9 (recurrent) -> 5, every matrix split, fine exponents negative (floored sums) and >= 0."""
    l1 = Dense(name="a", weight=loihi.round_to_grid(rng.normal(0, 90, (9, 12))), weight_exp=1,
               weight_fine=loihi.round_to_grid(rng.normal(0, 90, (9, 12))), fine_exp=-6,
               weight_rec=loihi.round_to_grid(rng.normal(0, 60, (9, 9))), rec_exp=0,
               weight_rec_fine=loihi.round_to_grid(rng.normal(0, 120, (9, 9))), rec_fine_exp=-7,
               neuron=Neuron(i_decay=1024, v_decay=614, vth_mant=300))
    l2 = Dense(name="b", weight=loihi.round_to_grid(rng.normal(0, 90, (5, 9))), weight_exp=3,
               weight_fine=loihi.round_to_grid(rng.normal(0, 90, (5, 9))), fine_exp=0,
               bias_mant=rng.integers(-50, 50, 5), neuron=Neuron(i_decay=2253, v_decay=1229, vth_mant=700))
    return NetworkSpec(input_shape=(12,), layers=[l1, l2], quantized=True).validate()


def test_split_spec_on_lava_equals_core():
    """Lava (two Dense/Sparse processes into each LIF's a_in, also recurrent) equals snnhw's core (one wide
    matrix, snnhw.loihi.split_wide) spike for spike and in every u and v, K samples packed side by side."""
    pytest.importorskip("lava")
    from snnhw.backends.lava import run_lava

    rng = np.random.default_rng(1)
    spec = _random_split_spec(rng)
    x = (rng.random((3, 40, 12)) < 0.3).astype(np.int64)
    lava = run_lava(spec, x, record=True, hardware=False)
    core = simulate(spec, x, record=True)
    assert sum(int(s.sum()) for s in lava.layer_spikes) > 20  # the net is active
    for i, tr in enumerate(core.traces):
        np.testing.assert_array_equal(lava.layer_spikes[i], core.layer_spikes[i].numpy())
        np.testing.assert_array_equal(lava.traces[i][0], tr.u.numpy())
        np.testing.assert_array_equal(lava.traces[i][1], tr.v.numpy())
    one = run_lava(spec, x[:1], batch=1, hardware=False)  # K = 1: Lava's Dense instead of Sparse
    for i in range(len(core.traces)):
        np.testing.assert_array_equal(one.layer_spikes[i], core.layer_spikes[i].numpy()[:1])
    # the fine synapses matter: without them the run differs
    plain = NetworkSpec.from_json(spec.to_json())
    for layer in plain.neuron_layers():
        layer.weight_fine = layer.weight_rec_fine = None
    assert not np.array_equal(simulate(plain, x, record=True).traces[0].v.numpy(), core.traces[0].v.numpy())


def test_braille_zero_reset_acceptance_64_samples(tmp_path):
    """Issue 12's zero-reset line at the CLI's defaults (64 Poisson samples, rate 0.2, 200 steps, seed 0):
    output cosine >= 0.99 and arg-max agreement >= 0.99 (on Lava where installed, else the bit-exact core)."""
    rep = import_nir(BRAILLE, reset="zero", rate=0.2, steps=200, samples=64, seed=0, out=tmp_path)
    a = rep["agreement"]
    assert rep["weights"].startswith("split")
    assert a["output_cosine"] >= 0.99 and a["predictions"] >= 0.99
