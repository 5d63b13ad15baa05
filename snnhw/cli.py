"""``snnhw`` command line. Each sub-command lives in its own module under :mod:`snnhw.commands`.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Errors a user can cause (bad files, out-of-range parameters, missing data) end as one line on stderr
and a non-zero exit code, never a traceback; set ``SNNHW_DEBUG=1`` to see the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

import snnhw.commands


class UserError(Exception):
    """An error caused by the user's input; printed as one line."""


def _commands():
    mods = {}
    for info in pkgutil.iter_modules(snnhw.commands.__path__):
        if info.name.startswith("_"):
            continue
        mods[info.name.replace("_", "-")] = f"snnhw.commands.{info.name}"
    return dict(sorted(mods.items()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snnhw", description="Train SNNs on Loihi 2 arithmetic; export to "
                                     "NIR and Lava/netx; verify on Lava.")
    parser.add_argument("--version", action="version", version=f"snnhw {snnhw.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, modname in _commands().items():
        mod = importlib.import_module(modname)
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("snnhw: interrupted", file=sys.stderr)
        return 130
    except (UserError, ValueError, FileNotFoundError, OSError, KeyError) as e:
        if os.environ.get("SNNHW_DEBUG"):
            raise
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"snnhw: error: {msg}", file=sys.stderr)
        return 2


import snnhw  # noqa: E402  (for __version__)

if __name__ == "__main__":
    sys.exit(main())
