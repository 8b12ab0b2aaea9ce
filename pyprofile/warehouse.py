"""The one module that talks to the warehouse (DuckDB through ibis and its own connection).

Everything else in pyprofile takes and returns Arrow tables or DataFrames. This module
opens the warehouse, reads tables (whole or in batches), runs read-only SQL, writes result
tables atomically, and publishes persisted SQL macros.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pyprofile.errors import InputError, WarehouseError

DEFAULT_DB = "pyprofile.duckdb"
DB_ENV = "PYPROFILE_DB"
# Files we write stay readable by DuckDB 1.x, which BI tools embed.
STORAGE_VERSION = "v1.0.0"

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_lock = threading.Lock()


def default_db_path() -> str:
    """The warehouse path used when none is given: ``$PYPROFILE_DB`` or ``pyprofile.duckdb``."""
    return os.environ.get(DB_ENV, DEFAULT_DB)


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


def _to_arrow(result: duckdb.DuckDBPyConnection | duckdb.DuckDBPyRelation) -> pa.Table:
    # DuckDB 2.0 dropped fetch_arrow_table in favour of to_arrow_table.
    for attr in ("to_arrow_table", "fetch_arrow_table", "arrow"):
        fn = getattr(result, attr, None)
        if fn is not None:
            out = fn()
            return out.read_all() if isinstance(out, pa.RecordBatchReader) else out
    raise WarehouseError("this DuckDB version cannot return Arrow tables")


def as_arrow(data: Any) -> pa.Table:
    """Accept an Arrow table, a record batch reader, or a pandas DataFrame."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise InputError(f"expected an Arrow table or pandas DataFrame, got {type(data).__name__}")


