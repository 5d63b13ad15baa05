"""snnhw: Loihi 2 fixed-point SNN training, export and verification."""
__version__ = "0.1.0"
