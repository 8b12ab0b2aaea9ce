"""The DuckDB engine: a warehouse file (or an open connection, e.g. a dbt Python model's).

Files are written in DuckDB storage version v1.0.0, so DuckDB 1.x clients (which BI tools
embed) open them. Tables are replaced in one transaction; macros are persisted in the file.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pyprofile.errors import InputError, WarehouseError
from pyprofile.models.data import as_arrow
from pyprofile.warehouse.engine import Warehouse
from pyprofile.warehouse.sql import qualified, quote, split_name
from pyprofile.warehouse.tables import SCHEMAS

# Files we write stay readable by DuckDB 1.x, which BI tools embed.
STORAGE_VERSION = "v1.0.0"
_lock = threading.Lock()


def _connection(target: Any) -> duckdb.DuckDBPyConnection | None:
    """The DuckDB connection inside ``target`` (dbt-duckdb hands Python models a cursor
    wrapper), or None when ``target`` is not a connection."""
    while not isinstance(target, duckdb.DuckDBPyConnection) and hasattr(target, "_cursor"):
        target = target._cursor
    return target if isinstance(target, duckdb.DuckDBPyConnection) else None


def _to_arrow(result: Any) -> pa.Table:
    # DuckDB 2.0 dropped fetch_arrow_table in favour of to_arrow_table.
    for attr in ("to_arrow_table", "fetch_arrow_table", "arrow"):
        fn = getattr(result, attr, None)
        if fn is not None:
            out = fn()
            return out.read_all() if isinstance(out, pa.RecordBatchReader) else out
    raise WarehouseError("this DuckDB version cannot return Arrow tables")


def _check_is_duckdb(path: str) -> None:
    """Refuse a file that is not a DuckDB database (DuckDB would open a CSV as a read-only
    table and the user would get a puzzling "table does not exist" later)."""
    file = Path(path)
    if path == ":memory:" or not file.is_file() or file.stat().st_size == 0:
        return
    with file.open("rb") as handle:
        header = handle.read(12)
    if header[8:12] != b"DUCK":
        raise WarehouseError(
            f"{path} is not a DuckDB warehouse file: pass the .duckdb file with --db, "
            "or load an export into one with `pyprofile load`"
        )


def _check_name(path: str) -> None:
    """A warehouse file named like a schema pyprofile writes (raw.duckdb) makes DuckDB fail on
    every qualified name with "ambiguous reference to catalog or schema": say so up front."""
    catalog = Path(path).stem.lower()
    if path != ":memory:" and catalog in SCHEMAS:
        raise InputError(
            f"warehouse file {path} is named like the schema {catalog}, which pyprofile writes; "
            f"DuckDB cannot tell the two apart: rename the file (e.g. {catalog}_warehouse.duckdb)"
        )


class DuckDBWarehouse(Warehouse):
    """A DuckDB warehouse: a file path, or an open connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, *, path: str | None = None, owned=False):
        self.con = con
        self.path = path
        self._owned = owned
        self._ibis = None
        self._depth = 0

    # ------------------------------------------------------------------ opening
    @classmethod
    def accepts(cls, target: Any) -> bool:
        return isinstance(target, str | os.PathLike) or _connection(target) is not None

    @classmethod
    def connect(cls, target: Any, *, read_only: bool = False) -> DuckDBWarehouse:
        """Open a warehouse file (created DuckDB-1.x-compatible) or wrap a connection."""
        con = _connection(target)
        if con is not None:
            return cls(con)
        path = str(target)
        if read_only and path != ":memory:" and not Path(path).exists():
            raise WarehouseError(f"warehouse {path} does not exist")
        _check_is_duckdb(path)
        _check_name(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        compatible = {"storage_compatibility_version": STORAGE_VERSION}
        # The file may already be open in this process (e.g. by dbt, read-write): share it.
        attempts = [(read_only, {} if read_only else compatible), (False, compatible), (False, {})]
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

    # ------------------------------------------------------------------ reading
    def table(self, name: str):
        """An ibis expression over a warehouse table, for lazy filtering and projection."""
        schema, table = split_name(name)
        return self.ibis.table(table, database=schema)

    def read(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        self.require(name, columns or ())
        expr = self.table(name)
        if columns:
            expr = expr.select(*columns)
        return expr.to_pyarrow()

    def batches(
        self, name: str, columns: Sequence[str] | None = None, *, batch_size: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        self.require(name, columns or ())
        selected = ", ".join(quote(c) for c in columns) if columns else "*"
        # a cursor of its own: the stream stays valid while this connection runs other
        # statements (e.g. writing what the batches become). A relation streams; the reader
        # of an executed (DB-API) result first copies every row of it
        cursor = self.con.cursor()
        try:
            relation = cursor.sql(f"select {selected} from {qualified(name)}")
            yield from relation.to_arrow_reader(batch_size)
        finally:
            cursor.close()

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        try:
            rel = self.con.sql(sql, params=list(params)) if params else self.con.sql(sql)
            return _to_arrow(rel)
        except duckdb.Error as exc:
            raise WarehouseError(f"query failed: {exc}") from exc

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        rows = self.con.execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        try:
            self.con.execute(sql, params or [])
        except duckdb.Error as exc:
            raise WarehouseError(f"statement failed: {exc}") from exc

    # ------------------------------------------------------------------ writing
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
            # a failed commit (e.g. a full disk) may have ended the transaction already: never
            # let "cannot rollback" hide the real cause
            with contextlib.suppress(duckdb.Error):
                self.con.execute("rollback")
            raise
        finally:
            self._depth = 0

    def _atomic(self, statements: Sequence[str]) -> None:
        try:
            with self.transaction() as con:
                for sql in statements:
                    con.execute(sql)
        except duckdb.Error as exc:
            raise WarehouseError(f"writing to warehouse {self.path or ''} failed: {exc}") from exc

    def write_many(self, tables: dict[str, Any]) -> dict[str, int]:
        views, statements = [], []
        try:
            for i, (name, data) in enumerate(tables.items()):
                schema, _ = split_name(name)
                source = data if isinstance(data, pa.RecordBatchReader) else as_arrow(data)
                view = f"__pyprofile_src_{threading.get_ident()}_{i}"
                self.con.register(view, source)  # a reader is scanned once, batch by batch
                views.append(view)
                statements += [
                    f"create schema if not exists {quote(schema)}",
                    f"create or replace table {qualified(name)} as select * from {quote(view)}",
                ]
            with _lock, self.transaction():
                self._atomic(statements)
                return {name: self.count(name) for name in tables}
        finally:
            for view in views:
                self.con.unregister(view)

    def drop(self, tables: Sequence[str] = (), functions: Sequence[str] = ()) -> None:
        kinds = dict(
            self.con.execute(
                "select schema_name || '.' || function_name, function_type "
                "from duckdb_functions() where database_name = current_database() "
                "and function_type in ('macro', 'table_macro')"
            ).fetchall()
        )
        statements = [f"drop table if exists {qualified(name)}" for name in tables]
        for name in functions:
            if name in kinds:
                table = "table " if kinds[name] == "table_macro" else ""
                statements.append(f"drop macro {table}if exists {qualified(name)}")
        self._atomic(statements)

    @contextmanager
    def scratch(self, data: Any) -> Iterator[str]:
        view = f"__pyprofile_scratch_{uuid.uuid4().hex}"
        self.con.register(view, as_arrow(data))
        try:
            yield f"temp.{view}"
        finally:
            self.con.unregister(view)

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
