"""The ``pyprofile`` command line: thin wrappers over the library and the bundled dbt project."""

from __future__ import annotations

import functools
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from pyprofile.errors import InputError, PyprofileError
from pyprofile.warehouse import default_db_path

app = typer.Typer(
    help="Customer profiles inside your SQL warehouse.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help, like the tools people use: --map COLUMN=FILE_COLUMN
)
console = Console()
err = Console(stderr=True)


class Table(RichTable):
    """A rich table that wraps long cells instead of cutting them (``esti…``), and drops the
    vertical borders when the output is not a terminal (a pipe, a log file)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("box", box.HEAVY_HEAD if console.is_terminal else box.SIMPLE)
        super().__init__(*args, **kwargs)

    def add_column(self, *args, **kwargs) -> None:
        kwargs.setdefault("overflow", "fold")
        super().add_column(*args, **kwargs)


VarOption = Annotated[
    list[str] | None,
    typer.Option(
        "--var",
        metavar="NAME=VALUE",
        help="dbt var (repeatable; values read as YAML), e.g. --var synth_epochs=50",
    ),
]
DbOption = Annotated[
    Path,
    typer.Option(
        "--db",
        metavar="PATH",
        help="Warehouse file (DuckDB); default $PYPROFILE_DB or pyprofile.duckdb",
    ),
]


SeedOption = Annotated[int | None, typer.Option(metavar="SEED", help="Random seed")]
EpsilonOption = Annotated[
    float | None,
    typer.Option(
        metavar="E", help="Differentially private training with this epsilon (pyprofile[privacy])"
    ),
]
DeltaOption = Annotated[
    float | None, typer.Option(metavar="D", help="DP delta (default min(1e-5, 1/(10 rows)))")
]
EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        metavar="ENGINE",
        help="duckdb (the --db file) or spark (dbt-spark + the ml flows on a SparkSession)",
    ),
]
SparkDirOption = Annotated[
    Path | None,
    typer.Option(
        "--spark-dir",
        metavar="DIR",
        help="Local Spark warehouse directory (Parquet tables, metastore); --engine spark only",
    ),
]


def _version(value: bool) -> None:
    if value:
        from pyprofile import __version__

        typer.echo(f"pyprofile {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version"),
    ] = False,
):
    """Customer profiles inside your SQL warehouse."""


def _db(db: Path | None) -> Path:
    """The warehouse a command creates or adds to (demo-data, demo, load)."""
    return Path(db) if db else Path(default_db_path())


def _existing(db: Path | None) -> Path:
    """The warehouse a command reads: it must exist (never create an empty one by mistake)."""
    from pyprofile.errors import WarehouseError

    path = _db(db)
    if not path.is_file():
        raise WarehouseError(
            f"warehouse {path} does not exist: create its raw tables with `pyprofile demo-data "
            f"--db {path}` or `pyprofile load FILE --table orders --db {path}`"
        )
    return path


def _one_line(exc: BaseException) -> str:
    """An error message on one line (engine messages often span several)."""
    return " ".join(str(exc).split())


def friendly(fn):
    """Turn user errors into one red line and exit code 1 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (PyprofileError, FileNotFoundError, PermissionError) as exc:
            err.print(f"[bold red]error:[/] {_one_line(exc)}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def _progress(*, transient: bool = False) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )


def _generate(db: Path, **options):
    from pyprofile.demo import generate_demo

    with _progress(transient=True) as progress:  # the table below says what was written
        task = progress.add_task("generating customers", total=None)
        summary = generate_demo(
            db,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
            **_given(**options),
        )
    table = Table(title=f"demo warehouse {db}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, value in vars(summary).items():
        table.add_row(f"raw.{name}", f"{value:,}")
    console.print(table)


def _vars(items: list[str] | None, **extra) -> dict | None:
    """dbt vars from repeated NAME=VALUE options (values parsed as YAML: numbers stay numbers)."""
    import yaml

    from pyprofile.errors import InputError

    out = {k: v for k, v in extra.items() if v is not None}
    for name, text in _pairs(items, "--var", "name=value").items():
        try:
            out[name] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or "not valid YAML"
            raise InputError(
                f"--var {name}={text!r}: {problem} (values are read as YAML)"
            ) from None
    return out or None


def _build(db: Path, select: list[str], vars_: dict | None, title: str):
    from pyprofile.dbt import run_dbt

    with _progress() as progress:
        task = progress.add_task(title, total=None)
        done = []

        def on_node(node):
            if node.status == "started":  # what is running now, next to the count
                progress.update(task, description=f"{title}: {node.name}")
                return
            done.append(node)
            progress.update(task, completed=len(done))
            if node.status not in ("success", "pass", "skipped"):  # only what needs a look
                style = "yellow" if node.status == "warn" else "red"
                progress.console.print(
                    f"  [{style}]{node.status:>7}[/] {node.kind:<6} {node.name}", highlight=False
                )

        run = run_dbt("build", db, select=select, vars=vars_, on_node=on_node)
        progress.update(task, description=title)
    return run


def _timings(run, shown: int = 8) -> None:
    """The slowest steps of a build (wall time) and the process's peak memory."""
    import resource

    models = sorted(
        (n for n in run.nodes if n.kind in ("model", "snapshot", "seed")),
        key=lambda n: n.seconds,
        reverse=True,
    )
    table = Table(
        title=f"slowest steps (all {len(run.nodes)} nodes: {sum(n.seconds for n in run.nodes):,.1f} s)"
    )
    for col in ("step", "seconds"):
        table.add_column(col, justify="right" if col == "seconds" else "left")
    for node in models[:shown]:
        table.add_row(node.name, f"{node.seconds:,.1f}")
    console.print(table)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    console.print(f"peak memory of this process: {peak:,.0f} MiB", highlight=False)


def _summary(db: Path, schemas=("staging", "features", "ml", "marts")):
    from pyprofile.warehouse import Warehouse

    with Warehouse.open(db, read_only=True) as wh:
        rows = wh.query(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_catalog = current_database() and list_contains(?, table_schema) "
            "order by 1, 2",
            [list(schemas)],
        ).to_pylist()
        table = Table(title=f"written to {db}")
        for col in ("object", "type", "rows"):
            table.add_column(col, justify="right" if col == "rows" else "left")
        for r in rows:
            name = f"{r['table_schema']}.{r['table_name']}"
            kind = "view" if r["table_type"] == "VIEW" else "table"
            table.add_row(name, kind, f"{wh.count(name):,}")
    console.print(table)


@app.command("demo-data")
@friendly
def demo_data(
    db: DbOption = None,
    customers: Annotated[int | None, typer.Option(metavar="N", help="Number of customers")] = None,
    seed: SeedOption = None,
    end_date: Annotated[
        str | None, typer.Option(metavar="YYYY-MM-DD", help="Last day of the 2-year history")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Replace raw tables of the same name that the demo did not write")
    ] = False,
):
    """Generate the demo e-commerce warehouse (raw.* tables, hidden types in demo_truth)."""
    day = _date(end_date, "--end-date")
    _generate(_db(db), customers=customers, seed=seed, end_date=day, force=force or None)


@app.command("load")
@friendly
def load(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="CSV/TSV or Parquet file")],
    table: Annotated[
        str,
        typer.Option(
            metavar="TABLE", help="Raw table: customers, orders, order_items, products, events"
        ),
    ],
    db: DbOption = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            metavar="COLUMN=FILE_COLUMN",
            help="Contract column from a file column, or two joined (date+time): "
            "ordered_at=Date+Time (repeatable)",
        ),
    ] = None,
    date_format: Annotated[
        str | None,
        typer.Option(
            metavar="FORMAT", help="strptime format of the dates, e.g. %d/%m/%Y (default: inferred)"
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="COLUMN=VALUE",
            help="A contract column with one value for every row, e.g. quantity=1 (repeatable)",
        ),
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(metavar="ENCODING", help="CSV encoding: utf-8, utf-16, latin-1")
    ] = None,
    guests: Annotated[
        bool,
        typer.Option(
            help="Orders without a customer are guest checkouts: one pseudo-customer each"
        ),
    ] = False,
    replace: Annotated[
        bool, typer.Option(help="Replace the raw table instead of appending")
    ] = False,
):
    """Load a CSV or Parquet export into raw.<table> with a column mapping."""
    from pyprofile.ingest import load_file

    report = load_file(
        _db(db),
        table,
        file,
        mapping=_pairs(map_, "--map", "contract_column=file_column"),
        constants=_pairs(set_, "--set", "contract_column=value"),
        date_format=date_format,
        encoding=encoding,
        guests=guests,
        replace=replace,
    )
    _load_summary(report, file)


