"""run_synth_warehouse: a new warehouse file with synthetic raw.* (integrity by construction),
its quality in ml.synthetic_quality, the source untouched, bad input refused."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.base import clone
from typer.testing import CliRunner

from pyprofile.cli import app
from pyprofile.errors import InputError
from pyprofile.flows.synth_warehouse import (
    MARK,
    format_warehouse,
    read_shop,
    run_synth_warehouse,
)
from pyprofile.models.synth import calendar as cal
from pyprofile.models.synth import templates
from pyprofile.models.synth.checks import order_checks
from pyprofile.models.synth.privacy import sequence_copies
from pyprofile.models.synth.relational import RelationalSynthesizer
from pyprofile.warehouse import Warehouse

FAST = {"epochs": 2, "batch_size": 100}
RAW = ["customers", "orders", "order_items", "products", "events"]


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _run(src, out, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_synth_warehouse(src, out, customers=300, random_state=0, **FAST, **kwargs)


@pytest.fixture(scope="module")
def synth(demo_db, tmp_path_factory):
    """The flow on the 1,500-customer demo warehouse: 300 synthetic customers, evaluated."""
    out = tmp_path_factory.mktemp("synth") / "synthetic.duckdb"
    before = (_digest(demo_db), Path(demo_db).stat().st_mtime_ns)
    summary = _run(demo_db, out)
    return out, summary, before


def _query(path, sql):
    """Rows of ``sql`` on the warehouse ``path`` (shared with dbt's connection when it is
    still open in this process)."""
    with Warehouse.open(path, read_only=True) as wh:
        table = wh.query(sql)
    return (
        list(zip(*(c.to_pylist() for c in table.columns), strict=True)) if table.num_columns else []
    )


def test_referential_integrity(synth):
    out, summary, _ = synth
    counts = dict(
        _query(
            out,
            "select table_name, estimated_size from duckdb_tables() where schema_name = 'raw' "
            "and database_name = current_database()",
        )
    )
    assert set(counts) == set(RAW)
    orphans = {
        "orders without customer": "select count(*) from raw.orders o "
        "left join raw.customers c using (customer_id) where c.customer_id is null",
        "lines without order": "select count(*) from raw.order_items i "
        "left join raw.orders o using (order_id) where o.order_id is null",
        "lines without product": "select count(*) from raw.order_items i "
        "left join raw.products p using (product_id) where p.product_id is null",
        "events without customer": "select count(*) from raw.events e "
        "left join raw.customers c using (customer_id) where c.customer_id is null",
        "events with unknown product": "select count(*) from raw.events e left join "
        "raw.products p using (product_id) where e.product_id is not null and p.product_id is null",
    }
    for what, sql in orphans.items():
        assert _query(out, sql) == [(0,)], what
    sizes = {t: _query(out, f"select count(*) from raw.{t}")[0][0] for t in RAW}
    assert sizes["customers"] == 300
    assert min(sizes.values()) > 0
    assert summary["rows_written"] == {f"raw.{t}": n for t, n in sizes.items()}
    # staging, run by the flow's evaluation, rejected nothing: every synthetic row is valid
    assert _query(out, "select count(*) from staging.rejected_rows") == [(0,)]
    # and the features were built on them, by the unchanged dbt project
    built = _query(out, "select count(*) from features.customer_features")[0][0]
    assert 0.5 * sizes["customers"] < built <= sizes["customers"]


def test_no_real_id_or_order_sequence_is_copied(synth, demo_db):
    out, summary, _ = synth
    for table, key in (("customers", "customer_id"), ("orders", "order_id")):
        sql = f"select {key} from raw.{table}"
        assert not set(_query(out, sql)) & set(_query(demo_db, sql)), table
    sequence = """select string_agg(epoch(ordered_at) || ':' || amount, ',' order by
        ordered_at, amount) as seq from raw.orders group by customer_id"""
    real = set(_query(demo_db, sequence))
    assert len(real) > 100
    assert not set(_query(out, sequence)) & real
    assert summary["sequences"]["sequence_exact_copies"] == 0
    # products are the shop's catalogue, shared as they are
    assert _query(out, "select count(*) from raw.products") == _query(
        demo_db, "select count(*) from raw.products"
    )


def test_source_untouched_and_output_is_marked(synth, demo_db):
    out, _, before = synth
    assert (_digest(demo_db), Path(demo_db).stat().st_mtime_ns) == before
    marks = _query(
        out,
        "select distinct comment from duckdb_tables() where schema_name = 'raw' "
        "and database_name = current_database()",
    )
    assert marks == [(MARK,)]
    assert not list(Path(out).parent.glob(".*.partial*"))  # no temporary file left


def test_quality_table(synth):
    out, summary, _ = synth
    rows = _query(
        out,
        "select scope, source_table, metric_group, metric, score, model_version, as_of_date "
        "from ml.synthetic_quality",
    )
    frame = pd.DataFrame(rows, columns=["scope", "source", "group", "metric", "score", "v", "d"])
    assert set(frame["scope"]) == {"table", "warehouse"}
    assert set(frame["v"]) == {summary["model_version"]}
    assert frame["d"].notna().all() and set(frame["d"]) == {summary["as_of_date"]}
    overall = frame[(frame["group"] == "overall") & (frame["scope"] == "table")]["score"]
    assert overall.tolist() == pytest.approx([summary["quality_score"]])
    metrics = set(frame["metric"])
    assert {"orders_per_customer", "order_weekday", "order_status", "view_to_cart_rate"} <= metrics
    assert {"mia_auc", "dcr_synthetic_median", "tstr_auc", "sequence_exact_copies"} <= metrics
    checks = frame[frame["group"] == "order_checks"]["score"]
    assert checks.between(0, 1).all()
    lines = dict(format_warehouse(summary))
    assert lines["features: quality score"] == f"{summary['quality_score']:.3f}"
    assert lines["raw.customers rows"] == "300"
    assert lines["copied order sequences"] == "0"


def test_deterministic_and_replaces_its_own_output(synth, demo_db, tmp_path):
    """A seed gives the same warehouse (as the ``synth`` fixture's, whose evaluation also
    proved that the unchanged dbt project builds on it: a failed build raises); the CLI may
    replace a file this flow wrote, and refuses the source with one error line."""
    expected = {t: _query(synth[0], f"select * from raw.{t} order by all") for t in RAW}
    a = tmp_path / "a.duckdb"
    _run(demo_db, a, evaluate=False)
    for table in RAW:
        assert _query(a, f"select * from raw.{table} order by all") == expected[table], table
    inode = a.stat().st_ino
    args = ["--db", str(demo_db), "--out", str(a), "--customers", "300", "--seed", "0"]
    args += ["--epochs", "2", "--batch-size", "100", "--no-evaluate"]
    result = CliRunner().invoke(app, ["synth-warehouse", *args])
    assert result.exit_code == 0, result.output
    assert "raw.orders rows" in result.output
    for table in RAW:
        assert _query(a, f"select * from raw.{table} order by all") == expected[table], table
    assert a.stat().st_ino != inode  # a new file, renamed into place
    refused = CliRunner().invoke(
        app, ["synth-warehouse", "--db", str(demo_db), "--out", str(demo_db)]
    )
    assert refused.exit_code == 1
    assert "error:" in refused.output and "must be a new file" in refused.output
    assert "Traceback" not in refused.output


def test_bad_input(demo_db, tmp_path):
    with pytest.raises(InputError, match="must be a new file"):
        run_synth_warehouse(demo_db, demo_db, evaluate=False)
    with pytest.raises(InputError, match="does not exist"):
        run_synth_warehouse(tmp_path / "nope.duckdb", tmp_path / "x.duckdb")
    theirs = tmp_path / "theirs.duckdb"
    with Warehouse.open(theirs) as wh:
        wh.write("raw.customers", pd.DataFrame({"customer_id": ["a"]}))
    text = tmp_path / "notes.duckdb"
    text.write_text("not a warehouse")
    for existing in (theirs, text):
        digest = _digest(existing)
        with pytest.raises(InputError, match="was not written by pyprofile"):
            run_synth_warehouse(demo_db, existing, evaluate=False)
        assert _digest(existing) == digest
    partial = tmp_path / "partial.duckdb"
    with Warehouse.open(partial) as wh:
        wh.write("raw.customers", pd.DataFrame({"customer_id": ["a"]}))
        wh.write("raw.orders", pd.DataFrame({"order_id": ["o"], "customer_id": ["a"]}))
    with pytest.raises(InputError, match=r"raw\.order_items, raw\.products"):
        run_synth_warehouse(partial, tmp_path / "out.duckdb", evaluate=False)
    assert not (tmp_path / "out.duckdb").exists()


def test_missing_required_column(tmp_path):
    src = tmp_path / "src.duckdb"
    with Warehouse.open(src) as wh:
        for t in ("customers", "order_items", "products"):
            wh.write(
                f"raw.{t}",
                pd.DataFrame(
                    {
                        "customer_id": ["a"],
                        "order_id": ["o"],
                        "product_id": ["p"],
                        "quantity": [1],
                        "unit_price": [1.0],
                    }
                ),
            )
        wh.write("raw.orders", pd.DataFrame({"order_id": ["o"], "customer_id": ["a"]}))
    with pytest.raises(InputError, match="lacks required column.*ordered_at, amount"):
        run_synth_warehouse(src, tmp_path / "out.duckdb", evaluate=False)


# ---------------------------------------------------------------------- the model itself
@pytest.fixture(scope="module")
def shop(demo_db):
    with Warehouse.open(demo_db, read_only=True) as wh:
        real, _ = read_shop(wh)
    return real


def test_estimator_round_trip_and_clone(shop):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = RelationalSynthesizer(**FAST, random_state=3).fit(**shop)
    assert clone(model).get_params() == model.get_params()
    blob = model.to_artifact()
    loaded = RelationalSynthesizer.from_artifact(blob)
    assert loaded.to_artifact() == blob
    a, b = model.sample(120, random_state=5), loaded.sample(120, random_state=5)
    for name in a:
        assert a[name].equals(b[name]), name
        assert a[name].schema.names == shop[name].schema.names
    other = model.sample(120, random_state=6)
    assert not a["orders"].equals(other["orders"])  # another seed, another shop
    with pytest.raises(InputError, match="customers must be at least 1"):
        model.sample(0)


def test_sessions_replay_the_funnel(synth):
    """Every order with a purchase event at its time has its products viewed and carted in
    that session, as in the demo's real sessions."""
    out, summary, _ = synth
    share = _query(
        out,
        "select avg((exists (select 1 from raw.events e where e.customer_id = o.customer_id "
        "and e.event_type = 'purchase' and e.event_at = o.ordered_at))::int) from raw.orders o",
    )[0][0]
    assert share > 0.95  # every real demo order has its purchase session
    missing = _query(
        out,
        """with buy as (select customer_id, session_id, event_at from raw.events
                        where event_type = 'purchase')
        select count(*) from raw.orders o
        join buy b on b.customer_id = o.customer_id and b.event_at = o.ordered_at
        join raw.order_items i on i.order_id = o.order_id
        where not exists (select 1 from raw.events e where e.session_id = b.session_id
                          and e.event_type = 'add_to_cart' and e.product_id = i.product_id)""",
    )
    assert missing == [(0,)]
    assert summary["order_checks"]["cart_to_purchase_rate"]["score"] > 0.9


