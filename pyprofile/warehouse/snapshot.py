"""Published snapshots: the copy of a warehouse that readers open, so readers never block a run.

DuckDB lets one process write a file, or many processes read it, never both at once: a
dashboard polling the warehouse read-only makes runs fail with "Could not set lock", and a run
in progress makes every read fail. So runs build in the *working file* (the ``--db`` path that
dbt and pyprofile write) and then *publish* a snapshot of it, which BI tools and ``pyprofile
report`` open read-only::

    demo.duckdb                      the working file (dbt and pyprofile write it)
    demo.published/demo.duckdb       the snapshot (readers open it, read-only)

:func:`publish_snapshot` copies the working file's committed state, in one transaction (so one
consistent version, even while other threads write), into a new file in the snapshot's folder
(DuckDB storage v1.0.0, so that DuckDB 1.x clients open it), checkpoints it (no WAL left),
fsyncs it and renames it over the snapshot with one atomic ``os.replace``. Readers that have the
old snapshot open keep reading it; readers that connect afterwards get the new one; a publish
killed at any point leaves the previous snapshot whole, and its temporary file is removed by
the next publish. The snapshot keeps the working file's name, so its catalog has the same name
(``demo``) and queries written against either work on both. It is made read-only (mode 0444):
a client that forgets to open it read-only fails at once instead of writing a WAL beside it.
POSIX only: on Windows a file that a reader holds open cannot be replaced.
"""

from __future__ import annotations

import glob
import os
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pyprofile.errors import InputError, WarehouseError
from pyprofile.warehouse.duckdb import STORAGE_VERSION, DuckDBWarehouse
from pyprofile.warehouse.engine import Warehouse
from pyprofile.warehouse.sql import quote, split_name, string

try:  # serialises publishers of one snapshot; POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

SNAPSHOT_FOLDER = "{stem}.published"
READ_ONLY_MODE = 0o444


def snapshot_path(db: str | os.PathLike) -> Path:
    """Where readers find the snapshot of working file ``db``: ``<dir>/<stem>.published/<name>``
    (the same file name, hence the same catalog name, as the working file)."""
    db = Path(db)
    return db.parent / SNAPSHOT_FOLDER.format(stem=db.stem) / db.name


def reader_path(db: str | os.PathLike) -> Path:
    """The file a reader of working file ``db`` should open (read-only): its snapshot once one
    is published, else ``db`` itself."""
    snapshot = snapshot_path(db)
    return snapshot if snapshot.exists() else Path(db)


@dataclass(frozen=True)
class PublishedSnapshot:
    """One publish: the snapshot's path, what it holds and what it cost."""

    path: Path
    source: Path
    tables: int
    views: int
    macros: int
    bytes: int
    seconds: float
    published_at: datetime
    skipped_views: tuple[str, ...] = field(default=())

    def to_arrow(self) -> pa.Table:
        """This publish as a one-row table with BI-safe types (the dbt model's run log)."""
        row = {
            "snapshot_path": str(self.path),
            "source_path": str(self.source),
            "tables_copied": self.tables,
            "views_copied": self.views,
            "macros_copied": self.macros,
            "snapshot_bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "published_at": self.published_at.replace(tzinfo=None),
            "skipped_views": ", ".join(self.skipped_views) or None,
        }
        types = {"seconds": pa.float64(), "published_at": pa.timestamp("us")}
        types |= {k: pa.int64() for k in row if k.endswith(("_copied", "_bytes"))}
        schema = pa.schema([(k, types.get(k, pa.string())) for k in row])
        return pa.Table.from_pylist([row], schema=schema)


