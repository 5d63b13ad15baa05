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
