"""``snnhw`` command line. Each sub-command lives in its own module under :mod:`snnhw.commands`.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Errors a user can cause (:class:`snnhw.errors.SnnhwError`: bad files, out-of-range parameters, missing
data or packages) end as one line on stderr and exit code 2. Anything else is a bug in snnhw: it is
reported as an internal error with its traceback and exit code 1. ``SNNHW_DEBUG=1`` shows the
traceback of user errors too.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

import snnhw
import snnhw.commands
from snnhw.errors import SnnhwError, one_line


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
    except SnnhwError as e:
        if os.environ.get("SNNHW_DEBUG"):
            raise
        print(f"snnhw: error: {one_line(e)}", file=sys.stderr)
        return 2
    except Exception:  # a bug in snnhw: say so, then let Python print the trace and exit 1
        print("snnhw: internal error — please report it with the traceback below", file=sys.stderr)
        raise


if __name__ == "__main__":
    sys.exit(main())
