"""Datasets and encoders: loaders read small files written here in the real formats; encoders are
deterministic; missing data is a one-line message saying what to download and where."""
import struct

import h5py
import numpy as np
import pytest

from snnhw.data import DatasetMissing, Encoder, load_dataset
from snnhw.errors import InputError


def _idx(path, arr):
    arr = np.asarray(arr, dtype=np.uint8)
    magic = 0x0800 | arr.ndim
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic))
        for d in arr.shape:
            f.write(struct.pack(">I", d))
        f.write(arr.tobytes())


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fmnist", "FashionMNIST")])
def test_torchvision_idx_files(tmp_path, name, folder):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    imgs = {s: rng.integers(0, 256, (n, 28, 28)) for s, n in (("train", 7), ("t10k", 3))}
    labels = {s: rng.integers(0, 10, n) for s, n in (("train", 7), ("t10k", 3))}
    for s in ("train", "t10k"):
        _idx(raw / f"{s}-images-idx3-ubyte", imgs[s])
        _idx(raw / f"{s}-labels-idx1-ubyte", labels[s])
    d = load_dataset(name, data_dir=str(tmp_path))
    assert d.x_train.shape == (7, 784) and d.x_test.shape == (3, 784)
    np.testing.assert_allclose(d.x_train, imgs["train"].reshape(7, -1) / 255.0, rtol=1e-6)
    assert d.y_test.tolist() == labels["t10k"].tolist()


def test_torchvision_missing_is_one_line(tmp_path):
    with pytest.raises(DatasetMissing) as e:
        load_dataset("mnist", data_dir=str(tmp_path))
    msg = str(e.value)
    assert "\n" not in msg and "download" in msg and str(tmp_path) in msg


def _nmnist_bin(path, events):
    """N-MNIST's 40-bit format: x, y, p<<7 | t[22:16], t[15:8], t[7:0]."""
    out = bytearray()
    for x, y, t, p in events:
        out += bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])
    path.write_bytes(bytes(out))


def test_nmnist_bin_files(tmp_path):
    for split, digits in (("Train", (3, 7)), ("Test", (1,))):
        for dgt in digits:
            d = tmp_path / "NMNIST" / split / str(dgt)
            d.mkdir(parents=True)
            _nmnist_bin(d / "00001.bin", [(1, 2, 0, 1), (33, 33, 15_000, 0), (5, 6, 299_999, 1), (5, 6, 300_001, 1)])
    ds = load_dataset("nmnist", data_dir=str(tmp_path), steps=30, duration_s=0.3)
    assert ds.x_train.shape == (2, 30, 2312) and ds.y_train.tolist() == [3, 7] and ds.y_test.tolist() == [1]
    f = ds.x_train[0]
    assert f.sum() == 3  # the event at 300.001 ms lies past the window
    assert f[0, 1 * 34 * 34 + 2 * 34 + 1] == 1      # p=1, y=2, x=1 at t=0 -> bin 0
    assert f[1, 0 * 34 * 34 + 33 * 34 + 33] == 1    # p=0 at 15 ms -> bin 1 (10 ms bins)
    assert f[29, 1 * 34 * 34 + 6 * 34 + 5] == 1
    s = Encoder("events", 30)(ds.x_train)
    assert s.shape == (2, 30, 2312) and set(np.unique(s.numpy())) <= {0.0, 1.0}


def test_shd_h5_files(tmp_path):
    root = tmp_path / "SHD"
    root.mkdir()
    vlen_f = h5py.vlen_dtype(np.float32)
    vlen_u = h5py.vlen_dtype(np.uint16)
    for split, n in (("train", 3), ("test", 2)):
        with h5py.File(root / f"shd_{split}.h5", "w") as f:
            t = f.create_dataset("spikes/times", (n,), dtype=vlen_f)
            u = f.create_dataset("spikes/units", (n,), dtype=vlen_u)
            for i in range(n):
                t[i] = np.array([0.0, 0.5, 0.99, 1.2], np.float32)
                u[i] = np.array([0, 699, 10 + i, 3], np.uint16)
            f.create_dataset("labels", data=np.arange(n, dtype=np.uint16) + 5)
    ds = load_dataset("shd", data_dir=str(tmp_path), steps=50, duration_s=1.0)
    assert ds.x_train.shape == (3, 50, 700) and ds.n_classes == 20
    assert ds.y_train.tolist() == [5, 6, 7]
    assert ds.x_train[1, 0, 0] == 1 and ds.x_train[1, 25, 699] == 1 and ds.x_train[1, 49, 11] == 1
    assert ds.x_train[1].sum() == 3  # 1.2 s is past the window


def test_event_data_missing(tmp_path):
    for name in ("nmnist", "shd"):
        with pytest.raises(DatasetMissing) as e:
            load_dataset(name, data_dir=str(tmp_path))
        assert "\n" not in str(e.value) and "download" in str(e.value)


