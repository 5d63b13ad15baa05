"""Parameters outside the chip's ranges raise a ONE-LINE error naming the parameter and its legal range
(``snnhw.loihi.check_range``, ``NetworkSpec.validate``, the netx reader and the CLI)."""
import numpy as np
import pytest
import torch

from netx_files import cuba, write_raw
from snnhw import loihi
from snnhw.cli import main
from snnhw.spec import Dense, NetworkSpec, Neuron


def one_line(excinfo):
    msg = str(excinfo.value)
    assert "\n" not in msg and msg.strip() == msg and msg
    return msg


@pytest.mark.parametrize("name, bad, legal", [
    ("i_decay", 4097, "0..4096"),  # a 13-bit decay
    ("i_decay", -1, "0..4096"),
    ("v_decay", 8191, "0..4096"),
    ("vth_mant", 131072, "0..131071"),  # beyond 17 bits
    ("vth_mant", -1, "0..131071"),
    ("bias_mant", 4096, "-4096..4095"),  # out of 13 bits
    ("bias_mant", -4097, "-4096..4095"),
    ("bias_exp", 8, "0..7"),
    ("bias_exp", -1, "0..7"),
    ("weight", 256, "-256..255"),  # a 9-bit magnitude
    ("weight", 511, "-256..255"),
    ("weight", -257, "-256..255"),
    ("weight_exp", 8, "-8..7"),
    ("weight_exp", -9, "-8..7"),
    ("num_weight_bits", 9, "1..8"),
    ("num_weight_bits", 0, "1..8"),
])
def test_check_range_scalar(name, bad, legal):
    with pytest.raises(loihi.RangeError) as e:
        loihi.check_range(name, bad, "somewhere")
    assert one_line(e) == f"somewhere: {name} = {bad} is outside the legal range {legal}"
    lo, hi = loihi.RANGES[name]
    loihi.check_range(name, lo)
    loihi.check_range(name, hi)


def test_check_range_arrays_nan_and_non_integers():
    with pytest.raises(loihi.RangeError, match=r"weight = 300 is outside the legal range -256\.\.255"):
        loihi.check_range("weight", np.array([[0, 300], [-3, 2]]))
    with pytest.raises(loihi.RangeError, match=r"bias_mant = -5000 is outside"):
        loihi.check_range("bias_mant", torch.tensor([1, -5000, 4095]))
    for bad in (float("nan"), np.array([1.0, np.inf])):
        with pytest.raises(loihi.RangeError) as e:
            loihi.check_range("vth_mant", bad)
        assert one_line(e) == "vth_mant contains NaN or infinity; legal range is integers 0..131071"
    with pytest.raises(loihi.RangeError) as e:
        loihi.check_range("i_decay", 10.5)
    assert one_line(e) == "i_decay must be integer-valued; legal range is 0..4096"
    loihi.check_range("weight", np.zeros((0, 3)))  # empty: nothing to check


def spec_with(**kw):
    """A valid one-layer spec with ``kw`` overriding layer fields (``neuron_*`` for neuron fields)."""
    neuron = Neuron(1024, 128, 80)
    for k in [k for k in kw if k.startswith("neuron_")]:
        setattr(neuron, k[7:], kw.pop(k))
    args = dict(name="hidden", weight=np.array([[2, -4], [6, 0]]), neuron=neuron,
                bias_mant=np.array([1, -1]))
    args.update(kw)
    return NetworkSpec((2,), [Dense(**args)])


@pytest.mark.parametrize("kw, message", [
    (dict(neuron_i_decay=4097), "layer hidden: i_decay = 4097 is outside the legal range 0..4096"),
    (dict(neuron_v_decay=-3), "layer hidden: v_decay = -3 is outside the legal range 0..4096"),
    (dict(neuron_vth_mant=1 << 17), "layer hidden: vth_mant = 131072 is outside the legal range 0..131071"),
    (dict(neuron_vth_mant=float("nan")), "layer hidden: vth_mant contains NaN or infinity; legal range is "
                                          "integers 0..131071"),
    (dict(bias_mant=np.array([4096, 0])), "layer hidden: bias_mant = 4096 is outside the legal range -4096..4095"),
    (dict(bias_exp=9), "layer hidden: bias_exp = 9 is outside the legal range 0..7"),
    (dict(weight=np.array([[2, 256], [0, 0]])), "layer hidden weight: weight = 256 is outside the legal range "
                                                 "-256..255"),
    (dict(weight=np.array([[2, -258], [0, 0]])), "layer hidden weight: weight = -258 is outside the legal "
                                                  "range -256..255"),
    (dict(weight_exp=8), "layer hidden: weight_exp = 8 is outside the legal range -8..7"),
    (dict(weight_exp=-12), "layer hidden: weight_exp = -12 is outside the legal range -8..7"),
    (dict(weight=np.array([[3, -4], [6, 0]])), "layer hidden: weight is not representable by Lava's Dense "
                                                "(mixed sign mode clears the LSB: use even mantissas)"),
])
def test_validate_names_parameter_and_range(kw, message):
    with pytest.raises(loihi.RangeError) as e:
        spec_with(**kw).validate()
    assert one_line(e) == message


def test_validate_recurrent_exponent():
    # spec.py checks rec_exp against the weight_exp range (and names it weight_exp)
    with pytest.raises(loihi.RangeError) as e:
        spec_with(weight_rec=np.zeros((2, 2), int), rec_exp=9).validate()
    assert one_line(e).endswith("= 9 is outside the legal range -8..7")
    with pytest.raises(loihi.RangeError) as e:
        spec_with(weight_rec=np.array([[2, 300], [0, 0]])).validate()
    assert one_line(e) == "layer hidden weight_rec: weight = 300 is outside the legal range -256..255"


def test_validate_nan_weight_and_shapes():
    with pytest.raises(ValueError) as e:
        spec_with(weight=np.array([[np.nan, 2.0], [0, 0]])).validate()
    assert one_line(e) == "layer hidden: weight contains NaN or infinity"
    with pytest.raises(ValueError) as e:
        NetworkSpec((3,), spec_with().layers).validate()
    assert one_line(e) == "layer hidden: expects 2 inputs, previous layer gives 3"
    spec_with().validate()  # the baseline is legal
    spec_with(neuron_i_decay=4096, neuron_v_decay=4096, neuron_vth_mant=131071,
              bias_mant=np.array([-4096, 4095]), bias_exp=7, weight_exp=-8,
              weight=np.array([[-256, 254], [0, 2]])).validate()  # every edge value is legal


def test_float_spec_is_not_held_to_integer_ranges():
    spec = spec_with(neuron_vth_mant=0.37, weight=np.array([[0.5, -1.25], [3.0, 0.0]]))
    spec.quantized = False
    spec.validate()
    spec.layers[0].neuron.v_decay = 5000.0
    with pytest.raises(loihi.RangeError, match=r"v_decay = 5000.0 is outside the legal range 0\.\.4096"):
        spec.validate()


def test_cli_reports_out_of_range_netx_parameter(tmp_path, capsys):
    path = write_raw(tmp_path / "r.net", [dict(type="dense", weight=np.array([[2.0, 4.0]]),
                                               neuron=cuba(i_decay=5000))])
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 2), np.uint8))
    assert main(["simulate", str(path), "--inputs", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "i_decay = 5000 is outside the legal range 0..4096" in err and "iDecay" in err
