"""The errors a user can cause. Everything else is a bug.

Raise one of these where the problem is found, with a one-line message that names the file, parameter
or value at fault and what would be legal. The CLI (:mod:`snnhw.cli`) prints ``snnhw: error: <message>``
and exits 2 for an :class:`SnnhwError`; any other exception is reported as an internal error with its
traceback (exit 1). The built-in base classes (``ValueError`` ...) are kept so that library callers can
still catch the familiar type.
"""
from __future__ import annotations


class SnnhwError(Exception):
    """Base of every user error; the message is one line."""


class InputError(SnnhwError, ValueError):
    """A bad value: a parameter, option, recipe key or array shape that is not legal."""


class FileFormatError(SnnhwError, ValueError):
    """A file that exists but cannot be read as what it claims to be (NIR, netx, checkpoint, .npy)."""


class MissingFileError(SnnhwError, FileNotFoundError):
    """A file or data set the user named (or a recipe needs) is not on disk."""


class MissingDependencyError(SnnhwError, ImportError):
    """An optional package (an extra such as ``snnhw[lava]``) is not installed."""


def one_line(e: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (a KeyError's key unquoted; the type name when empty),
    cut to ``limit`` characters."""
    s = str(e.args[0] if isinstance(e, KeyError) and e.args else e).strip()
    s = s.splitlines()[0] if s else type(e).__name__
    return s if len(s) <= limit else s[:limit - 3] + "..."
