"""The one place where values become SQL text: identifiers, table names and literals.

Everything else in pyprofile either binds values as query parameters or goes through these
helpers. Identifiers are quoted (embedded quotes doubled); table names must be
``schema.table`` of plain identifiers; numbers are written as exact DOUBLE literals and text
as single-quoted strings with embedded quotes doubled.
"""

from __future__ import annotations

import math
import re

from pyprofile.errors import InputError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote(identifier: str) -> str:
    """Quote one SQL identifier (any name without NUL; embedded quotes are doubled)."""
    if not isinstance(identifier, str) or not identifier or "\x00" in identifier:
        raise InputError(f"invalid SQL identifier {identifier!r}")
    return '"' + identifier.replace('"', '""') + '"'


def split_name(name: str, default_schema: str = "main") -> tuple[str, str]:
    """Split ``schema.table`` (or ``table``) and validate both parts as plain identifiers."""
    parts = name.split(".") if isinstance(name, str) else []
    if len(parts) == 1:
        parts = [default_schema, parts[0]]
    if len(parts) != 2 or not all(_IDENT.match(p) for p in parts):
        raise InputError(
            f"invalid table name {name!r}: use schema.table with letters, digits and underscores"
        )
    return parts[0], parts[1]


def qualified(name: str) -> str:
    """``schema.table`` as a quoted SQL reference."""
    schema, table = split_name(name)
    return f"{quote(schema)}.{quote(table)}"


def number(value: float) -> str:
    """A float as an exact DOUBLE literal (17 significant digits round-trip).

    Scientific notation is a DOUBLE in DuckDB and Spark; negative values are parenthesised,
    since ``x - -1e0`` would start a ``--`` comment.
    """
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"cannot write the non-finite value {value} into SQL")
    text = f"{value:.17e}"
    return f"({text})" if value < 0 else text


def string(value: object) -> str:
    """A text literal: single-quoted, embedded single quotes doubled."""
    text = str(value)
    if "\x00" in text:
        raise InputError(f"cannot write a text value with a NUL character into SQL: {text!r}")
    return "'" + text.replace("'", "''") + "'"


def as_double(column: str) -> str:
    """``cast("column" as double)``."""
    return f"cast({quote(column)} as double)"
