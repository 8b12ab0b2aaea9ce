"""No input runs as SQL: hostile text thrown at every value that reaches SQL.

Quotes, semicolons, comment markers, NUL, unicode, very long strings and the classic
``'); drop table raw.products; --`` go into the CLI options (``--as-of``, ``--var``, ``load
--date-format/--table/--map``), every dbt var that takes a value, and the category, status,
event type and region values of the raw data. Each example ends in either a clear user error
(the CLI exits 1 with one ``error:`` line and no traceback; ``run_dbt`` raises a
PyprofileError naming the var) or a correct build; and every table and view other than the
command's own outputs is still there with the same number of rows.

One small warehouse is built per session and copied for each example (a fresh path each time:
DuckDB keeps a process-wide cache of open database files). Examples are few and derandomized.
"""

from __future__ import annotations

import csv
import itertools
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pyprofile.cli import app
from pyprofile.dbt import run_dbt
from pyprofile.demo import generate_demo
from pyprofile.errors import PyprofileError
from pyprofile.warehouse import Warehouse
from pyprofile.warehouse.sql import quote

ATTACK = "'); drop table raw.products; --"
QUOTE_ATTACK = 'x"; drop table raw.products; --'
KNOWN = [
    "kids' toys",  # first: the simplest example Hypothesis tries (the attacks are explicit)
    "won't ship",
    ATTACK,
    QUOTE_ATTACK,
    "'",
    '"',
    "''",
    "\\",
    ";",
    "--",
    "/* */",
    "*/ select 1; /*",
    "a\x00b",
    "家具 🙂",
    "x" * 5000,
    "{{ var('as_of') }}",
    "{% do x %}",
    "line\nbreak",
    " ",
    "",
]
CHARS = st.characters(exclude_categories=("Cs",))  # lone surrogates cannot exist in UTF-8 text
HOSTILE_TEXT = st.one_of(
    st.sampled_from(KNOWN),
    st.text(CHARS, max_size=30),
    st.lists(
        st.one_of(st.sampled_from(KNOWN), st.text(CHARS, max_size=8)), min_size=2, max_size=4
    ).map("".join),
)
# what YAML or JSON may hand a var: text, numbers, booleans, null, lists and mappings of them
HOSTILE_VALUE = st.recursive(
    st.one_of(HOSTILE_TEXT, st.integers(), st.floats(), st.booleans(), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(HOSTILE_TEXT, inner, max_size=3)
    ),
    max_leaves=6,
)

# the models that use each var (a valid value builds them and their tests); the ml settings
# are checked by the on-run-start hook, so any small selection shows their error
ML_VARS = ["synth_source_table", "synth_rows", "synth_epochs", "synth_max_steps",
           "synth_batch_size", "synth_label",
           "random_state", "segments_k", "segments_k_range", "segment_epochs",
           "recommendations_k", "recommender"]  # fmt: skip
VAR_MODELS = {
    "as_of": ["int_observation_date"],
    "min_valid_date": ["base_shop__orders", "base_shop__events"],
    "raw_schema": ["staging"],
    "raw_tables": ["staging"],
    "column_map": ["staging"],
    "customer_key_type": ["staging"],
    "non_purchase_statuses": ["int_order_lines", "feat_customer__rfm"],
    "returned_statuses": ["feat_customer__orders"],
    "cancelled_statuses": ["feat_customer__orders"],
    "event_types": ["int_session_days", "feat_customer__behavior"],
    "view_event": ["int_session_days"],
    "cart_event": ["customer_product_interactions"],
    "purchase_event": ["int_session_days"],
    "max_categories": ["feat_customer__baskets"],
    "interaction_weights": ["customer_product_interactions"],
    "interaction_half_life_days": ["customer_product_interactions"],
    "horizon_days": ["customer_training"],
    **{name: ["int_observation_date"] for name in ML_VARS},
}
OUTPUT_SCHEMAS = ("staging", "features", "ml", "marts")
FEW = settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_copies = itertools.count()


