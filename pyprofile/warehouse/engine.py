"""The engine seam: what pyprofile needs from a SQL warehouse, whatever the engine.

:class:`Warehouse` is the interface every engine implements (DuckDB today): read a table as
Arrow (whole or in batches), run a query with bound parameters, write tables atomically,
publish scoring functions, and group statements in a transaction. Flows and the registry talk
to this interface only; :meth:`Warehouse.open` picks the implementation for a target (a
file path, an open connection, or a warehouse already open).
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from pyprofile.errors import InputError, WarehouseError
from pyprofile.models.data import as_arrow
from pyprofile.warehouse.sql import qualified, quote

DEFAULT_DB = "pyprofile.duckdb"
DB_ENV = "PYPROFILE_DB"


def default_db_path() -> str:
    """The warehouse path used when none is given: ``$PYPROFILE_DB`` or ``pyprofile.duckdb``."""
    return os.environ.get(DB_ENV, DEFAULT_DB)


class Warehouse(abc.ABC):
    """A SQL warehouse that pyprofile reads features from and writes results to.

    >>> wh = Warehouse.open("demo.duckdb")
    >>> features = wh.read("features.customer_features")
    >>> wh.write("ml.customer_segments", segments)  # atomic create-or-replace
    """

    #: engine implementations, tried in order by :meth:`open`
    engines: ClassVar[list[type[Warehouse]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Warehouse.engines.append(cls)

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, target: Any = None, *, read_only: bool = False) -> Warehouse:
        """Open ``target``: a warehouse (returned as is), a path, or an engine connection."""
        if isinstance(target, Warehouse):
            return target
        if target is None:
            target = default_db_path()
        for engine in Warehouse.engines:
            if engine.accepts(target):
                return engine.connect(target, read_only=read_only)
        raise InputError(f"cannot open a warehouse from a {type(target).__name__}")

    @classmethod
    @abc.abstractmethod
    def accepts(cls, target: Any) -> bool:
        """Whether this engine can open ``target``."""

    @classmethod
    @abc.abstractmethod
    def connect(cls, target: Any, *, read_only: bool = False) -> Warehouse:
        """Open ``target`` with this engine."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection if this object opened it."""

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ metadata
    @abc.abstractmethod
    def exists(self, name: str) -> bool:
        """Whether table or view ``schema.table`` exists."""

    @abc.abstractmethod
    def columns(self, name: str) -> dict[str, str]:
        """Column name -> engine type of a table or view, in order."""

    def count(self, name: str) -> int:
        """Rows in table ``schema.table``."""
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
    @abc.abstractmethod
    def read(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        """A whole table (optionally a column subset) as Arrow."""

    @abc.abstractmethod
    def batches(
        self, name: str, columns: Sequence[str] | None = None, *, batch_size: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        """A table streamed as Arrow record batches."""

    def sample(self, name: str, rows: int, *, key: str, seed: int = 0) -> pa.Table:
        """At most ``rows`` rows of a table, chosen by a seeded hash of ``key`` (the same rows
        whatever the engine's threads); the whole table when it is smaller."""
        if self.count(name) <= rows:
            return self.read(name)
        return self.query(
            f"select * from {qualified(name)} order by hash(cast(? as bigint), {quote(key)}) "
            "limit ?",
            [seed, rows],
        )

    @abc.abstractmethod
    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """The result of a query (values bound as ``?`` parameters) as Arrow."""

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """First value of the first row (None when there is no row)."""
        result = self.query(sql, params)
        return result.column(0)[0].as_py() if result.num_rows else None

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run a statement (values bound as ``?`` parameters)."""

    # ------------------------------------------------------------------ writing
    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """One transaction; nested calls join the outer one."""

    @abc.abstractmethod
    def write_many(self, tables: dict[str, Any]) -> dict[str, int]:
        """Create or replace several tables in one transaction; returns rows per table. A
        ``pyarrow.RecordBatchReader`` is streamed, never held in memory whole."""

    def write(self, name: str, data: Any, *, primary_key: Sequence[str] = ()) -> int:
        """Create or replace ``schema.table`` from Arrow/pandas data in one transaction.

        Readers see the old version or the new one, never half of it. ``primary_key``
        columns are checked for nulls and duplicates before anything is written.
        """
        arrow = as_arrow(data)
        check_key(name, arrow, primary_key)
        return self.write_many({name: arrow})[name]

    @abc.abstractmethod
    def drop(self, tables: Sequence[str] = (), functions: Sequence[str] = ()) -> None:
        """Drop these tables and scoring functions (those that exist) in one transaction."""

    @abc.abstractmethod
    def scratch(self, data: Any) -> AbstractContextManager[str]:
        """Make ``data`` queryable for the duration of a block, as ``temp.<name>`` (yielded),
        without writing it to the warehouse file: nothing is left behind, even after a kill."""

    @abc.abstractmethod
    def publish_macro(self, name: str, params: Sequence[str], body: str) -> None:
        """Persist the scalar or table function ``name(params)`` defined by SQL ``body``."""


def check_key(name: str, arrow: pa.Table, key: Sequence[str]) -> None:
    """Raise unless the ``key`` columns of ``arrow`` are present, non-null and unique."""
    if not key:
        return
    missing = [k for k in key if k not in arrow.column_names]
    if missing:
        raise InputError(f"{name}: key column {', '.join(missing)} is missing")
    null = arrow[key[0]].is_null()
    for k in key[1:]:
        null = pc.or_(null, arrow[k].is_null())
    n_null = int(pc.sum(pc.cast(null, pa.int64())).as_py() or 0)
    groups = arrow.select(list(key)).group_by(list(key)).aggregate([([], "count_all")])
    n_dup = int(pc.sum(pc.greater(groups["count_all"], 1)).as_py() or 0)
    if n_null or n_dup:
        raise InputError(
            f"{name}: key ({', '.join(key)}) has {n_null} null row(s) and "
            f"{n_dup} duplicated value(s); nothing was written"
        )
