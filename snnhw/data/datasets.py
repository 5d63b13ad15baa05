"""Datasets for the recipes, as plain numpy arrays (features, or event frames, plus int labels).

=============  ============================  ==========================================================
name           source                        what ``load_dataset`` returns
=============  ============================  ==========================================================
``digits``     scikit-learn ``load_digits``  8x8 images scaled to [0, 1] (64 features); stratified
               (ships with the package)      80/20 split seeded by ``split_seed``
``mnist1d``    ``mnist1d`` (generated        40-sample series (4000 train / 1000 test), scaled to
               offline)                      ~[0, 1] by the train set's 1st/99th percentiles
``mnist``      torchvision ``MNIST`` files   28x28 images in [0, 1] (784 features)
``fmnist``     torchvision ``FashionMNIST``  28x28 images in [0, 1]
``nmnist``     N-MNIST ``.bin`` files read   event frames [N, steps, 2*34*34] (count per bin; the
               by ``tonic.io``               channel index is ``p*34*34 + y*34 + x``)
``shd``        SHD ``shd_{train,test}.h5``   event frames [N, steps, 700] over ``duration_s`` seconds
               (tonic's layout)
=============  ============================  ==========================================================

Files are looked up under ``data_dir`` in the layouts torchvision and tonic create; a missing dataset
raises :class:`DatasetMissing` with one line saying what to download and where.
"""
from __future__ import annotations

import glob
import importlib
import os
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from snnhw.errors import FileFormatError, InputError, MissingDependencyError, MissingFileError

DATASETS = ("digits", "mnist1d", "mnist", "fmnist", "nmnist", "shd")
EVENT_DATASETS = ("nmnist", "shd")  # the datasets of event frames (recipe encoding "events")

DIGITS_MAX = 16.0  # scikit-learn's 8x8 digits hold pixel counts 0..16
PIXEL_MAX = float(np.iinfo(np.uint8).max)  # torchvision's MNIST / FashionMNIST hold uint8 pixels (0..255)
NMNIST_SIDE = 34  # N-MNIST's sensor is 34 x 34 pixels, two polarities
SHD_CHANNELS = 700  # SHD's cochlea model has 700 channels
NMNIST_DURATION_S = 0.3  # default binned window: an N-MNIST recording lasts ~300 ms (three saccades)
SHD_DURATION_S = 1.0  # default binned window: SHD's spoken digits last up to ~1 s
MNIST1D_SEED = 42  # mnist1d's own default generator seed: split_seed 0 gives mnist1d's default dataset


class DatasetMissing(MissingFileError):
    """The dataset's files are not on disk. The message says what to download and where."""