def _load_summary(report, file: Path) -> None:
    table = Table(title=f"raw.{report.table} from {file}")
    for col in ("read", "loaded", "rejected", "already present"):
        table.add_column(col, justify="right")
    counts = (report.read, report.loaded, report.rejected, report.duplicates)
    table.add_row(*(f"{n:,}" for n in counts))
    console.print(table)
    for reason, n in sorted(report.reasons.items()):
        console.print(f"  rejected {n:,} row(s): {reason} (see raw.load_rejects)")
    for note in report.notes:
        console.print(f"  {note}")


@app.command("features")
@friendly
def features(
    db: DbOption = None,
    as_of: Annotated[
        str | None, typer.Option(metavar="YYYY-MM-DD", help="Observation date")
    ] = None,
):
    """Build and test the staging and feature layers (dbt)."""
    path = _existing(db)
    _build(
        path,
        ["staging", "features"],
        _vars(None, as_of=_iso(as_of)),
        "dbt build: staging + features",
    )
    _summary(path, ("staging", "features"))
    _publish(path)


@app.command("demo")
@friendly
def demo(
    db: DbOption = None,
    customers: Annotated[
        int | None, typer.Option(metavar="N", help="Number of demo customers")
    ] = None,
    seed: SeedOption = None,
    var: VarOption = None,
    engine: EngineOption = "duckdb",
    spark_dir: SparkDirOption = None,
):
    """Generate the demo warehouse and run the whole pipeline (dbt build) on it."""
    if _engine(engine, spark_dir) == "spark":
        if spark_dir is None:
            raise InputError("--engine spark needs --spark-dir DIR for the demo warehouse")
        _spark_demo(spark_dir, _given(customers=customers, seed=seed), _vars(var))
        return
    path = _db(db)
    _generate(path, customers=customers, seed=seed)
    build = _build(path, [], _vars(var), "dbt build: everything")
    _summary(path)
    _model_summary(path)
    _timings(build)
    _readers(path)