def publish_snapshot(
    target: Any,
    *,
    schemas: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    path: str | os.PathLike | None = None,
) -> PublishedSnapshot:
    """Publish a snapshot of a DuckDB warehouse for readers; returns what was published.

    ``target`` is the working file's path (opened read-only: no other process may be writing
    it), an open connection (e.g. the session of a dbt Python model) or a
    :class:`DuckDBWarehouse`. ``schemas`` limits the copy to those schemas (default: all; views
    that read anything left out are dropped and listed in ``skipped_views``); ``exclude`` leaves
    tables (``schema.table``) out; ``path`` overrides :func:`snapshot_path`.
    """
    started = time.perf_counter()
    with _cursor(target) as con:
        catalog, working = con.execute(
            "select database_name, path from duckdb_databases() "
            "where database_name = current_database()"
        ).fetchone()
        if not working:
            raise WarehouseError("an in-memory warehouse has no file to publish a snapshot of")
        dest = Path(path) if path is not None else snapshot_path(working)
        if dest.resolve() == Path(working).resolve():
            raise WarehouseError(f"the snapshot cannot replace the working file {working}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with _publisher(dest):
            tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.tmp")
            try:
                counts, skipped = _copy(con, catalog, tmp, schemas, tuple(exclude))
                size = _install(tmp, dest)
            finally:
                _remove(tmp)
    return PublishedSnapshot(
        path=dest,
        source=Path(working),
        **counts,
        bytes=size,
        seconds=time.perf_counter() - started,
        published_at=datetime.now(UTC),
        skipped_views=skipped,
    )


@contextmanager
def _cursor(target: Any) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection of its own (so its own transaction) to ``target``'s DuckDB database."""
    wh = Warehouse.open(target, read_only=True)
    try:
        if not isinstance(wh, DuckDBWarehouse):
            raise WarehouseError("snapshots are published from DuckDB warehouse files only")
        con = wh.con.cursor()
        try:
            yield con
        finally:
            con.close()
    finally:
        if wh is not target:
            wh.close()


@contextmanager
def _publisher(dest: Path) -> Iterator[None]:
    """One publisher of ``dest`` at a time; inside, any temporary file is a killed publish's
    leftover and is removed."""
    with open(dest.with_name(f".{dest.name}.lock"), "a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, even on kill -9
        pattern = glob.escape(str(dest.with_name(f".{dest.name}."))) + "*.tmp*"
        for leftover in glob.glob(pattern):
            _remove(Path(leftover))
        yield


def _remove(tmp: Path) -> None:
    for file in (tmp, Path(f"{tmp}.wal")):
        with suppress(FileNotFoundError):
            file.unlink()


def _copy(
    con: duckdb.DuckDBPyConnection,
    catalog: str,
    tmp: Path,
    schemas: Sequence[str] | None,
    exclude: tuple[str, ...],
) -> tuple[dict[str, int], tuple[str, ...]]:
    """Copy catalog ``catalog`` into a new file ``tmp``, checkpointed and closed; returns the
    object counts and the views dropped because what they read was left out."""
    alias = f"pyprofile_snapshot_{uuid.uuid4().hex[:12]}"
    con.execute(
        f"attach {string(str(tmp))} as {quote(alias)} "
        f"(read_write, storage_version {string(STORAGE_VERSION)})"
    )
    try:
        con.execute("begin transaction")
        try:
            # the definitions of everything (tables, views, macros, sequences, types), then the
            # rows of the tables kept: all read in this one transaction, so one version
            con.execute(f"copy from database {quote(catalog)} to {quote(alias)} (schema)")
            _leave_out(con, alias, schemas, exclude)
            for schema, table in _tables(con, alias):
                name = f"{quote(schema)}.{quote(table)}"
                con.execute(
                    f"insert into {quote(alias)}.{name} select * from {quote(catalog)}.{name}"
                )
            con.execute("commit")
        except BaseException:
            with suppress(duckdb.Error):  # a failed commit has no transaction left to end
                con.execute("rollback")
            raise
        partial = schemas is not None or bool(exclude)
        skipped = _drop_broken_views(con, alias) if partial else ()
        counts = _counts(con, alias)
        con.execute(f"checkpoint {quote(alias)}")
    finally:
        con.execute(f"detach database if exists {quote(alias)}")
    if Path(f"{tmp}.wal").exists():
        raise WarehouseError(f"the snapshot {tmp} still has a WAL after its checkpoint")
    return counts, skipped


def _tables(con: duckdb.DuckDBPyConnection, catalog: str) -> list[tuple[str, str]]:
    return con.execute(
        "select schema_name, table_name from duckdb_tables() "
        "where database_name = ? and not temporary order by all",
        [catalog],
    ).fetchall()


def _leave_out(
    con: duckdb.DuckDBPyConnection,
    alias: str,
    schemas: Sequence[str] | None,
    exclude: tuple[str, ...],
) -> None:
    """Drop from the new file the schemas not in ``schemas`` and the ``exclude`` tables."""
    db = quote(alias)
    for name in exclude:
        schema, table = split_name(name)
        con.execute(f"drop table if exists {db}.{quote(schema)}.{quote(table)}")
    if schemas is None:
        return
    present = [
        schema
        for (schema,) in con.execute(
            "select schema_name from duckdb_schemas() "
            "where database_name = ? and (not internal or schema_name = 'main')",
            [alias],
        ).fetchall()
    ]
    unknown = sorted(set(schemas) - set(present))
    if unknown:
        raise InputError(
            f"no schema {', '.join(unknown)} in the warehouse to publish; it has "
            f"{', '.join(sorted(present))}"
        )
    for schema in present:
        if schema in schemas:
            continue
        if schema != "main":
            con.execute(f"drop schema {db}.{quote(schema)} cascade")
            continue
        for kind, view_or_table in (("view", "duckdb_views"), ("table", "duckdb_tables")):
            for (obj,) in con.execute(
                f"select {kind}_name from {view_or_table}() "
                "where database_name = ? and schema_name = 'main' and not internal",
                [alias],
            ).fetchall():
                con.execute(f"drop {kind} {db}.main.{quote(obj)}")


def _drop_broken_views(con: duckdb.DuckDBPyConnection, alias: str) -> tuple[str, ...]:
    """Drop the views that no longer bind (they read something left out); their names."""
    dropped: list[str] = []
    while True:
        views = con.execute(
            "select schema_name, view_name from duckdb_views() "
            "where database_name = ? and not internal order by all",
            [alias],
        ).fetchall()
        broken = []
        for schema, view in views:
            name = f"{quote(alias)}.{quote(schema)}.{quote(view)}"
            try:
                con.execute(f"select * from {name} limit 0")
            except duckdb.Error:
                broken.append((f"{schema}.{view}", name))
        if not broken:
            return tuple(sorted(dropped))
        for label, name in broken:
            con.execute(f"drop view {name}")
            dropped.append(label)


def _counts(con: duckdb.DuckDBPyConnection, alias: str) -> dict[str, int]:
    tables, views, macros = con.execute(
        "select (select count(*) from duckdb_tables() where database_name = $1), "
        "(select count(*) from duckdb_views() where database_name = $1 and not internal), "
        "(select count(distinct (schema_name, function_name)) from duckdb_functions() "
        " where database_name = $1 and function_type in ('macro', 'table_macro'))",
        [alias],
    ).fetchone()
    return {"tables": int(tables), "views": int(views), "macros": int(macros)}


def _install(tmp: Path, dest: Path) -> int:
    """Make ``tmp`` durable and read-only, then atomically put it in ``dest``'s place."""
    with open(tmp, "rb") as file:
        os.fsync(file.fileno())
    os.chmod(tmp, READ_ONLY_MODE)
    stale = Path(f"{dest}.wal")
    if stale.exists():  # someone opened the snapshot read-write: never apply it to a new file
        warnings.warn(
            f"removing {stale}: a client opened the snapshot read-write; open it read-only",
            UserWarning,
            stacklevel=3,
        )
        stale.unlink(missing_ok=True)
    os.replace(tmp, dest)
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        fd = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return dest.stat().st_size