def test_digits_and_mnist1d_offline():
    d = load_dataset("digits")
    assert d.x_train.shape[1] == 64 and len(d.y_train) + len(d.y_test) == 1797
    assert 0 <= d.x_train.min() and d.x_train.max() <= 1
    d2 = load_dataset("digits")
    assert np.array_equal(d.y_test, d2.y_test)  # the split is seeded
    m = load_dataset("mnist1d")
    assert m.x_train.shape == (4000, 40) and m.x_test.shape == (1000, 40) and m.kind == "series"


def test_encoders_deterministic_and_exact():
    x = np.array([[0.0, 0.25, 0.5, 1.0]])
    s = Encoder("regular", 8)(x).numpy()[0]
    assert s.sum(0).tolist() == [0, 2, 4, 8]
    lat = Encoder("latency", 5)(x).numpy()[0]
    assert lat.sum(0).tolist() == [0, 1, 1, 1] and lat[3, 1] == 1 and lat[2, 2] == 1 and lat[0, 3] == 1
    r1 = Encoder("rate", 50, seed=3)(np.tile(x, (2, 1)), index=[7, 8]).numpy()
    r2 = Encoder("rate", 50, seed=3)(x, index=[8]).numpy()
    assert np.array_equal(r1[1], r2[0]) and not np.array_equal(r1[0], r1[1])
    th = Encoder("thermometer", 4, levels=3, lo=0.0, hi=1.0)(np.array([[0.1, 0.3, 0.6, 0.9]])).numpy()[0]
    assert th.tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]]
    padded = Encoder("regular", 8, pad=3)(x)
    assert padded.shape == (1, 11, 4) and padded[:, 8:].sum() == 0
    with pytest.raises(ValueError, match="unknown encoding"):
        Encoder("morse", 4)


def test_series_crossing_and_window_codes():
    x = np.array([[0.1, 0.3, 0.6, 0.9, 0.2]])
    th = Encoder("thermometer", 5, levels=3)(x).numpy()[0].astype(int)
    d = Encoder("delta", 5, levels=3)(x).numpy()[0].astype(int)
    # up-crossings where a level is first exceeded, down-crossings where it is left (levels .25/.5/.75)
    assert d[:, :3].tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert d[:, 3:].tolist() == [[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [1, 1, 1]]
    # the crossings integrate back to the thermometer code
    assert np.array_equal(np.cumsum(d[:, :3] - d[:, 3:], axis=0), th)
    both = Encoder("thermometer_delta", 5, levels=3, pad=2)(x).numpy()[0].astype(int)
    assert both.shape == (7, 9) and np.array_equal(both[:5], np.concatenate([th, d], axis=1)) and both[5:].sum() == 0
    w = Encoder("thermometer", 5, levels=3, window=3)
    assert w.series_channels() == 9 and Encoder("delta", 5, levels=4, window=2).series_channels() == 16
    ws = w(x).numpy()[0].astype(int)
    assert np.array_equal(ws[:, :3], th) and np.array_equal(ws[1:, 3:6], th[:-1]) and ws[0, 3:].sum() == 0
    assert np.array_equal(ws[2:, 6:9], th[:-2]) and ws[:2, 6:9].sum() == 0
    with pytest.raises(InputError, match="window must be >= 1"):
        Encoder("delta", 5, window=0)


def test_shd_malformed_files_are_one_line(tmp_path):
    from snnhw.errors import FileFormatError

    root = tmp_path / "SHD"
    root.mkdir()
    (root / "shd_train.h5").write_bytes(b"not an hdf5 file")
    (root / "shd_test.h5").write_bytes(b"not an hdf5 file")
    with pytest.raises(FileFormatError) as e:
        load_dataset("shd", data_dir=str(tmp_path))
    assert "shd_train.h5 is not an SHD file (needs spikes/times, spikes/units, labels)" in str(e.value)
    with h5py.File(root / "shd_train.h5", "w") as f:
        f.create_dataset("labels", data=np.arange(2, dtype=np.uint16))
    with pytest.raises(FileFormatError, match="is not an SHD file") as e:
        load_dataset("shd", data_dir=str(tmp_path))
    assert "\n" not in str(e.value)


def test_unknown_dataset_and_encoder_errors_are_input_errors():
    from snnhw.errors import InputError

    with pytest.raises(InputError, match="unknown dataset 'cifar'; choose one of digits, mnist1d"):
        load_dataset("cifar")
    with pytest.raises(InputError, match="event frames have 3 steps, the recipe says 4"):
        Encoder("events", 4)(np.zeros((1, 3, 2)))


def test_missing_data_package_is_one_line(monkeypatch, tmp_path):
    """torchvision and tonic are the [data] extra: without them the loader names the extra."""
    import sys

    from snnhw.data import datasets
    from snnhw.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes `import torchvision` fail
    with pytest.raises(MissingDependencyError,
                       match=r"needs torchvision, which is not installed \(pip install 'snnhw\[data\]'\)"):
        datasets.load_torchvision("mnist", str(tmp_path))