# ---------------------------------------------------------------------- the pieces
def test_daily_intensity_recovers_a_weekly_cycle():
    """Customers active over random windows, acting twice as often on weekends: the estimate
    finds the weekend factor however the windows overlap."""
    rng = np.random.default_rng(0)
    n_days, truth = 364, np.where(np.arange(364) % 7 >= 5, 2.0, 1.0)
    sampler = cal.DaySampler(truth)
    first = rng.integers(0, 300, 4000)
    last = np.minimum(first + rng.integers(10, 200, 4000), n_days - 1)
    interior = rng.poisson(8, 4000)
    days = sampler.days(rng, np.repeat(first, interior), np.repeat(last, interior))
    w = cal.daily_intensity(first, last, interior, days, n_days, day0_weekday=0)
    weekend = w[np.arange(n_days) % 7 >= 5].mean() / w[np.arange(n_days) % 7 < 5].mean()
    assert weekend == pytest.approx(2.0, rel=0.1)


def test_order_checks_and_sequence_copies_on_known_frames():
    t0 = pd.Timestamp("2025-01-06 10:00")  # a Monday
    orders = pd.DataFrame(
        {
            "order_id": ["a", "b", "c"],
            "customer_id": ["x", "x", "y"],
            "ordered_at": [t0, t0 + pd.Timedelta(days=2), t0],
            "amount": [10.0, 20.0, 10.0],
        }
    )
    shop = {
        "customers": pd.DataFrame({"customer_id": ["x", "y", "z"]}),
        "orders": orders,
        "order_items": pd.DataFrame({"order_id": ["a", "b", "c"], "product_id": ["p"] * 3}),
    }
    same = {r["metric"]: r["score"] for r in order_checks(shop, shop)}
    assert all(v == pytest.approx(1.0) for v in same.values())
    later = dict(
        shop, orders=orders.assign(ordered_at=orders["ordered_at"] + pd.Timedelta(hours=1))
    )
    moved = {r["metric"]: r["score"] for r in order_checks(shop, later)}
    assert moved["order_hour"] == pytest.approx(0.0)  # every order in another hour
    assert moved["days_between_orders"] == pytest.approx(1.0)
    copies = sequence_copies(
        orders[orders.customer_id == "x"],
        orders[orders.customer_id == "y"],
        orders.replace({"x": "s1", "y": "s2"}),
    )
    assert copies["sequence_exact_copies"] == 2
    assert sequence_copies(orders, orders.iloc[:0], later["orders"])["sequence_exact_copies"] == 0


