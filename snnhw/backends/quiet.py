"""The one silencer for Lava and lava-dl: their imports, warnings and worker processes print to
stdout/stderr, which would break snnhw's one-line command output."""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence stdout and stderr at the file-descriptor level (so that output of C code and of Lava's
    forked worker processes is caught too) and at the Python level. Exceptions still propagate.
    With ``SNNHW_DEBUG`` set in the environment nothing is silenced."""
    if os.environ.get("SNNHW_DEBUG"):
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with open(os.devnull, "w") as dn, contextlib.redirect_stdout(dn), contextlib.redirect_stderr(dn):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + [devnull]:
            os.close(fd)
