"""The ``pyprofile`` command line: thin wrappers over the library and the bundled dbt project."""

from __future__ import annotations

import functools
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pyprofile.errors import PyprofileError
from pyprofile.warehouse import default_db_path

app = typer.Typer(
    help="Customer profiles inside your SQL warehouse.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)

DbOption = Annotated[
    Path,
    typer.Option("--db", help="Warehouse file (DuckDB); default $PYPROFILE_DB or pyprofile.duckdb"),
]


def _db(db: Path | None) -> Path:
    return Path(db) if db else Path(default_db_path())


def friendly(fn):
    """Turn user errors into one red line and exit code 1 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PyprofileError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None
        except (FileNotFoundError, PermissionError) as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _generate(db: Path, customers: int, seed: int, end_date: date):
    from pyprofile.demo import generate_demo

    with _progress() as progress:
        task = progress.add_task("generating customers", total=customers)
        summary = generate_demo(
            db,
            customers=customers,
            seed=seed,
            end_date=end_date,
            progress=lambda done, total: progress.update(task, completed=done),
        )
    table = Table(title=f"demo warehouse {db}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, value in vars(summary).items():
        table.add_row(f"raw.{name}", f"{value:,}")
    console.print(table)


def _build(db: Path, select: list[str], as_of: str | None, title: str):
    from pyprofile.pipeline import run_dbt

    vars_ = {"as_of": as_of} if as_of else None
    with _progress() as progress:
        task = progress.add_task(title, total=None)
        done = []

        def on_node(node):
            done.append(node)
            style = {"success": "green", "pass": "green", "warn": "yellow"}.get(node.status, "red")
            progress.console.print(
                f"  [{style}]{node.status:>7}[/] {node.kind:<6} {node.name} ({node.seconds:.1f}s)",
                highlight=False,
            )
            progress.update(task, completed=len(done))

        return run_dbt("build", db, select=select, vars=vars_, on_node=on_node)


def _summary(db: Path, schemas=("staging", "features", "ml", "marts")):
    from pyprofile.warehouse import Warehouse

    with Warehouse.open(db, read_only=True) as wh:
        rows = wh.query(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_catalog = current_database() and table_schema in ("
            + ", ".join(f"'{s}'" for s in schemas)
            + ") order by 1, 2"
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
    customers: Annotated[int, typer.Option(help="Number of customers")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed")] = 42,
    end_date: Annotated[str, typer.Option(help="Last day of the 2-year history")] = "2025-12-31",
):
    """Generate the demo e-commerce warehouse (raw.* tables, hidden types in demo_truth)."""
    _generate(_db(db), customers, seed, date.fromisoformat(end_date))


@app.command("load")
@friendly
def load(
    file: Annotated[Path, typer.Argument(help="CSV/TSV or Parquet file")],
    table: Annotated[
        str, typer.Option(help="Raw table: customers, orders, order_items, products, events")
    ],
    db: DbOption = None,
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="contract_column=file_column (repeatable)"),
    ] = None,
    date_format: Annotated[
        str | None,
        typer.Option(help="strptime format of the dates, e.g. %d/%m/%Y (default: inferred)"),
    ] = None,
    replace: Annotated[
        bool, typer.Option(help="Replace the raw table instead of appending")
    ] = False,
):
    """Load a CSV or Parquet export into raw.<table> with a column mapping."""
    from pyprofile.errors import InputError
    from pyprofile.ingest import load_file

    mapping = {}
    for item in map_ or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise InputError(f"--map {item!r}: use contract_column=file_column")
        mapping[key.strip()] = value.strip()
    report = load_file(
        _db(db), table, file, mapping=mapping, date_format=date_format, replace=replace
    )
    table_ = Table(title=f"raw.{report.table} from {file}")
    for col in ("read", "loaded", "rejected", "already present"):
        table_.add_column(col, justify="right")
    table_.add_row(
        f"{report.read:,}", f"{report.loaded:,}", f"{report.rejected:,}", f"{report.duplicates:,}"
    )
    console.print(table_)
    for reason, n in sorted(report.reasons.items()):
        console.print(f"  rejected {n:,} row(s): {reason} (see raw.load_rejects)")
    for note in report.notes:
        console.print(f"  {note}")


@app.command("features")
@friendly
def features(
    db: DbOption = None,
    as_of: Annotated[str | None, typer.Option(help="Observation date YYYY-MM-DD")] = None,
):
    """Build and test the staging and feature layers (dbt)."""
    path = _db(db)
    _build(path, ["staging", "features"], as_of, "dbt build: staging + features")
    _summary(path, ("staging", "features"))


@app.command("demo")
@friendly
def demo(
    db: DbOption = None,
    customers: Annotated[int, typer.Option(help="Number of demo customers")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed")] = 42,
):
    """Generate the demo warehouse and run the whole pipeline (dbt build) on it."""
    path = _db(db)
    _generate(path, customers, seed, date(2025, 12, 31))
    _build(path, [], None, "dbt build: everything")
    _summary(path)


if __name__ == "__main__":  # pragma: no cover
    app()