def _engine(engine: str, spark_dir: Path | None) -> str:
    """The engine named by --engine (checked), and --spark-dir only with spark."""
    name = engine.strip().lower()
    if name not in ("duckdb", "spark"):
        raise InputError(f"--engine {engine!r}: use duckdb or spark")
    if spark_dir is not None and name != "spark":
        raise InputError("--spark-dir is for --engine spark")
    return name


def _spark_demo(spark_dir: Path, options: dict, vars_: dict | None) -> None:
    """The demo on a local Spark warehouse under ``spark_dir``: load it, run the pipeline."""
    from pyprofile.spark import run_demo

    def loaded(counts: dict[str, int]) -> None:
        table = Table(title=f"demo Spark warehouse {spark_dir}")
        table.add_column("table")
        table.add_column("rows", justify="right")
        for name, rows in counts.items():
            table.add_row(name, f"{rows:,}")
        console.print(table)

    with _status("Spark: demo data, dbt build, ml steps, marts"):
        result = run_demo(spark_dir, vars=vars_, on_loaded=loaded, **options)
    _spark_summary(result)


def _spark_run(spark_dir: Path | None, vars_: dict | None) -> None:
    """``run_spark`` on the profile's Spark target (local under ``spark_dir`` when given)."""
    from pyprofile.spark import run_spark

    with _status("Spark: dbt build, ml steps, marts"):
        result = run_spark(spark_dir, vars=vars_)
    _spark_summary(result)


def _spark_summary(result) -> None:
    """dbt nodes that need a look, the ml steps, functions Spark cannot hold, the timings."""
    for node in result.nodes:
        if node.status not in ("success", "pass", "skipped"):
            console.print(f"  {node.status:>7} {node.kind:<6} {node.name}", highlight=False)
    steps = Table(title="ml steps (Spark)")
    for col in ("step", "status", "rows", "model version", "note"):
        steps.add_column(col)
    for log, row in result.steps.items():
        rows = "" if row.get("rows_written") is None else f"{row['rows_written']:,}"
        steps.add_row(
            log, row["status"], rows, row.get("model_version") or "", row.get("message") or ""
        )
    console.print(steps)
    for name, why in result.skipped_functions.items():
        console.print(f"scoring function {name} not on Spark: {why}", highlight=False)
    timings = ", ".join(f"{k} {v:,.1f}" for k, v in result.seconds.items())
    console.print(f"seconds: {timings}", highlight=False)


