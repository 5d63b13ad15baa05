"""A tiny digits recipe (64-32-10, T=8) for tests that run `snnhw train` end to end in seconds."""

TINY = """
[recipe]
name = "tiny"
[data]
dataset = "digits"
encoding = "regular"
steps = 8
verify_samples = 24
[model]
layers = [{ kind = "dense", name = "fc1", out = 32 }, { kind = "dense", name = "fc2", out = 10 }]
[neuron]
i_decay = 1024
v_decay = 256
[init]
method = "hardware-calibrated"
target_rate = 0.1
calib_samples = 64
[train]
epochs = EPOCHS
batch_size = 128
lr = 0.01
seed = 0
logit_scale = 0.5
"""


def tiny_recipe(tmp_path, epochs: int = 2, name: str = "tiny.toml") -> str:
    """Write the tiny recipe with ``epochs`` into ``tmp_path/name``; returns its path."""
    p = tmp_path / name
    p.write_text(TINY.replace("EPOCHS", str(epochs)))
    return str(p)


def train_on_kernels(tmp_path, monkeypatch, kernels, epochs: int = 1):
    """Run ``snnhw train`` on the tiny recipe once per ``SNNHW_KERNEL`` value in ``kernels``; returns
    ``{kernel: (report without its times, trained state dict)}``."""
    import json

    import torch

    from snnhw.train.pipeline import RunOptions, run

    recipe = tiny_recipe(tmp_path, epochs)
    out = {}
    for k in kernels:
        monkeypatch.setenv("SNNHW_KERNEL", k)
        run(RunOptions(recipe=recipe, out=str(tmp_path / k), progress=False), log=lambda m: None)
        report = json.loads((tmp_path / k / "report.json").read_text())
        report.pop("times")
        out[k] = (report, torch.load(tmp_path / k / "checkpoint.pt", weights_only=False)["model"])
    return out


def assert_same_runs(runs, a: str, b: str) -> None:
    """Two :func:`train_on_kernels` runs give the same report (apart from times) and the same weights."""
    import torch

    (ra, wa), (rb, wb) = runs[a], runs[b]
    assert ra == rb
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[n], wb[n]) for n in wb)
