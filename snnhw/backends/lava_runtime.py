"""Whether Lava is here and how it runs: availability checks (one-line
:class:`~snnhw.errors.MissingDependencyError` when it is missing), the run configuration (Lava's
bit-accurate CPU models, or Loihi 2 through lava-loihi) and lava-loihi's host <-> chip spike adapters.

Lava is imported lazily, inside the functions: this module imports without Lava installed.
"""
from __future__ import annotations

import importlib.util
from typing import Optional

from snnhw.errors import MissingDependencyError

#: How to get Lava: lava-nc 0.10 and lava-dl 0.6 support Python 3.10 only.
INSTALL_HINT = "pip install 'snnhw[lava]' on Python 3.10"


def lava_available() -> bool:
    """True iff lava-nc (its process library and CPU runtime) can be imported."""
    try:
        return (importlib.util.find_spec("lava.proc.lif") is not None
                and importlib.util.find_spec("lava.magma.core.run_configs") is not None)
    except (ImportError, ValueError):
        return False


def loihi2_hardware_available() -> bool:
    """True iff lava-loihi (Intel's Loihi extension of Lava) is installed, per
    ``lava.utils.loihi.is_installed()`` (it looks for ``lava.utils.loihi2_profiler``)."""
    if not lava_available():
        return False
    from lava.utils import loihi as lava_loihi

    return bool(lava_loihi.is_installed())


def require_lava(message: Optional[str] = None) -> None:
    """Raise :class:`MissingDependencyError` unless lava-nc is installed; ``message`` (one line, naming
    :data:`INSTALL_HINT`) says what needed it, else a generic one is used."""
    if not lava_available():
        raise MissingDependencyError(message or f"lava-nc is not installed: the Lava backend needs lava-nc 0.10 "
                                                f"({INSTALL_HINT})")


def require_hardware() -> None:
    """Raise :class:`MissingDependencyError` unless lava-loihi (Loihi 2 hardware) is installed."""
    if not loihi2_hardware_available():
        raise MissingDependencyError("Loihi 2 hardware requested but lava-loihi is not installed "
                                     "(Intel's Lava extension; the host must be set up for it)")


def missing_lava_dl(e: ModuleNotFoundError) -> MissingDependencyError:
    """The error for a failed ``import lava.lib.dl...`` (call it only for a missing ``lava`` module)."""
    return MissingDependencyError(f"lava-dl is not installed (no module {e.name!r}): running a netx file "
                                  f"on Lava needs lava-dl 0.6 ({INSTALL_HINT})")


def run_cfg(hardware: bool):
    """``Loihi2HwCfg()`` on the chip, else ``Loihi2SimCfg(select_tag="fixed_pt")`` (bit-accurate CPU)."""
    if hardware:
        from lava.magma.core.run_configs import Loihi2HwCfg

        return Loihi2HwCfg()
    from lava.magma.core.run_configs import Loihi2SimCfg

    return Loihi2SimCfg(select_tag="fixed_pt")


def hw_in_adapter(port):
    """Host -> chip spike adapter (lava-loihi's embedded_io; only present with lava-loihi)."""
    from lava.proc import embedded_io as eio

    ad = eio.spike.PyToNxAdapter(shape=port.shape)
    port.connect(ad.inp)
    return ad.out


def hw_out_adapter(port):
    """Chip -> host spike adapter (lava-loihi's embedded_io)."""
    from lava.proc import embedded_io as eio

    ad = eio.spike.NxToPyAdapter(shape=port.shape)
    port.connect(ad.inp)
    return ad.out