@dataclass
class Dataset:
    """Train/test arrays. ``kind`` is "static" (features in [0, 1]), "series" ([N, L]) or "events"
    ([N, steps, channels] counts). ``feature_shape`` is the shape of one sample's features (for
    images (1, H, W) so conv recipes can reshape)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    kind: str
    feature_shape: Tuple[int, ...]


def n_folds(fraction: float) -> int:
    """How many disjoint validation folds a share ``fraction`` gives (``data.val_fold`` < this)."""
    return max(1, int(round(1.0 / fraction)))


def _split(x, y, test_fraction: float, seed: int, fold: int = 0):
    """Stratified split, deterministic in ``seed``: per class, shuffle and take the share ``test_fraction``
    as test. ``fold`` k takes the k-th such share of the shuffled class instead of the first (k-fold
    cross-validation: folds 0..round(1/test_fraction)-1 are disjoint, the last one also takes the
    remainder, so together they cover every sample once); fold 0 is the plain split."""
    rng = np.random.default_rng(seed)
    test_idx = []
    last = fold == n_folds(test_fraction) - 1
    for c in np.unique(y):
        idx = np.nonzero(y == c)[0]
        rng.shuffle(idx)
        n = int(round(len(idx) * test_fraction))
        test_idx.extend(idx[fold * n: None if last else (fold + 1) * n].tolist())
    test = np.zeros(len(y), dtype=bool)
    test[test_idx] = True
    return x[~test], y[~test], x[test], y[test]


def load_digits(split_seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    from sklearn.datasets import load_digits as _ld

    d = _ld()
    x = (d.data / DIGITS_MAX).astype(np.float32)
    y = d.target.astype(np.int64)
    xtr, ytr, xte, yte = _split(x, y, test_fraction, split_seed)
    return Dataset("digits", xtr, ytr, xte, yte, 10, "static", (1, 8, 8))


def load_mnist1d(split_seed: int = 0) -> Dataset:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = MNIST1D_SEED + int(split_seed)
    d = make_dataset(args)
    xtr, xte = np.asarray(d["x"], dtype=np.float64), np.asarray(d["x_test"], dtype=np.float64)
    lo, hi = np.percentile(xtr, 1), np.percentile(xtr, 99)
    scale = lambda a: ((a - lo) / (hi - lo)).astype(np.float32)  # noqa: E731
    return Dataset("mnist1d", scale(xtr), np.asarray(d["y"], np.int64), scale(xte),
                   np.asarray(d["y_test"], np.int64), 10, "series", (xtr.shape[1],))


_TV = {"mnist": ("MNIST", "MNIST"), "fmnist": ("FashionMNIST", "FashionMNIST")}


def _require(module: str, dataset: str):
    """Import an optional data package, or raise a one-line :class:`MissingDependencyError`."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module.split(".")[0]:
            raise
        raise MissingDependencyError(f"the {dataset} loader needs {e.name}, which is not installed "
                                     f"(pip install 'snnhw[data]')") from None


def load_torchvision(name: str, data_dir: str) -> Dataset:
    torchvision = _require("torchvision", name)

    cls_name, folder = _TV[name]
    raw = os.path.join(data_dir, folder, "raw")
    need = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte"]
    missing = [f for f in need if not os.path.exists(os.path.join(raw, f))]
    if missing:
        raise DatasetMissing(
            f"{cls_name} not found: expected {', '.join(need)} in {raw} (download with "
            f"python -c \"import torchvision; torchvision.datasets.{cls_name}('{data_dir}', download=True)\")")
    cls = getattr(torchvision.datasets, cls_name)
    tr = cls(data_dir, train=True, download=False)
    te = cls(data_dir, train=False, download=False)
    f = lambda d: (d.data.numpy().reshape(len(d.data), -1) / PIXEL_MAX).astype(np.float32)  # noqa: E731
    return Dataset(name, f(tr), tr.targets.numpy().astype(np.int64), f(te),
                   te.targets.numpy().astype(np.int64), 10, "static", (1, 28, 28))


def _frames(t_us: np.ndarray, ch: np.ndarray, n_ch: int, steps: int, duration_us: float) -> np.ndarray:
    """Count events per (bin, channel): bin = floor(t * steps / duration), events past the end dropped."""
    b = np.floor(np.asarray(t_us, np.float64) * steps / duration_us).astype(np.int64)
    keep = (b >= 0) & (b < steps) & (ch >= 0) & (ch < n_ch)
    out = np.zeros((steps, n_ch), dtype=np.uint8)
    np.add.at(out, (b[keep], np.asarray(ch)[keep]), 1)
    return out