def _pairs(items: list[str] | None, option: str, form: str = "column=value") -> dict[str, str]:
    """Repeated KEY=VALUE options as a dict; a malformed one is a clear user error."""
    from pyprofile.errors import InputError

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"{option} {item!r}: use {form}")
        out[key.strip()] = value.strip()
    return out


def _date(text: str | None, option: str) -> date | None:
    """A YYYY-MM-DD option as a date; anything else is a clear user error."""
    from pyprofile.errors import InputError

    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option} {text!r}: use a date YYYY-MM-DD, e.g. 2025-12-31") from None


def _iso(as_of: str | None) -> str | None:
    """``--as-of`` checked to be a real date, as YYYY-MM-DD."""
    day = _date(as_of, "--as-of")
    return None if day is None else day.isoformat()


def _given(**options) -> dict:
    """The options the user set: the library's own defaults apply to the rest."""
    return {k: v for k, v in options.items() if v is not None}


def _k_range(text: str | None) -> tuple[int, int] | None:
    from pyprofile.errors import InputError

    if text is None:
        return None
    lo, sep, hi = text.partition(":")
    if not sep or not lo.isdigit() or not hi.isdigit() or int(lo) > int(hi):
        raise InputError(f"--k-range {text!r}: use lo:hi, e.g. 3:12")
    return int(lo), int(hi)


def _kv_table(title: str, rows) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(str(name), str(value))
    return table


def _status(message: str):
    return console.status(message, spinner="dots")


@app.command("synth")
@friendly
def synth(
    db: DbOption = None,
    table: Annotated[
        str | None,
        typer.Option(
            metavar="SCHEMA.TABLE", help="Table to imitate (default features.customer_features)"
        ),
    ] = None,
    rows: Annotated[
        int | None, typer.Option(metavar="N", help="Synthetic rows (default: as many as real)")
    ] = None,
    epochs: Annotated[int | None, typer.Option(metavar="N", help="Training epochs")] = None,
    batch_size: Annotated[int | None, typer.Option(metavar="N", help="Batch size")] = None,
    condition: Annotated[
        list[str] | None,
        typer.Option(
            "--condition", metavar="COLUMN=VALUE", help="A value every row must have (repeatable)"
        ),
    ] = None,
    label: Annotated[
        str | None,
        typer.Option(metavar="COLUMN", help="Label column for the utility (TSTR) metric"),
    ] = None,
    privacy_filter: Annotated[
        bool, typer.Option(help="Drop rows closer to a real row than the holdout 5th percentile")
    ] = False,
    epsilon: EpsilonOption = None,
    delta: DeltaOption = None,
    seed: SeedOption = None,
):
    """Train the tabular GAN and write ml.synthetic_customers + ml.synthetic_quality."""
    from pyprofile.flows.synthesizer import format_quality, run_synthesizer

    path = _existing(db)
    summary = run_synthesizer(
        path,
        rows=rows,
        conditions=_pairs(condition, "--condition") or None,
        label=label,
        privacy_filter=privacy_filter,
        verbose=True,
        **_given(
            table=table,
            epochs=epochs,
            batch_size=batch_size,
            random_state=seed,
            epsilon=epsilon,
            delta=delta,
        ),
    )
    title = f"synthetic data quality ({summary['table']})"
    console.print(_kv_table(title, format_quality(summary)))
    _publish(path)


@app.command("synth-warehouse")
@friendly
def synth_warehouse(
    out: Annotated[
        Path,
        typer.Option(metavar="PATH", help="The new warehouse file to write (never the source)"),
    ],
    db: DbOption = None,
    customers: Annotated[
        int | None,
        typer.Option(metavar="N", help="Synthetic customers (default: as many as real)"),
    ] = None,
    epochs: Annotated[int | None, typer.Option(metavar="N", help="Training epochs")] = None,
    batch_size: Annotated[int | None, typer.Option(metavar="N", help="Batch size")] = None,
    evaluate: Annotated[
        bool, typer.Option(help="Build features on the copy and write ml.synthetic_quality")
    ] = True,
    epsilon: EpsilonOption = None,
    delta: DeltaOption = None,
    seed: SeedOption = None,
):
    """Write a synthetic copy of raw.* (customers, orders, items, products, events) to --out.

    With --epsilon the copy is differentially private for each customer with all its rows;
    --evaluate then writes quality figures measured against the real shop into the copy
    (not covered by the guarantee): share a private copy built with --no-evaluate."""
    from pyprofile.flows.synth_warehouse import format_warehouse, run_synth_warehouse

    with _status("learning the shop and writing the synthetic warehouse"):
        summary = run_synth_warehouse(
            _existing(db),
            out,
            evaluate=evaluate,
            **_given(
                customers=customers,
                epochs=epochs,
                batch_size=batch_size,
                random_state=seed,
                epsilon=epsilon,
                delta=delta,
            ),
        )
    console.print(_kv_table("synthetic warehouse", format_warehouse(summary)))


