"""The Spark engine: a SparkSession, local (a directory of Parquet tables) or a cluster.

Install with ``pip install "pyprofile[spark]"`` (pyspark and dbt-spark; Java 17). Open a
warehouse from a running ``SparkSession``, from :class:`SparkSettings` (a local directory and
extra Spark settings) or from a directory made by :func:`local_conf` (``metastore_db/`` and
``warehouse/`` inside). On a cluster, the session is the one dbt-spark opened from the dbt
profile: configuration, not code.

**What "atomic" means here.** Spark with a Hive metastore and Parquet tables has no
transactions (and no ``DELETE``). pyprofile therefore never rewrites a published table in place:

* every table it writes is a **view** (``ml.customer_scores``) over an immutable **version
  table** (``ml.customer_scores__v<time><random>``). A write builds the new version in full,
  then swaps the view with one ``create or replace view`` (one metastore update: a reader sees
  the old version or the new one, never half of one). The previous version is kept until the
  next write of that table, so a query already reading it finishes.
* :meth:`SparkWarehouse.transaction` stages: version tables are written, ``delete``/``insert``
  statements build a new version of their table, and scoring functions are collected. Nothing
  a reader can see changes until the block ends; then the swaps, function definitions and drops
  run one after another (milliseconds, no data moved). A failure before that point leaves
  everything as it was (the staged versions are dropped); a process killed *during* those last
  metadata steps can leave some tables at the new version and others at the old one (each
  whole). Reruns are idempotent (versions derive from content), so rerunning repairs it. This
  is weaker than DuckDB's one-transaction publish, and documented as such.
* a query inside a transaction reads the published versions, not the staged ones.

Scoring functions become persistent Spark SQL functions (``create function ... returns ...
return <expr>``, Spark >= 4.0). Bodies rendered by :mod:`pyprofile.warehouse.scoring_sql` are
re-rendered in Spark's dialect from the same fitted parameters; other bodies (static SQL) are
transpiled from DuckDB's dialect with SQLGlot. Spark SQL table functions cannot take a table
name, so DuckDB's bulk ``ml.segment_table(tbl)`` has no Spark counterpart: it is skipped and
listed in :attr:`SparkWarehouse.skipped_functions` (use ``ml.segment_of(...)`` per row).

SQL handed to :meth:`query` and :meth:`execute` is written in the DuckDB dialect the rest of
the library uses (double-quoted identifiers, ``?`` parameters) and transpiled with SQLGlot.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlglot
from sqlglot import exp

from pyprofile.errors import InputError, WarehouseError
from pyprofile.models.data import as_arrow
from pyprofile.warehouse.engine import Warehouse
from pyprofile.warehouse.sql import split_name

VERSION_MARK = "__v"
# Spark type names as the rest of pyprofile (written against DuckDB) expects them.
_TYPE_NAMES = {
    "string": "VARCHAR",
    "timestamp_ntz": "TIMESTAMP",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "int": "INTEGER",
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "float": "FLOAT",
    "binary": "BLOB",
}


def backtick(identifier: str) -> str:
    """One Spark SQL identifier, quoted with backticks (embedded backticks doubled)."""
    if not isinstance(identifier, str) or not identifier or "\x00" in identifier:
        raise InputError(f"invalid SQL identifier {identifier!r}")
    return "`" + identifier.replace("`", "``") + "`"


def ref(name: str) -> str:
    """``schema.table`` as a quoted Spark SQL reference."""
    schema, table = split_name(name)
    return f"{backtick(schema)}.{backtick(table)}"


# --------------------------------------------------------------------------- settings
def local_conf(directory: str | Path) -> dict[str, str]:
    """Spark settings for a local warehouse under ``directory``: Parquet tables in
    ``warehouse/``, an embedded Derby metastore in ``metastore_db/``, two cores, UTC, naive
    timestamps (as DuckDB's), ANSI SQL. The dbt profile's ``spark`` target uses the same."""
    d = Path(directory).resolve()
    return {
        "spark.master": "local[2]",
        "spark.app.name": "pyprofile",
        "spark.sql.warehouse.dir": str(d / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={d / 'metastore_db'};create=true"
        ),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={d}",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
        "spark.sql.ansi.enabled": "true",
        "spark.sql.shuffle.partitions": "2",
        "spark.log.level": "ERROR",
    }


@dataclass(frozen=True)
class SparkSettings:
    """A Spark warehouse to open: a local ``directory`` (see :func:`local_conf`) and/or extra
    Spark ``conf``. Without a directory, ``conf`` must say where the warehouse is."""

    directory: str | Path | None = None
    conf: dict[str, str] = field(default_factory=dict)

    def session_conf(self) -> dict[str, str]:
        base = local_conf(self.directory) if self.directory is not None else {}
        return {**base, **{k: str(v) for k, v in self.conf.items()}}


def _is_session(target: Any) -> bool:
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - pyspark is the spark extra
        return False
    return isinstance(target, SparkSession)


def _is_local_dir(target: Any) -> bool:
    if not isinstance(target, str | Path):
        return False
    path = Path(target)
    return path.is_dir() and (path / "metastore_db").is_dir()


def session(settings: SparkSettings):
    """The process's SparkSession with Hive support (created with ``settings`` if none runs;
    dbt-spark's ``session`` method shares it)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.enableHiveSupport()
    for key, value in settings.session_conf().items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    _quiet(spark)
    return spark


def _quiet(spark) -> None:
    """pyspark logs every failed query as an ERROR with a Java stack trace; our callers get
    the error as an exception instead."""
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger", "py4j"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    level = spark.conf.get("spark.log.level", None)
    if level:
        spark.sparkContext.setLogLevel(level)


# --------------------------------------------------------------------------- SQL dialect
def _fix_for_spark(node: exp.Expression) -> exp.Expression | None:
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.JSON:
        return exp.DataType.build("string")  # Spark has no JSON type: text
    if isinstance(node, exp.PrimaryKey):
        return None  # Spark (Parquet) tables take no key constraints
    return node


def to_spark(sql: str) -> str:
    """A statement in the DuckDB dialect the library writes, in Spark's (SQLGlot)."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError:
        return sql
    return tree.transform(_fix_for_spark).sql(dialect="spark")


def _spark_ready(arrow: pa.Table) -> pa.Table:
    """Arrow types Spark reads: text for all-null and dictionary columns, no large types."""
    fields = []
    for f in arrow.schema:
        t = f.type
        if pa.types.is_null(t):
            t = pa.string()
        elif pa.types.is_dictionary(t):
            t = t.value_type
        if pa.types.is_large_string(t):
            t = pa.string()
        elif pa.types.is_large_binary(t):
            t = pa.binary()
        fields.append(pa.field(f.name, t))
    schema = pa.schema(fields)
    return arrow if schema.equals(arrow.schema) else arrow.cast(schema)


def _args(params: Sequence[Any] | None) -> list[Any] | None:
    if not params:
        return None
    return [bytearray(p) if isinstance(p, bytes | memoryview) else p for p in params]


def _type_name(data_type) -> str:
    text = data_type.simpleString()
    return _TYPE_NAMES.get(text, text.upper())


@dataclass
class _Transaction:
    """What a transaction has staged: new versions per table, and deferred actions in order."""

    staged: dict[str, str] = field(default_factory=dict)
    actions: list[tuple[str, Any]] = field(default_factory=list)


# --------------------------------------------------------------------------- the engine
class SparkWarehouse(Warehouse):
    """A Spark warehouse: a SparkSession and its Hive metastore (see the module docstring)."""

    dialect = "spark"

    def __init__(self, spark, *, owned: bool = False):
        self.spark = spark
        self._owned = owned
        self._txn: _Transaction | None = None
        self._ibis = None
        self._param_types: dict[str, str] = {}
        #: scoring functions Spark cannot hold, name -> why (e.g. the bulk table function)
        self.skipped_functions: dict[str, str] = {}

    # ------------------------------------------------------------------ opening
    @classmethod
    def accepts(cls, target: Any) -> bool:
        return _is_session(target) or isinstance(target, SparkSettings) or _is_local_dir(target)

    @classmethod
    def connect(cls, target: Any, *, read_only: bool = False) -> SparkWarehouse:
        """Wrap a SparkSession, or start one from settings or a local warehouse directory."""
        if _is_session(target):
            _quiet(target)
            return cls(target)
        settings = target if isinstance(target, SparkSettings) else SparkSettings(target)
        if settings.directory is not None:
            Path(settings.directory).mkdir(parents=True, exist_ok=True)
        try:
            return cls(session(settings), owned=True)
        except Exception as exc:  # no Java, a locked metastore, ...
            raise WarehouseError(f"cannot start Spark: {' '.join(str(exc).split())[:300]}") from exc

    def close(self) -> None:
        """Nothing to release: the session is process-wide and shared with dbt-spark (code
        that opens a warehouse it was handed closes it too); :meth:`stop` ends it."""

    def stop(self) -> None:
        """End the SparkSession if this object started it."""
        if self._owned:
            self.spark.stop()

    @property
    def ibis(self):
        """The ibis backend over the same session (lazy; ibis' pyspark backend)."""
        if self._ibis is None:
            import ibis

            self._ibis = ibis.pyspark.connect(self.spark)
        return self._ibis

    # ------------------------------------------------------------------ running SQL
    def _run(self, sql: str, params: Sequence[Any] | None = None):
        """Run Spark SQL text; a failure is a WarehouseError with Spark's first line."""
        try:
            return self.spark.sql(sql, args=_args(params))
        except Exception as exc:
            first = " ".join(str(exc).split())[:500]
            raise WarehouseError(f"Spark SQL failed: {first}") from exc

    def _kind(self, name: str) -> str | None:
        """``VIEW``, ``MANAGED``/``EXTERNAL`` (a table) or None when ``name`` does not exist."""
        schema, table = split_name(name)
        if not self.spark.catalog.tableExists(f"{schema}.{table}"):
            return None
        return str(self.spark.catalog.getTable(f"{schema}.{table}").tableType).upper()

    # ------------------------------------------------------------------ metadata
    def exists(self, name: str) -> bool:
        schema, table = split_name(name)
        try:
            return bool(self.spark.catalog.tableExists(f"{schema}.{table}"))
        except Exception:  # e.g. the schema does not exist
            return False

    def columns(self, name: str) -> dict[str, str]:
        if not self.exists(name):
            raise WarehouseError(f"table {name} does not exist in the warehouse")
        schema = self.spark.table(ref(name)).schema
        return {f.name: _type_name(f.dataType) for f in schema.fields}

    # ------------------------------------------------------------------ reading
    def _frame(self, name: str, columns: Sequence[str] | None):
        self.require(name, columns or ())
        df = self.spark.table(ref(name))
        return df.select(*[backtick(c) for c in columns]) if columns else df

    def read(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        return self._frame(name, columns).toArrow()

    def batches(
        self, name: str, columns: Sequence[str] | None = None, *, batch_size: int = 100_000
    ) -> Iterator[pa.RecordBatch]:
        """The table streamed partition by partition (bounded driver memory)."""
        df = self._frame(name, columns)
        schema = df.limit(0).toArrow().schema
        rows: list[dict] = []
        for row in df.toLocalIterator():
            rows.append(dict(zip(schema.names, row, strict=True)))
            if len(rows) == batch_size:
                yield pa.RecordBatch.from_pylist(rows, schema=schema)
                rows = []
        if rows:
            yield pa.RecordBatch.from_pylist(rows, schema=schema)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        try:
            return self._run(to_spark(sql), params).toArrow()
        except WarehouseError as exc:
            raise WarehouseError(f"query failed: {exc}") from exc

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run a statement; ``delete`` and ``insert`` build a new version of their table
        (Parquet tables cannot be changed in place) that is swapped in at commit."""
        try:
            tree = sqlglot.parse_one(sql, read="duckdb")
        except sqlglot.errors.ParseError:
            tree = None
        if isinstance(tree, exp.Delete | exp.Insert):
            self._dml(tree, params)
            return
        self._run(to_spark(sql) if tree is not None else sql, params)

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def transaction(self) -> Iterator[SparkWarehouse]:
        """Stage writes and publish them together at the end (see the module docstring: the
        swap is a short sequence of metadata updates, not one transaction)."""
        if self._txn is not None:
            yield self
            return
        self._txn = txn = _Transaction()
        try:
            yield self
        except BaseException:
            self._txn = None
            self._discard(txn)
            raise
        self._txn = None
        self._commit(txn)

    def _discard(self, txn: _Transaction) -> None:
        for version in txn.staged.values():
            with contextlib.suppress(Exception):
                self._run(f"drop table if exists {ref(version)}")

    def _commit(self, txn: _Transaction) -> None:
        swapped: set[str] = set()
        for kind, payload in txn.actions:
            if kind == "swap" and payload not in swapped:
                swapped.add(payload)
                self._point(payload, txn.staged[payload])
            elif kind == "drop_table":
                self._drop_table(payload)
            elif kind == "drop_function":
                self._run(f"drop function if exists {ref(payload)}")
                self.skipped_functions.pop(payload, None)
            elif kind == "function":
                self._create_function(*payload)

    def _stage(self, name: str, version: str) -> None:
        """Record ``version`` as the new content of ``name`` (replacing an earlier staging)."""
        txn = self._txn
        assert txn is not None
        old = txn.staged.get(name)
        txn.staged[name] = version
        if old is None:
            txn.actions.append(("swap", name))
        else:
            self._run(f"drop table if exists {ref(old)}")

    def _new_version(self, name: str) -> str:
        schema, table = split_name(name)
        self._run(f"create database if not exists {backtick(schema)}")
        token = f"{time.time_ns():020d}{uuid.uuid4().hex[:8]}"
        return f"{schema}.{table}{VERSION_MARK}{token}"

    def versions(self, name: str) -> list[str]:
        """The version tables behind ``name`` (oldest first)."""
        schema, table = split_name(name)
        pattern = f"{table}{VERSION_MARK}*".lower()
        rows = self._run(f"show tables in {backtick(schema)} like '{pattern}'").collect()
        return sorted(f"{schema}.{r.tableName}" for r in rows if not r.isTemporary)

    def _point(self, name: str, version: str) -> None:
        """Make ``name`` a view over ``version``; keep the previous version, drop older ones."""
        if self._kind(name) not in (None, "VIEW"):
            self._run(f"drop table {ref(name)}")  # a plain table (e.g. made by DDL): replace it
        self._run(f"create or replace view {ref(name)} as select * from {ref(version)}")
        older = [v for v in self.versions(name) if v.lower() < version.lower()]
        for stale in older[:-1]:
            self._run(f"drop table if exists {ref(stale)}")

    def _drop_table(self, name: str) -> None:
        kind = self._kind(name)
        if kind == "VIEW":
            self._run(f"drop view if exists {ref(name)}")
        elif kind is not None:
            self._run(f"drop table if exists {ref(name)}")
        for version in self.versions(name):
            self._run(f"drop table if exists {ref(version)}")

    # ------------------------------------------------------------------ writing
    def _dml(self, tree: exp.Delete | exp.Insert, params: Sequence[Any] | None) -> None:
        """A ``delete`` or ``insert`` applied to a new version of its table (staged)."""
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        if not isinstance(target, exp.Table) or not target.db:
            raise WarehouseError(f"cannot run on Spark (needs schema.table): {tree.sql()}")
        name = f"{target.db}.{target.name}"
        with self.transaction():
            current = self._txn.staged.get(name) if self._txn else None
            source = ref(current or name)
            version = self._new_version(name)
            if isinstance(tree, exp.Delete):
                where = tree.args.get("where")
                keep = (
                    f"not coalesce(({where.this.sql(dialect='spark')}), false)"
                    if where
                    else "false"
                )
                self._run(
                    f"create table {ref(version)} using parquet as "
                    f"select * from {source} where {keep}",
                    params,
                )
            else:
                self._run(f"create table {ref(version)} using parquet as select * from {source}")
                new = exp.to_table(version)
                if isinstance(tree.this, exp.Schema):
                    tree.this.set("this", new)
                else:
                    tree.set("this", new)
                self._run(tree.transform(_fix_for_spark).sql(dialect="spark"), params)
            self._stage(name, version)

    def write_many(self, tables: dict[str, Any]) -> dict[str, int]:
        """Write each table as a new version, then swap them all in (see the module docstring)."""
        counts = {}
        with self.transaction():
            for name, data in tables.items():
                split_name(name)
                arrow = _spark_ready(as_arrow(data))
                version = self._new_version(name)
                try:
                    df = self.spark.createDataFrame(arrow)
                    df.write.format("parquet").saveAsTable(ref(version))
                except Exception as exc:
                    with contextlib.suppress(Exception):
                        self._run(f"drop table if exists {ref(version)}")
                    first = " ".join(str(exc).split())[:300]
                    raise WarehouseError(f"writing {name} to Spark failed: {first}") from exc
                self._stage(name, version)
                counts[name] = arrow.num_rows
        return counts

    def drop(self, tables: Sequence[str] = (), functions: Sequence[str] = ()) -> None:
        with self.transaction():
            assert self._txn is not None
            for name in tables:
                split_name(name)
                self._txn.actions.append(("drop_table", name))
            for name in functions:
                split_name(name)
                self._txn.actions.append(("drop_function", name))

    @contextmanager
    def scratch(self, data: Any) -> Iterator[str]:
        """``data`` as a global temporary view (``global_temp.<name>``): session-only, never
        written to the warehouse."""
        view = f"pyprofile_scratch_{uuid.uuid4().hex}"
        self.spark.createDataFrame(_spark_ready(as_arrow(data))).createOrReplaceGlobalTempView(view)
        try:
            yield f"global_temp.{view}"
        finally:
            self.spark.catalog.dropGlobalTempView(view)

    # ------------------------------------------------------------------ scoring functions
    def publish_macro(self, name: str, params: Sequence[str], body: str) -> None:
        """Persist ``name(params)`` as a Spark SQL function (at commit when in a transaction).

        A body from :mod:`~pyprofile.warehouse.scoring_sql` is re-rendered in Spark's dialect
        with its parameter and return types; other bodies are transpiled (SQLGlot), their
        parameter types taken from functions published before (else DOUBLE) and their return
        type inferred by Spark.
        """
        split_name(name)
        with self.transaction():
            assert self._txn is not None
            self._txn.actions.append(("function", (name, list(params), body)))

    def _create_function(self, name: str, params: list[str], body: str) -> None:
        render = getattr(body, "render", None)
        text = render("spark") if callable(render) else _spark_expression(body)
        if text is None:
            self._run(f"drop function if exists {ref(name)}")
            self.skipped_functions[name] = getattr(body, "spark_note", "no Spark SQL form")
            return
        declared = getattr(body, "param_types", None) or {}
        types = [declared.get(p) or self._param_types.get(p.lower()) or "DOUBLE" for p in params]
        returns = getattr(body, "returns", None) or self._infer_type(text, params, types)
        args = ", ".join(f"{backtick(p)} {t}" for p, t in zip(params, types, strict=True))
        self._run(f"create or replace function {ref(name)}({args}) returns {returns} return {text}")
        self._param_types.update({p.lower(): t for p, t in zip(params, types, strict=True)})
        self.skipped_functions.pop(name, None)

    def _infer_type(self, text: str, params: list[str], types: list[str]) -> str:
        nulls = ", ".join(
            f"cast(null as {t}) as {backtick(p)}" for p, t in zip(params, types, strict=True)
        )
        source = f"(select {nulls}) as a" if params else "(select 1) as a"
        frame = self._run(f"select ({text}) as r from {source}")
        return frame.schema.fields[0].dataType.simpleString().upper()


def _spark_expression(body: str) -> str:
    """A SQL expression written for DuckDB (e.g. a static function under ``udfs/``) in Spark's
    dialect: identifiers in backticks, quotes escaped as Spark reads them."""
    try:
        return sqlglot.parse_one(body, read="duckdb").sql(dialect="spark")
    except sqlglot.errors.ParseError as exc:
        raise WarehouseError(f"cannot translate a scoring function to Spark SQL: {exc}") from exc


# Spark targets are recognised before DuckDB's (which takes any path): move this engine first.
Warehouse.engines.remove(SparkWarehouse)
Warehouse.engines.insert(0, SparkWarehouse)
