"""run_synthesizer: warehouse in, ml.synthetic_customers + ml.synthetic_quality + registry out."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pyprofile.errors import InputError
from pyprofile.flows.synthesizer import format_quality, run_synthesizer
from pyprofile.models.synth import Synthesizer
from pyprofile.warehouse import Warehouse
from pyprofile.warehouse.registry import load_model


def features(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    spend = np.round(rng.gamma(2, 40, n), 2)
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1),
            "order_count": rng.poisson(4, n) + 1,
            "monetary_amount": spend,
            "region": rng.choice(["north", "south", "east"], n),
            "has_purchased": spend > 60,
            "unused": pd.Series([None] * n, dtype="float64"),
        }
    )


@pytest.fixture(scope="module")
def run():
    wh = Warehouse.open(":memory:")
    wh.write("features.customer_features", features())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_synthesizer(wh, rows=250, epochs=3, batch_size=50, label="has_purchased")
    return wh, summary


def test_tables_are_written(run):
    wh, summary = run
    cols = list(wh.columns("ml.synthetic_customers"))
    assert cols == [*features().columns, "synthetic_id", "model_version", "as_of_date"]
    assert wh.count("ml.synthetic_customers") == 250 == summary["rows_written"]
    ids = wh.query("select synthetic_id from ml.synthetic_customers order by 1")["synthetic_id"]
    assert ids.to_pylist() == list(range(1, 251))
    nulls = wh.scalar(
        "select count(*) from ml.synthetic_customers where customer_id is null and unused is null"
    )
    assert nulls == 250  # left-out columns are written as nulls
    versions = wh.query("select distinct model_version from ml.synthetic_customers")
    assert versions["model_version"].to_pylist() == [summary["model_version"]]
    assert summary["excluded_columns"] == {"customer_id": "identifier", "unused": "all null"}
    assert (summary["training_rows"], summary["holdout_rows"]) == (240, 60)


def test_quality_table_and_summary_agree(run):
    wh, summary = run
    q = wh.query(
        "select metric_group, metric, score from ml.synthetic_quality "
        "where column_1 is null order by metric_group, metric"
    ).to_pylist()
    scores = {(r["metric_group"], r["metric"]): r["score"] for r in q}
    assert scores[("overall", "QualityScore")] == pytest.approx(summary["quality_score"])
    assert 0 < summary["quality_score"] <= 1
    assert scores[("utility", "tstr_auc")] == pytest.approx(summary["utility"]["tstr_auc"])
    assert scores[("privacy", "dcr_synthetic_median")] >= 0
    per_column = wh.scalar(
        "select count(*) from ml.synthetic_quality where metric_group = 'column_shapes' "
        "and column_1 is not null"
    )
    assert per_column == 4  # order_count, monetary_amount, region, has_purchased
    assert summary["utility"]["synthetic_label_rate"] == pytest.approx(
        summary["utility"]["real_label_rate"], abs=0.01
    )
    lines = dict(format_quality(summary))
    assert lines["quality score"] == f"{summary['quality_score']:.3f}"
    assert "TSTR AUC (synthetic -> real)" in lines


def test_model_is_in_the_registry(run):
    wh, summary = run
    record = load_model(wh, "synthesizer", summary["model_version"])
    assert record.metrics["quality_score"] == pytest.approx(summary["quality_score"])
    model = Synthesizer.from_artifact(load_model(wh, "synthesizer").artifact)
    assert set(model.sample(20).columns) == {
        "order_count",
        "monetary_amount",
        "region",
        "has_purchased",
    }
    # the synthetic rows scored for quality were never written to the file as a table
    stored = (
        wh.query(
            "select table_schema || '.' || table_name as t from information_schema.tables "
            "where table_catalog = current_database()"
        )
        .column("t")
        .to_pylist()
    )
    assert sorted(t for t in stored if t.startswith("ml.")) == [
        "ml.model_registry",
        "ml.synthetic_customers",
        "ml.synthetic_quality",
    ]


def test_conditions_and_privacy_filter():
    wh = Warehouse.open(":memory:")
    wh.write("features.customer_features", features())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_synthesizer(
            wh,
            rows=100,
            epochs=1,
            batch_size=50,
            conditions={"region": "east"},
            privacy_filter=True,
        )
    assert summary["rows_written"] == 100
    regions = wh.query("select distinct region from ml.synthetic_customers")["region"]
    assert regions.to_pylist() == ["east"]


def test_bad_input():
    wh = Warehouse.open(":memory:")
    wh.write("features.empty", features().iloc[:0])
    with pytest.raises(InputError, match="features.empty is empty"):
        run_synthesizer(wh, "features.empty")
    wh.write("features.customer_features", features())
    with pytest.raises(InputError, match="rows must be at least 1"):
        run_synthesizer(wh, rows=0)
    with pytest.raises(InputError, match="epochs must be at least 1"):
        run_synthesizer(wh, epochs=0)
    with pytest.raises(InputError, match="batch_size"):
        run_synthesizer(wh, batch_size=0)


def test_private_run_records_what_it_spent_in_the_quality_table_and_registry():
    pytest.importorskip("opacus")
    wh = Warehouse.open(":memory:")
    wh.write("features.customer_features", features())
    with pytest.raises(InputError, match="--privacy-filter compares synthetic rows"):
        run_synthesizer(wh, epsilon=3.0, privacy_filter=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_synthesizer(
            wh, rows=100, epochs=2, batch_size=50, label="has_purchased", epsilon=3.0
        )
    rows = wh.query(
        "select metric, score from ml.synthetic_quality where metric_group = 'privacy' "
        "and metric like 'dp_%' order by metric"
    ).to_pylist()
    assert [r["metric"] for r in rows] == ["dp_delta", "dp_epsilon"]
    assert rows[1]["score"] == summary["dp_epsilon"] and 2.997 <= rows[1]["score"] <= 3.0
    assert rows[0]["score"] == summary["dp_delta"] == 1e-5  # min(1e-5, 1 / (10 rows))
    entry = load_model(wh, "synthesizer")
    assert entry.metrics["dp_epsilon"] == summary["dp_epsilon"]
    assert entry.params["epsilon"] == 3.0
    assert (
        "differential privacy",
        f"epsilon {summary['dp_epsilon']:.3g}, delta 1e-05",
    ) in format_quality(summary)


def test_large_tables_are_judged_on_samples_and_on_the_rows_learnt_from(monkeypatch):
    """Above QUALITY_ROWS the SQL quality report compares seeded samples (the stored score is
    the report on exactly those rows); above max_rows privacy is measured against the rows the
    model learnt from."""
    import pyarrow as pa

    from pyprofile.flows import synthesizer as flow
    from pyprofile.models.data import sample_rows
    from pyprofile.models.synth import quality as q
    from pyprofile.warehouse.quality import quality_report

    monkeypatch.setattr(flow, "QUALITY_ROWS", 120)
    seen = {}
    real_privacy = q.privacy

    def privacy(train, holdout, synthetic, columns, **kw):
        seen["train"] = train
        return real_privacy(train, holdout, synthetic, columns, **kw)

    monkeypatch.setattr(q, "privacy", privacy)
    wh = Warehouse.open(":memory:")
    wh.write("features.customer_features", features())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_synthesizer(wh, rows=200, epochs=2, batch_size=50, max_rows=100)
    assert len(seen["train"]) == 100  # of 240 training rows
    source = wh.read("features.customer_features").drop_columns(["unused"])
    written = wh.read("ml.synthetic_customers")
    kinds = Synthesizer.from_artifact(load_model(wh, "synthesizer").artifact).column_kinds()
    synthetic = written.select(list(kinds))
    real = source.take(pa.array(sample_rows(source.num_rows, 120, 0)))
    fake = synthetic.take(pa.array(sample_rows(synthetic.num_rows, 120, 1)))
    with wh.scratch(real) as r, wh.scratch(fake) as s:
        report = quality_report(wh, r, s, kinds)
    assert summary["quality_score"] == pytest.approx(report.score, abs=1e-12)
    with wh.scratch(source) as r, wh.scratch(synthetic) as s:
        whole = quality_report(wh, r, s, kinds)
    assert whole.score != pytest.approx(report.score, abs=1e-12)  # the sample is not the table