@app.command("segment")
@friendly
def segment(
    db: DbOption = None,
    k: Annotated[
        int | None, typer.Option(metavar="K", help="Number of segments (default: chosen)")
    ] = None,
    k_range: Annotated[
        str | None, typer.Option(metavar="LO:HI", help="Range of k to choose from")
    ] = None,
    seed: SeedOption = None,
):
    """Learn customer segments and personas; write ml.customer_segments + ml.segment_profiles."""
    from pyprofile.flows.segmentation import run_segmentation

    path = _existing(db)
    summary = run_segmentation(
        path,
        verbose=True,
        **_given(k=k, k_range=_k_range(k_range), random_state=seed),
    )
    table = Table(
        title=f"{summary['k']} segments ({summary['method']}, {summary['model_version']})"
    )
    for col in ("segment", "name", "customers"):
        table.add_column(col, justify="right" if col != "name" else "left")
    for seg_id, name in summary["segments"].items():
        size = summary["sizes"].get(seg_id, summary["sizes"].get(str(seg_id), 0))
        table.add_row(str(seg_id), name, f"{size:,}")
    console.print(table)
    comparison = Table(title="model selection (the kept method is starred)")
    metrics = sorted({m for v in summary["comparison"].values() if isinstance(v, dict) for m in v})
    comparison.add_column("method")
    for m in metrics:
        comparison.add_column(m, justify="right")
    for method, best in summary["comparison"].items():
        if not isinstance(best, dict):
            continue
        star = " *" if method == summary["comparison"].get("kept") else ""
        comparison.add_row(
            method + star,
            *(
                f"{best[m]:.3f}" if isinstance(best.get(m), float) else str(best.get(m, ""))
                for m in metrics
            ),
        )
    console.print(comparison)
    console.print(f"SQL scoring: {summary['macro']}", highlight=False)
    _publish(path)


@app.command("score")
@friendly
def score(
    db: DbOption = None,
    horizon_days: Annotated[
        int | None, typer.Option(metavar="DAYS", help="Label window in days")
    ] = None,
    seed: SeedOption = None,
):
    """Churn/purchase propensity, P(alive), CLV: rebuild the training set, train, write ml.customer_scores."""
    from pyprofile.dbt import run_dbt
    from pyprofile.flows.scoring import METRIC_COLUMNS, metrics_rows, run_scoring

    path = _existing(db)
    given = _given(horizon_days=horizon_days)
    with _status("building the point-in-time training set"):
        run_dbt("build", path, select=["customer_training"], vars=given or None)
    with _status("training churn, purchase, BG/NBD and Gamma-Gamma models"):
        summary = run_scoring(path, **given, **_given(random_state=seed))
    table = Table(title=f"models (scores for {summary['rows']:,} customers in ml.customer_scores)")
    for col in METRIC_COLUMNS:
        table.add_column(col, justify="left" if col in ("model", "estimator") else "right")
    for row in metrics_rows(summary):
        table.add_row(*row)
    console.print(table)
    _publish(path)