def test_replay_carts_every_line_of_an_order_bigger_than_its_template():
    """A one-line purchase template (view, cart, purchase) replayed for orders of 3 and 1
    lines: every product of each order is viewed and carted once, at the template's times."""
    tpl = templates.Templates(
        kind=np.array([1]),
        lines=np.array([1]),
        others=np.array([0]),
        start=np.array([0]),
        length=np.array([3]),
        ev_type=np.array([0, 1, 2]),
        ev_offset=np.array([-60, -30, 0]),
        ev_role=np.array([templates.LINE, templates.LINE, templates.NONE]),
        ev_rank=np.array([0, 0, 0]),
    )
    r = templates.Replay(
        template=np.array([0, 0]),
        anchor=np.array([1000, 5000]),
        customer=np.array([0, 1]),
        line_start=np.array([0, 3]),
        line_count=np.array([3, 1]),
        line_products=np.array([7, 8, 9, 4]),
    )
    out = templates.replay(
        tpl, r, lambda rows, rng: np.full(len(rows), -2), np.random.default_rng(0)
    )
    events = pd.DataFrame(out)
    carts = events[events["type"] == 1]
    assert sorted(zip(carts["session"], carts["product"], strict=True)) == [
        (0, 7),
        (0, 8),
        (0, 9),
        (1, 4),
    ]
    views = events[events["type"] == 0].sort_values("product")
    assert views["product"].tolist() == [4, 7, 8, 9]
    assert (events["type"] == 2).sum() == 2 and (events["product"] != -2).all()
    assert views["seconds"].tolist()[1:] == [views["seconds"].iloc[1]] * 3  # same time
    assert len(events) == 2 * 3 + 1 + 2 * 1 + 1


def test_a_column_the_source_type_cannot_hold_stops_with_one_line():
    """The copy keeps the source's raw types; a value they cannot hold is an error naming the
    table and column, never a column silently written in another type."""
    from pyprofile.flows.synth_warehouse import _as_raw

    schema = pa.schema([("customer_id", pa.string()), ("age", pa.int64())])
    fine = _as_raw("customers", pa.table({"customer_id": ["a"], "age": [41.0]}), schema)
    assert fine.schema == schema and fine["age"].to_pylist() == [41]
    with pytest.raises(InputError, match=r"raw\.customers\.age cannot be written as int64"):
        _as_raw("customers", pa.table({"customer_id": ["a"], "age": ["forty"]}), schema)