def load_nmnist(data_dir: str, steps: int, duration_s: float = NMNIST_DURATION_S,
                max_samples: Optional[int] = None) -> Dataset:
    """N-MNIST from ``<data_dir>/NMNIST/{Train,Test}/<digit>/*.bin`` (the extracted archives tonic
    downloads), read with ``tonic.io.read_mnist_file`` and binned into ``steps`` frames."""
    read_mnist_file = _require("tonic.io", "nmnist").read_mnist_file

    root = os.path.join(data_dir, "NMNIST")
    dtype = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])
    parts = []
    for split in ("Train", "Test"):
        files = sorted(glob.glob(os.path.join(root, split, "[0-9]", "*.bin")))
        if not files:
            raise DatasetMissing(
                f"N-MNIST not found: expected {os.path.join(root, split)}/<digit>/*.bin (download and extract "
                f"train.zip/test.zip from https://www.garrickorchard.com/datasets/n-mnist into {root}, or "
                f"run tonic.datasets.NMNIST('{data_dir}'))")
        if max_samples:
            files = files[:max_samples]
        xs, ys = [], []
        for fpath in files:
            ev = read_mnist_file(fpath, dtype=dtype)
            ch = (ev["p"] * NMNIST_SIDE + ev["y"]) * NMNIST_SIDE + ev["x"]
            xs.append(_frames(ev["t"], ch, 2 * NMNIST_SIDE * NMNIST_SIDE, steps, duration_s * 1e6))
            ys.append(int(os.path.basename(os.path.dirname(fpath))))
        parts.append((np.stack(xs), np.asarray(ys, np.int64)))
    (xtr, ytr), (xte, yte) = parts
    return Dataset("nmnist", xtr, ytr, xte, yte, 10, "events", (2, NMNIST_SIDE, NMNIST_SIDE))


def _read_shd_file(path: str, steps: int, duration_s: float, max_samples: Optional[int]):
    """(frames [N, steps, 700], labels [N]) of one SHD file; a file without SHD's layout is a
    :class:`~snnhw.errors.FileFormatError`."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            n = len(f["labels"]) if not max_samples else min(max_samples, len(f["labels"]))
            xs = [_frames(np.asarray(f["spikes/times"][i]) * 1e6, np.asarray(f["spikes/units"][i]).astype(np.int64),
                          SHD_CHANNELS, steps, duration_s * 1e6) for i in range(n)]
            ys = np.asarray(f["labels"][:n], dtype=np.int64)
    except (OSError, KeyError) as e:  # h5py: not an HDF5 file / a dataset missing
        raise FileFormatError(f"{path} is not an SHD file (needs spikes/times, spikes/units, labels): "
                              f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return np.stack(xs), ys


def load_shd(data_dir: str, steps: int, duration_s: float = SHD_DURATION_S,
             max_samples: Optional[int] = None) -> Dataset:
    """SHD from ``<data_dir>/SHD/shd_{train,test}.h5`` (Zenke lab's files, as tonic stores them):
    ``spikes/times`` (s), ``spikes/units`` (0..699) and ``labels`` (0..19)."""
    root = os.path.join(data_dir, "SHD")
    parts = []
    for split in ("train", "test"):
        path = os.path.join(root, f"shd_{split}.h5")
        if not os.path.exists(path):
            raise DatasetMissing(
                f"SHD not found: expected {path} (download shd_train.h5.zip and shd_test.h5.zip from "
                f"https://zenkelab.org/datasets/ and unzip them into {root}, or run tonic.datasets.SHD('{data_dir}'))")
        parts.append(_read_shd_file(path, steps, duration_s, max_samples))
    (xtr, ytr), (xte, yte) = parts
    return Dataset("shd", xtr, ytr, xte, yte, 20, "events", (SHD_CHANNELS,))


def load_dataset(name: str, *, data_dir: str = "data", steps: int = 16, split_seed: int = 0,
                 duration_s: Optional[float] = None, max_samples: Optional[int] = None) -> Dataset:
    """Load dataset ``name`` (one of :data:`DATASETS`)."""
    if name == "digits":
        return load_digits(split_seed)
    if name == "mnist1d":
        return load_mnist1d(split_seed)
    if name in _TV:
        return load_torchvision(name, data_dir)
    if name == "nmnist":
        return load_nmnist(data_dir, steps, duration_s or NMNIST_DURATION_S, max_samples)
    if name == "shd":
        return load_shd(data_dir, steps, duration_s or SHD_DURATION_S, max_samples)
    raise InputError(f"unknown dataset '{name}'; choose one of {', '.join(DATASETS)}")