@app.command("recommend")
@friendly
def recommend(
    db: DbOption = None,
    k: Annotated[int | None, typer.Option(metavar="K", help="Recommendations per customer")] = None,
    method: Annotated[
        str | None,
        typer.Option(
            metavar="METHOD",
            help="auto, popularity, itemknn, ease, als or sequence (the sequence model reads "
            "features.customer_event_sequences; auto keeps it only when it wins by 5 %)",
        ),
    ] = None,
    seed: SeedOption = None,
):
    """Fit the recommender; write ml.recommendations + ml.product_similarities."""
    from pyprofile.flows.recommendations import pipeline_inputs, run_recommendations

    path = _existing(db)
    with _status("fitting recommenders"):
        summary = run_recommendations(
            path, **pipeline_inputs(path), **_given(k=k, method=method, random_state=seed)
        )
    rows = [
        ("method", summary["method"]),
        ("model version", summary["model_version"]),
        ("customers", f"{summary['customers']:,}"),
        ("cold-start customers", f"{summary['cold_start_customers']:,}"),
        ("rows written", f"{summary['rows']:,}"),
    ]
    rows += [
        (f"held-out {name}", f"{value:.4f}" if isinstance(value, float) else value)
        for name, value in (summary.get("metrics") or {}).items()
    ]
    console.print(_kv_table("recommendations", rows))
    _publish(path)


@app.command("run")
@friendly
def run(
    db: DbOption = None,
    as_of: Annotated[
        str | None, typer.Option(metavar="YYYY-MM-DD", help="Observation date")
    ] = None,
    var: VarOption = None,
    engine: EngineOption = "duckdb",
    spark_dir: SparkDirOption = None,
):
    """Run the whole pipeline (dbt build: staging, features, ml, marts) and summarise it."""
    if _engine(engine, spark_dir) == "spark":
        _spark_run(spark_dir, _vars(var, as_of=_iso(as_of)))
        return
    path = _existing(db)
    build = _build(path, [], _vars(var, as_of=_iso(as_of)), "dbt build: everything")
    _summary(path)
    _model_summary(path)
    _timings(build)
    _readers(path)


def _publish(db: Path) -> None:
    """Publish the snapshot readers open, after a command wrote the working file."""
    from pyprofile.warehouse.snapshot import publish_snapshot

    with _status("publishing the snapshot for readers"):
        snapshot = publish_snapshot(db)
    console.print(
        f"readers: {snapshot.path} ({snapshot.bytes / 1e6:.1f} MB, {snapshot.seconds:.1f}s)",
        highlight=False,
    )


def _readers(db: Path) -> None:
    from pyprofile.warehouse.snapshot import snapshot_path

    if snapshot_path(db).exists():
        console.print(f"readers: {snapshot_path(db)} (published by dbt build)", highlight=False)


def _steps(wh) -> None:
    """Every ml step of the build: done or skipped, and why (parts skipped included)."""
    from pyprofile.warehouse.sql import qualified
    from pyprofile.warehouse.tables import RUN_LOGS

    table = Table(title="ml steps")
    for col in ("step", "status", "rows", "model version", "note"):
        table.add_column(col, justify="right" if col == "rows" else "left", overflow="fold")
    for step, log in RUN_LOGS.items():
        if not wh.exists(log):
            table.add_row(step, "not run", "", "", f"{log} does not exist")
            continue
        row = wh.query(
            f"select status, rows_written, model_version, message from {qualified(log)}"
        ).to_pylist()[0]
        rows = "" if row["rows_written"] is None else f"{row['rows_written']:,}"
        table.add_row(step, row["status"], rows, row["model_version"] or "", row["message"] or "")
    console.print(table)


def _model_summary(db: Path) -> None:
    from pyprofile.warehouse import Warehouse
    from pyprofile.warehouse.registry import latest_models

    with Warehouse.open(db, read_only=True) as wh:
        _steps(wh)
        models = latest_models(wh)
    if not models:
        return
    table = Table(title="models (latest version of each)")
    for col in ("model", "version", "key metrics"):
        table.add_column(col)
    for model in models:
        shown = ", ".join(
            f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in list(model["metrics"].items())[:4]
            if isinstance(v, int | float | str)
        )
        table.add_row(model["name"], model["version"], shown)
    console.print(table)


@app.command("report")
@friendly
def report(
    db: DbOption = None,
    out: Annotated[Path, typer.Option(metavar="FILE", help="HTML file to write")] = Path(
        "report.html"
    ),
):
    """Write a self-contained HTML report with plots of segments, RFM, synthetic data, scores."""
    from pyprofile.report import build_report

    summary = build_report(_existing(db), out)
    console.print(
        f"wrote {out} from {summary.source} ({len(summary.rendered)} sections, "
        f"{summary.plots} plots)",
        highlight=False,
    )
    for key, reason in summary.skipped.items():
        console.print(f"  skipped {key}: {reason}")


if __name__ == "__main__":  # pragma: no cover
    app()