class Warehouse:
    """A DuckDB warehouse: a file path, or an open connection (e.g. a dbt Python model's session).

    >>> wh = Warehouse.open("demo.duckdb")
    >>> features = wh.read("features.customer_features")
    >>> wh.write("ml.customer_segments", segments)  # atomic create-or-replace
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, *, path: str | None = None, owned=False):
        self.con = con
        self.path = path
        self._owned = owned
        self._ibis = None
        self._depth = 0

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        target: str | os.PathLike | duckdb.DuckDBPyConnection | Warehouse | None = None,
        *,
        read_only: bool = False,
    ) -> Warehouse:
        """Open a warehouse file (created with a DuckDB-1.x-compatible format) or wrap a connection."""
        if isinstance(target, Warehouse):
            return target
        # dbt-duckdb hands Python models a cursor wrapper; unwrap it to the DuckDB connection.
        while not isinstance(target, duckdb.DuckDBPyConnection) and hasattr(target, "_cursor"):
            target = target._cursor
        if isinstance(target, duckdb.DuckDBPyConnection):
            return cls(target)
        if target is not None and not isinstance(target, str | os.PathLike):
            raise InputError(f"cannot open a warehouse from a {type(target).__name__}")
        path = str(target) if target is not None else default_db_path()
        if read_only and path != ":memory:" and not Path(path).exists():
            raise WarehouseError(f"warehouse {path} does not exist")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        config = {} if read_only else {"storage_compatibility_version": STORAGE_VERSION}
        attempts = [(read_only, config)]
        # The file may already be open in this process (e.g. by dbt, read-write): share it.
        attempts += [(False, {"storage_compatibility_version": STORAGE_VERSION}), (False, {})]
        for i, (ro, cfg) in enumerate(attempts):
            try:
                con = duckdb.connect(path, read_only=ro, config=cfg)
                break
            except duckdb.ConnectionException as exc:
                if "different configuration" not in str(exc) or i == len(attempts) - 1:
                    raise WarehouseError(f"cannot open warehouse {path}: {exc}") from exc
            except duckdb.Error as exc:
                raise WarehouseError(f"cannot open warehouse {path}: {exc}") from exc
        con.execute("set enable_progress_bar = false")
        return cls(con, path=path, owned=True)

    def close(self) -> None:
        if self._owned:
            self.con.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def ibis(self):
        """The ibis backend over the same connection (lazy)."""
        if self._ibis is None:
            import ibis

            self._ibis = ibis.duckdb.from_connection(self.con)
        return self._ibis

    # ------------------------------------------------------------------ metadata
    def exists(self, name: str) -> bool:
        schema, table = split_name(name)
        return bool(
            self.scalar(
                "select count(*) from information_schema.tables "
                "where table_schema = ? and table_name = ? and table_catalog = current_database()",
                [schema, table],
            )
        )

    def columns(self, name: str) -> dict[str, str]:
        """Column name -> DuckDB type of a table or view, in order."""
        schema, table = split_name(name)
        rows = self.con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = ? and table_catalog = current_database() "
            "order by ordinal_position",
            [schema, table],
        ).fetchall()
        if not rows:
            raise WarehouseError(f"table {name} does not exist in the warehouse")
        return dict(rows)

    def count(self, name: str) -> int:
        return int(self.scalar(f"select count(*) from {qualified(name)}"))

    def require(self, name: str, columns: Sequence[str] = ()) -> dict[str, str]:
        """Fail with a clear message if the table or any required column is missing."""
        if not self.exists(name):
            raise WarehouseError(f"table {name} does not exist in the warehouse")
        cols = self.columns(name)
        missing = [c for c in columns if c not in cols]
        if missing:
            raise InputError(
                f"table {name} lacks required column(s) {', '.join(missing)}; "
                f"it has {', '.join(cols)}"
            )
        return cols

    # ------------------------------------------------------------------ reading
    def table(self, name: str):
        """An ibis expression over a warehouse table, for lazy filtering and projection."""
        schema, table = split_name(name)
        return self.ibis.table(table, database=schema)

    def read(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Read a whole table (optionally a column subset) as Arrow, through ibis."""
        self.require(name, columns or ())
        expr = self.table(name)
        if columns:
            expr = expr.select(*columns)
        return expr.to_pyarrow()

    def batches(
        self, name: str, columns: Sequence[str] | None = None, *, batch_size: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        """Stream a table in Arrow record batches instead of loading it whole."""
        self.require(name, columns or ())
        expr = self.table(name)
        if columns:
            expr = expr.select(*columns)
        yield from expr.to_pyarrow_batches(chunk_size=batch_size)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """Run SQL and return the result as Arrow."""
        try:
            rel = self.con.sql(sql, params=list(params)) if params else self.con.sql(sql)
            return _to_arrow(rel)
        except duckdb.Error as exc:
            raise WarehouseError(f"query failed: {exc}") from exc

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """First value of the first row (None when there is no row)."""
        rows = self.con.execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.con.execute(sql, params or [])

    # ------------------------------------------------------------------ writing
    def write(self, name: str, data: Any, *, primary_key: Sequence[str] = ()) -> int:
        """Create or replace ``schema.table`` from Arrow/pandas data in one transaction.

        Readers see the old version or the new one, never half of it. ``primary_key``
        columns are checked for nulls and duplicates before anything is written.
        """
        arrow = as_arrow(data)
        for key in primary_key:
            if key not in arrow.column_names:
                raise InputError(f"{name}: key column {key} is missing")
        if primary_key:
            self._check_key(name, arrow, primary_key)
        return self.write_many({name: arrow})[name]

    def _check_key(self, name: str, arrow: pa.Table, key: Sequence[str]) -> None:
        view = f"__pyprofile_key_{threading.get_ident()}"
        cols = ", ".join(quote(k) for k in key)
        nulls = " or ".join(f"{quote(k)} is null" for k in key)
        self.con.register(view, arrow)
        try:
            n_null, n_dup = self.con.execute(
                f"select (select count(*) from {quote(view)} where {nulls}), "
                f"(select count(*) from (select {cols} from {quote(view)} "
                f"group by all having count(*) > 1))"
            ).fetchall()[0]
        finally:
            self.con.unregister(view)
        if n_null or n_dup:
            raise InputError(
                f"{name}: key ({', '.join(key)}) has {n_null} null row(s) and "
                f"{n_dup} duplicated value(s); nothing was written"
            )

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction; nested calls join the outer one (re-entrant)."""
        if self._depth:
            self._depth += 1
            try:
                yield self.con
            finally:
                self._depth -= 1
            return
        try:
            self.con.execute("begin transaction")
        except duckdb.TransactionException:
            yield self.con  # the caller's own open transaction provides atomicity
            return
        self._depth = 1
        try:
            yield self.con
            self.con.execute("commit")
        except BaseException:
            self.con.execute("rollback")
            raise
        finally:
            self._depth = 0

    def _atomic(self, statements: Sequence[str]) -> None:
        with self.transaction() as con:
            for sql in statements:
                con.execute(sql)

    def write_many(self, tables: dict[str, Any]) -> dict[str, int]:
        """Replace several tables in one transaction: all new versions appear together."""
        views, statements, counts = [], [], {}
        try:
            for i, (name, data) in enumerate(tables.items()):
                schema, _ = split_name(name)
                arrow = as_arrow(data)
                view = f"__pyprofile_src_{threading.get_ident()}_{i}"
                self.con.register(view, arrow)
                views.append(view)
                statements += [
                    f"create schema if not exists {quote(schema)}",
                    f"create or replace table {qualified(name)} as select * from {quote(view)}",
                ]
                counts[name] = arrow.num_rows
            with _lock:
                self._atomic(statements)
        finally:
            for view in views:
                self.con.unregister(view)
        return counts

    def publish_macro(self, name: str, params: Sequence[str], body: str) -> None:
        """Persist ``create or replace macro schema.name(params) as body`` in the warehouse file.

        Persisted macros are callable from any DuckDB client that opens the file, no Python needed.
        """
        schema, macro = split_name(name)
        args = ", ".join(quote(p) for p in params)
        self._atomic(
            [
                f"create schema if not exists {quote(schema)}",
                f"create or replace macro {quote(schema)}.{quote(macro)}({args}) as {body}",
            ]
        )