@pytest.fixture(scope="session")
def base_db(tmp_path_factory) -> Path:
    """One small demo warehouse with staging and features built; examples work on copies."""
    path = tmp_path_factory.mktemp("hostile") / "base.duckdb"
    generate_demo(path, customers=200, seed=3)
    run_dbt("run", path, select=["staging", "features"])
    with Warehouse.open(path) as wh:
        wh.execute("checkpoint")
    return path


def _copy(base: Path) -> Path:
    """A fresh copy of the base warehouse at a path never used before in this process."""
    target = base.parent / f"example{next(_copies)}.duckdb"
    shutil.copy(base, target)
    return target


def _objects(path: Path, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """Every table and view outside the pipeline's output schemas, with its row count."""
    with Warehouse.open(path) as wh:
        rows = wh.query(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = current_database() and not list_contains(?, table_schema)",
            [list(OUTPUT_SCHEMAS)],
        ).to_pylist()
        names = [f"{r['table_schema']}.{r['table_name']}" for r in rows]
        return {
            name: wh.scalar(f"select count(*) from {'.'.join(quote(p) for p in name.split('.'))}")
            for name in sorted(names)
            if name not in skip
        }


def _invoke(args: list[str]):
    return CliRunner().invoke(app, args)


def _assert_clear_error(result) -> None:
    """Exit status 1 through the CLI's own error path: one `error:` line, no traceback."""
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output


def _build(path: Path, select: list[str], vars_: dict, var_name: str) -> bool:
    """dbt build with these vars: True when it built, False on a clear error naming the var."""
    try:
        run_dbt("build", path, select=select, vars=vars_)
    except PyprofileError as exc:
        # the project's own message (not dbt failing to read its arguments) names the var
        message = str(exc)
        assert "pyprofile:" in message, f"not a pyprofile message: {message}"
        assert var_name in message[message.index("pyprofile:") :], f"var not named: {message}"
        return False
    return True


# --- the CLI -------------------------------------------------------------------------------


@FEW
@given(command=st.sampled_from(["features", "run"]), as_of=HOSTILE_TEXT)
@example(command="features", as_of=ATTACK)
@example(command="run", as_of="2024-02-30")
def test_as_of_option_is_a_date_or_a_clear_error(base_db, command, as_of):
    path = _copy(base_db)
    before = _objects(path)
    result = _invoke([command, "--db", str(path), "--as-of", as_of])
    if result.exit_code != 0:
        _assert_clear_error(result)
    assert _objects(path) == before


@FEW
@given(name=st.sampled_from(sorted(VAR_MODELS)), text=HOSTILE_TEXT)
@example(name="as_of", text=ATTACK)
@example(name="as_of", text="2024-01-31")  # YAML reads a date, not text
@example(name="non_purchase_statuses", text=f"[{ATTACK!r}]")
def test_var_option_is_parsed_and_checked(base_db, name, text):
    """`--var NAME=VALUE` text goes through YAML, JSON and dbt without becoming SQL.

    A second var that is always wrong (horizon_days=-1) keeps the run from training models
    whenever the first one is fine: every example must end in one clear error.
    """
    path = _copy(base_db)
    before = _objects(path)
    args = ["run", "--db", str(path), "--var", f"{name}={text}", "--var", "horizon_days=-1"]
    _assert_clear_error(_invoke(args))
    assert _objects(path) == before


def _orders_csv(path: Path, status_column: str) -> Path:
    """A small orders export with raw.orders' columns; the status column has a hostile name."""
    file = path.parent / f"{path.stem}.csv"
    with open(file, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["order_id", "customer_id", "ordered_at", "amount", "discount", status_column]
        )
        writer.writerow(["L1", "C000001", "2025-03-01 10:00:00", "10.5", "0", "completed"])
        writer.writerow(["L2", "C000002", "01/03/2025 11:00", "7", "", "won't ship"])
    return file


@settings(FEW, max_examples=8)
@given(
    date_format=st.one_of(st.none(), HOSTILE_TEXT),
    table=st.one_of(st.just("orders"), HOSTILE_TEXT),
    column=HOSTILE_TEXT,
)
@example(date_format=ATTACK, table="orders", column="status")
@example(date_format="%d/%m/%Y %H:%M", table="orders", column=QUOTE_ATTACK)
@example(date_format=None, table=ATTACK, column="status")
@example(date_format="%Q%", table="orders", column="status")
def test_load_options_never_become_sql(base_db, date_format, table, column):
    path = _copy(base_db)
    before = _objects(path, skip=("raw.load_rejects", f"raw.{table}"))
    orders_before = _objects(path)["raw.orders"]
    args = ["load", str(_orders_csv(path, column.replace("\x00", ""))), "--table", table]
    args += ["--db", str(path), "--map", f"status={column}"]
    if date_format is not None:
        args += ["--date-format", date_format]
    result = _invoke(args)
    if result.exit_code != 0:
        _assert_clear_error(result)
    assert _objects(path, skip=("raw.load_rejects", f"raw.{table}")) == before
    # the target table only ever gains the file's rows
    assert orders_before <= _objects(path)["raw.orders"] <= orders_before + 2


# --- dbt vars --------------------------------------------------------------------------------


@settings(FEW, max_examples=6)
@given(name=st.sampled_from(sorted(VAR_MODELS)), value=HOSTILE_VALUE)
@example(name="as_of", value=ATTACK)
@example(name="min_valid_date", value="1970-01-01' or true; drop table raw.products; --")
@example(name="raw_schema", value=QUOTE_ATTACK)
@example(name="raw_tables", value={"products": ATTACK})
@example(name="column_map", value={"orders": {"status": QUOTE_ATTACK}})
@example(name="max_categories", value="3; drop table raw.products")
@example(name="interaction_weights", value={"purchase": "5) ; drop table raw.products; --"})
@example(name="interaction_half_life_days", value="1e999")
@example(name="horizon_days", value=f"90{ATTACK}")
@example(name="segments_k_range", value=ATTACK)
@example(name="view_event", value="家具 🙂")
@example(name="customer_key_type", value="bigint) as x; drop table raw.products; --")
def test_every_var_is_a_value_or_a_clear_error(base_db, name, value):
    path = _copy(base_db)
    before = _objects(path)
    _build(path, VAR_MODELS[name], {name: value}, name)
    assert _objects(path) == before


# --- values inside the data ----------------------------------------------------------------

# the known attacks at once; the vars get them too (NUL aside: a var with NUL is an error)
KNOWN_WORDS = [ATTACK, "kids' toys", "won't ship", QUOTE_ATTACK, "a\x00b", "家具",
               "/* c */ --", ";", "y" * 3000, "Other", "1st"]  # fmt: skip


def _spoil(path: Path, words: list[str]) -> list[str]:
    """Write `words` into categories, statuses, event types and regions of the raw data, and
    a status column under a hostile name; returns the words as staging normalises them."""
    with Warehouse.open(path) as wh:
        for i, word in enumerate(words):
            wh.execute(
                "update raw.products set category = ? where product_id in "
                "(select distinct product_id from raw.order_items order by 1 limit 1 offset ?)",
                [word, i],
            )
            wh.execute(
                "update raw.orders set status = ? where order_id in "
                "(select order_id from raw.orders order by order_id limit 3 offset ?)",
                [word, 3 * i],
            )
            wh.execute(
                "update raw.events set event_type = ? where rowid in "
                "(select rowid from raw.events order by rowid limit 4 offset ?)",
                [word, 4 * i],
            )
            wh.execute(
                "update raw.customers set region = ? where customer_id in "
                "(select customer_id from raw.customers order by 1 limit 1 offset ?)",
                [word, i],
            )
        wh.execute(f"alter table raw.orders add column {quote(QUOTE_ATTACK)} varchar")
        wh.execute(f"update raw.orders set {quote(QUOTE_ATTACK)} = status")
        return [wh.scalar("select lower(trim(?))", [w]) for w in words]


def _check_features(
    path: Path, statuses: list[str], event_types: list[str], normalised: list[str]
) -> None:
    """The features agree with counts computed here with bound parameters."""
    with Warehouse.open(path) as wh:
        as_of = "(select as_of_date from features.int_observation_date)"
        wrong = wh.scalar(
            f"""select count(*) from features.customer_features as f
            full join (
                select customer_id, count(*) as n from staging.stg_shop__orders
                where not list_contains(?, status) and cast(ordered_at as date) <= {as_of}
                group by customer_id
            ) as o using (customer_id)
            where coalesce(f.order_count, 0) <> coalesce(o.n, 0)""",
            [statuses],
        )
        assert wrong == 0, "order counts disagree with the statuses"
        columns = list(wh.columns("features.customer_features"))
        events = [c for c in columns if c.endswith("_events")]
        counted = wh.scalar(
            "select sum(" + " + ".join(quote(c) for c in events) + ") "
            "from features.customer_features"
        )
        expected = wh.scalar(
            f"""select count(*) from staging.stg_shop__events
            where list_contains(?, event_type) and cast(event_at as date) <= {as_of}
            and customer_id in (select customer_id from features.customer_features)""",
            [event_types],
        )
        assert counted == expected, "event counts disagree with event_types"
        shares = [c for c in columns if c.startswith("category_") and c.endswith("_share")]
        sums = wh.query(
            "select distinct round(" + " + ".join(quote(c) for c in shares) + ", 9) as s "
            "from features.customer_features where has_purchased"
        ).column("s")
        assert set(sums.to_pylist()) <= {0.0, 1.0}, "category shares do not add up"
        staged = sum(wh.count(f"staging.stg_shop__{t}") for t in ("orders", "events", "products"))
        rejected = wh.scalar(
            "select count(*) from staging.rejected_rows "
            "where table_name in ('orders', 'events', 'products')"
        )
        raw = sum(wh.count(f"raw.{t}") for t in ("orders", "events", "products"))
        assert staged + rejected == raw
        regions = wh.query("select distinct region from features.customer_features").column(0)
        assert set(normalised) <= set(regions.to_pylist()), "a region did not survive as a value"


@settings(FEW, max_examples=2)
@given(words=st.lists(HOSTILE_TEXT, min_size=1, max_size=4, unique=True))
@example(words=KNOWN_WORDS)
def test_hostile_data_and_text_vars_build_correctly(base_db, words):
    path = _copy(base_db)
    normalised = _spoil(path, words)
    before = _objects(path)
    for_vars = list(dict.fromkeys(w.replace("\x00", "") for w in normalised))
    statuses = ["cancelled", "canceled", "returned", "refunded", *for_vars]
    event_types = ["page_view", "product_view", "add_to_cart", "checkout", "purchase", *for_vars]
    vars_ = {
        "non_purchase_statuses": statuses,
        "cancelled_statuses": for_vars,
        "event_types": event_types,
        "view_event": for_vars[0],
        "cart_event": for_vars[-1],
        "interaction_weights": {"product_view": 1, "purchase": 5, **dict.fromkeys(for_vars, 2)},
        "column_map": {"orders": {"status": QUOTE_ATTACK}},
        "max_categories": 40,
    }
    # the one clear error possible here: two event types that make the same column name
    built = _build(path, ["staging", "features"], vars_, "event_types")
    assert built or words != KNOWN_WORDS, "the known attacks must build"
    if built:
        _check_features(path, statuses, event_types, normalised)
    assert _objects(path) == before
