"""Typed TOML configuration: the one place where a configuration table is checked.

A recipe (:mod:`snnhw.train.recipe`) and a hardware target (:mod:`snnhw.targets`) are TOML files whose
tables map onto dataclasses: a table's legal keys are the dataclass's fields, a key left out takes the
field's default, and a field's legal values are declared next to it with :func:`option` (a range, a set
of choices, required). :func:`parse_table` and :func:`parse_sections` apply those declarations; every
violation is a one-line error of the caller's :class:`~snnhw.errors.InputError` subclass naming the
file, the key, the value and what is legal. Values are stored as written (an integer given for a float
field stays an integer), so a configuration turned back into a dict (:func:`to_table`) is what the
file said, with the defaults filled in.
"""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Type

from snnhw.errors import InputError

try:
    import tomllib  # type: ignore[attr-defined]
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", list: "list"}


def option(default: Any = None, *, lo: Optional[float] = None, hi: Optional[float] = None, lo_open: bool = False,
           hi_open: bool = False, choices: Optional[Sequence[str]] = None, required: bool = False,
           default_factory=None) -> Any:
    """A dataclass field with its legal values: ``lo``/``hi`` bounds (closed unless ``*_open``),
    ``choices`` (a string must be one of them) and ``required`` (the key must be given)."""
    meta = {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open, "choices": tuple(choices or ()) or None,
            "required": required}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def legal(meta: Mapping) -> str:
    """What a field's declaration allows, in words ("must be >= 1", "must lie in [0, 1)")."""
    lo, hi = meta.get("lo"), meta.get("hi")
    if meta.get("choices"):
        return f"must be one of {', '.join(meta['choices'])}"
    if lo is not None and hi is not None:
        return (f"must lie in {'(' if meta['lo_open'] else '['}{lo}, {hi}{')' if meta['hi_open'] else ']'}")
    if lo is not None:
        return f"must be {'>' if meta['lo_open'] else '>='} {lo}"
    if hi is not None:
        return f"must be {'<' if meta['hi_open'] else '<='} {hi}"
    return ""


def _in_range(meta: Mapping, value) -> bool:
    if meta.get("choices") and value not in meta["choices"]:
        return False
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value <= lo if meta["lo_open"] else value < lo):
        return False
    if hi is not None and (value >= hi if meta["hi_open"] else value > hi):
        return False
    return True


def _base_type(tp) -> type:
    """``int`` for ``int`` and ``Optional[int]``; ``list`` for ``List[...]``."""
    if typing.get_origin(tp) is typing.Union:
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    return typing.get_origin(tp) or tp


def _type_ok(base: type, value) -> bool:
    if base is bool:
        return isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if base is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base in (str, list):
        return isinstance(value, base)
    return True


def parse_table(cls: Type, table: Mapping, where: str, prefix: str, error: Type[InputError]) -> Any:
    """``cls(**table)`` after checking every key, type and range; ``prefix`` names the table in messages
    (``train`` -> ``'train.lr'``). Raises ``error`` (one line)."""
    if not isinstance(table, Mapping):
        raise error(f"{where}: '{prefix}' must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in table.items():
        if key not in fields:
            raise error(f"{where}: unknown key '{prefix}.{key}' (known: {', '.join(fields)})")
        base = _base_type(hints[key])
        if not _type_ok(base, value):
            raise error(f"{where}: '{prefix}.{key}' must be {_TYPE_NAMES.get(base, base.__name__)}, got {value!r}")
        meta = fields[key].metadata
        if meta and not _in_range(meta, value):
            raise error(f"{where}: {prefix}.{key} {legal(meta)}, got {value!r}")
    for name, f in fields.items():
        if f.metadata.get("required") and name not in table:
            rule = legal(f.metadata)
            raise error(f"{where}: '{prefix}.{name}' is required"
                        f" ({_TYPE_NAMES.get(_base_type(hints[name]), '')}{'; ' + rule if rule else ''})")
    return cls(**table)


def parse_sections(doc: Mapping, sections: Mapping[str, Type], where: str, error: Type[InputError]
                   ) -> Dict[str, Any]:
    """Each top-level table of a TOML document parsed into its section's dataclass; a section that is
    not in the document is missing from the result. Unknown sections are an error."""
    out = {}
    for name, table in doc.items():
        if name not in sections:
            raise error(f"{where}: unknown section '[{name}]' (known: {', '.join(sections)})")
        out[name] = parse_table(sections[name], table, where, name, error)
    return out


def to_table(obj: Any) -> Any:
    """A configuration dataclass back as plain dicts and lists, in field order; fields left at ``None``
    (keys the file did not give and that have no default) are left out."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_table(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if getattr(obj, f.name) is not None}
    if isinstance(obj, (list, tuple)):
        return [to_table(v) for v in obj]
    return obj


def read_toml(name_or_path: str, directory: Path, what: str, error: Type[InputError]) -> Tuple[Path, Dict]:
    """Find ``name_or_path`` (a ``.toml`` path, or ``<directory>/<name>.toml``) and read it.

    ``what`` names the kind of file in messages ("recipe", "target")."""
    p = Path(name_or_path)
    if not (p.suffix == ".toml" and p.exists()):
        p = directory / f"{name_or_path}.toml"
        if not p.exists():
            names = sorted(q.stem for q in directory.glob("*.toml"))
            raise error(f"unknown {what} '{name_or_path}'; choose one of {', '.join(names)} "
                        f"or give a path to a .toml file")
    try:
        with open(p, "rb") as f:
            return p, tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise error(f"{what} {p}: {str(e).splitlines()[0]}") from None
    except UnicodeDecodeError as e:
        raise error(f"{what} {p}: not a UTF-8 TOML file ({e.reason})") from None
