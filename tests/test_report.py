"""HTML report: helpers against hand-computed references, sections present/skipped, and the file
opened in a real headless Chromium (no console errors, no network, a screenshot with plots)."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import select
import shutil
import subprocess
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pyprofile.dbt import run_step
from pyprofile.errors import WarehouseError
from pyprofile.models.artifact import pack
from pyprofile.models.propensity import PropensityModel
from pyprofile.report import build_report, lift_table, rfm_grid
from pyprofile.warehouse import Warehouse
from pyprofile.warehouse.registry import load_model, save_model

CHROMIUM = "/usr/bin/chromium"
SEGMENT_NAMES = ("Loyal big spenders", "Bargain hunters", "Newcomers", "Drifting away")
SCORES_VERSION = "select max(model_version) from ml.customer_scores"


# --------------------------------------------------------------------------- test warehouse
def _features(n: int, rng: np.random.Generator) -> pd.DataFrame:
    bought = rng.random(n) < 0.85
    orders = np.where(bought, rng.poisson(4, n) + 1, 0)
    spend = np.where(bought, orders * rng.gamma(3, 25, n), 0.0)
    recency = np.where(bought, rng.integers(0, 365, n), np.nan)
    r = pd.Series(np.where(bought, 5 - np.minimum(recency // 73, 4), np.nan))
    f = pd.Series(np.where(bought, np.clip(orders, 1, 5), np.nan))
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "as_of_date": pd.Timestamp("2025-12-31").date(),
            "recency_days": pd.Series(recency).astype("Int64"),
            "order_count": orders,
            "monetary_amount": spend,
            "avg_order_amount": np.where(bought, spend / np.maximum(orders, 1), np.nan),
            "tenure_days": rng.integers(30, 900, n),
            "frequency": np.maximum(orders - 1, 0),
            "recency": rng.integers(0, 300, n),
            "T": rng.integers(300, 900, n),
            "monetary_value": np.where(orders > 1, spend / np.maximum(orders, 1), 0.0),
            "r_score": r.astype("Int64"),
            "f_score": f.astype("Int64"),
            "rfm_segment": np.where(
                bought, rng.choice(["champions", "loyal", "at_risk", "hibernating"], n), "prospect"
            ),
            "age": rng.integers(18, 80, n),
            "region": rng.choice(["north", "south", "east", "west"], n),
            "channel": rng.choice(["web", "app", "store"], n),
            "has_purchased": bought,
        }
    )


def _ml_tables(feat: pd.DataFrame, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    n = len(feat)
    seg = rng.integers(0, len(SEGMENT_NAMES), n)
    centers = np.array([[0, 0], [4, 1], [1, 4], [5, 5]], dtype=float)
    xy = centers[seg] + rng.normal(0, 0.8, (n, 2))
    segments = pd.DataFrame(
        {
            "customer_id": feat["customer_id"],
            "segment_id": seg,
            "segment_name": [SEGMENT_NAMES[s] for s in seg],
            "distance_to_centroid": rng.random(n),
            "map_x": xy[:, 0],
            "map_y": xy[:, 1],
            "model_version": "vseg000000001",
        }
    )
    sizes = np.bincount(seg, minlength=len(SEGMENT_NAMES))
    profiles = pd.DataFrame(
        {
            "segment_id": np.arange(len(SEGMENT_NAMES)),
            "segment_name": SEGMENT_NAMES,
            "size": sizes,
            "share": sizes / n,
            "description": [f"Persona text for {name.lower()}." for name in SEGMENT_NAMES],
            "top_features": ["high monetary_amount", "high discount_share", "low tenure", "old"],
            "model_version": "vseg000000001",
        }
    )
    synth = feat.sample(n, random_state=1, ignore_index=True).copy()
    synth["monetary_amount"] = synth["monetary_amount"] * rng.lognormal(0, 0.2, n)
    synth["synthetic_id"] = np.arange(1, n + 1)
    synth["model_version"] = "vsyn000000001"
    quality = pd.DataFrame(
        [
            ("overall", "QualityScore", None, 0.87),
            ("column_shapes", "mean", None, 0.9),
            ("column_pair_trends", "mean", None, 0.84),
            ("column_shapes", "KSComplement", "monetary_amount", 0.81),
            ("column_shapes", "KSComplement", "age", 0.95),
            ("column_shapes", "TVComplement", "region", 0.6),
            ("privacy", "dcr_synthetic_median", None, 0.4),
            ("privacy", "dcr_holdout_median", None, 0.38),
            ("privacy", "exact_copy_share_synthetic", None, 0.0),
        ],
        columns=["metric_group", "metric", "column_1", "score"],
    ).assign(
        model_version="vsyn000000001",
        source_table="features.customer_features",
        created_at=pd.Timestamp("2026-01-01"),
        column_2=None,
        counted=True,
    )
    rec_days = pd.to_numeric(feat["recency_days"]).fillna(400).to_numpy(float)
    churn = 1 / (1 + np.exp(-(rec_days - 180) / 60))
    clv = np.where(feat["has_purchased"], rng.lognormal(4, 1, n), np.nan)
    scores = pd.DataFrame(
        {
            "customer_id": feat["customer_id"],
            "churn_probability": churn,
            "purchase_probability": 1 - churn,
            "churn_reason_1": rng.choice(["recency_days high", "order_count low"], n),
            "churn_reason_2": None,
            "churn_reason_3": None,
            "p_alive": 1 - churn * 0.8,
            "expected_purchases_90d": rng.random(n) * 2,
            "expected_avg_order_value": rng.gamma(3, 25, n),
            "clv_12m": clv,
            "model_version": "vsco000000001",
        }
    )
    products = pd.DataFrame(
        {
            "product_id": [f"P{i:03d}" for i in range(40)],
            "category": rng.choice(["toys", "books", "home"], 40),
            "brand": [f"brand_{i % 7}" for i in range(40)],
            "price": rng.gamma(2, 10, 40),
        }
    )
    recs = pd.DataFrame(
        {
            "customer_id": np.repeat(feat["customer_id"].to_numpy(), 5),
            "rank": np.tile(np.arange(1, 6), n),
            # segment s favours products 10*s .. 10*s+9, so each panel has its own top products
            "product_id": [
                f"P{(10 * s + int(rng.integers(0, 10))) % 40:03d}" for s in np.repeat(seg, 5)
            ],
            "score": rng.random(5 * n),
            "reason": "similar customers bought it",
            "model_version": "vrec000000001",
        }
    )
    return {
        "ml.customer_segments": segments,
        "ml.segment_profiles": profiles,
        "ml.synthetic_customers": synth,
        "ml.synthetic_quality": quality,
        "ml.customer_scores": scores,
        "raw.products": products,
        "ml.recommendations": recs,
    }


def _register_churn_model(wh: Warehouse, feat: pd.DataFrame, rng: np.random.Generator) -> str:
    """A labelled training table and a churn model + scoring bundle in the registry, stored the
    way pyprofile.flows.scoring.run_scoring stores them; returns the bundle version.

    A second churn model, trained later on another split but named by no bundle, is stored
    too: the report must show the bundle's model, not the registry's latest."""
    train = feat[["customer_id", "recency_days", "order_count", "monetary_amount"]].copy()
    days = pd.to_numeric(train["recency_days"]).fillna(400).to_numpy(float)
    train["churned"] = (rng.random(len(train)) < 1 / (1 + np.exp(-(days - 180) / 60))).astype(int)
    wh.write("features.customer_training", train)
    X, y = train.drop(columns=["customer_id", "churned"]), train["churned"]
    common = {"horizon_days": 90, "training_table": "features.customer_training"}

    def fit_and_save(seed: int) -> str:
        churn = PropensityModel(model="linear", calibration="none", random_state=seed).fit(X, y)
        return save_model(
            wh,
            "churn",
            churn.to_artifact(),
            params={**common, "label": "churned"},
            metrics=churn.metrics_,
        )

    churn_version = fit_and_save(3)
    bundle = pack({}, {"components": {"churn": churn_version}})
    scores_version = save_model(
        wh, "customer_scores", bundle, params={**common, "components": {"churn": churn_version}}
    )
    fit_and_save(4)  # later, and named by no bundle
    return scores_version


@pytest.fixture(scope="module")
def full_db(tmp_path_factory):
    """A warehouse with the feature table, every ml table the report reads and a churn model."""
    rng = np.random.default_rng(11)
    path = tmp_path_factory.mktemp("report") / "full.duckdb"
    feat = _features(900, rng)
    with Warehouse.open(path) as wh:
        wh.write("features.customer_features", feat)
        tables = _ml_tables(feat, rng)
        tables["ml.customer_scores"]["model_version"] = _register_churn_model(wh, feat, rng)
        wh.write_many(tables)
        wh.write_many(_run_logs())
    return path


def _run_logs() -> dict[str, pa.Table]:
    """The dbt ml steps' run logs: three done, one done with a part skipped."""
    done = {"rows": 900, "model_version": "v000000000001"}
    partial = {**done, "skipped": {"clv": "no customer bought twice"}}
    return {
        "ml.run_synthesizer": run_step("synthesizer", "ml.synthetic_customers", lambda: done),
        "ml.run_segmentation": run_step("segmenter", "ml.customer_segments", lambda: done),
        "ml.run_scoring": run_step("customer_scores", "ml.customer_scores", lambda: partial),
        "ml.run_recommendations": run_step("recommender", "ml.recommendations", lambda: done),
    }


@pytest.fixture(scope="module")
def full_report(full_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("report_html") / "report.html"
    summary = build_report(full_db, out, title="Test shop")
    return summary, out.read_text(encoding="utf-8")


def test_steps_section_says_what_ran_and_what_was_skipped(full_report):
    summary, text = full_report
    steps = summary.data["steps"].set_index("step")
    assert steps["status"].to_dict() == {
        "synthesizer": "ok",
        "segmentation": "ok",
        "scoring": "ok",
        "recommendations": "ok",
    }
    assert "scoring (ok): clv skipped: no customer bought twice" in text


# --------------------------------------------------------------------------- helpers
def test_rfm_grid_counts_and_mean_spend_by_hand():
    frame = pd.DataFrame(
        {
            "r_score": [5, 5, 5, 1, 1, None],
            "f_score": [1, 1, 3, 2, 2, None],
            "monetary_amount": [10.0, 30.0, 100.0, 5.0, 7.0, 0.0],
        }
    )
    grid = rfm_grid(frame)
    assert grid.to_dict("records") == [
        {"r_score": 1, "f_score": 2, "customers": 2, "mean_spend": 6.0},
        {"r_score": 5, "f_score": 1, "customers": 2, "mean_spend": 20.0},
        {"r_score": 5, "f_score": 3, "customers": 1, "mean_spend": 100.0},
    ]


def test_lift_table_by_hand():
    # 10 customers, 4 churners; scores put churners at positions 1, 2, 4 and 9 of the ranking.
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    y = np.array([1, 1, 0, 1, 0, 0, 0, 0, 1, 0])
    lift = lift_table(y, score, bins=5)  # groups of 2 in score order
    np.testing.assert_array_equal(lift["positives"], [2, 1, 0, 0, 1])
    np.testing.assert_allclose(lift["lift"], [2.5, 1.25, 0.0, 0.0, 1.25])
    np.testing.assert_allclose(lift["cumulative_lift"], [2.5, 1.875, 1.25, 0.9375, 1.0])
    np.testing.assert_allclose(lift["cumulative_gain"], [0.5, 0.75, 0.75, 0.75, 1.0])
    # uneven split: the first n % bins groups get one more row, ties keep input order
    uneven = lift_table([1, 0, 0, 1, 0, 0, 0], np.zeros(7), bins=3)
    assert uneven["customers"].tolist() == [3, 2, 2]
    assert uneven["positives"].tolist() == [1, 1, 0]


# --------------------------------------------------------------------------- the report
def test_full_report_renders_every_section(full_report, full_db):
    summary, text = full_report
    assert summary.skipped == {}
    assert summary.rendered == [
        "steps",
        "segments",
        "rfm",
        "segment_map",
        "synthetic",
        "churn",
        "clv",
        "recommendations",
    ]
    # one embedded SVG image per plot, nothing fetched from anywhere, no scripts
    plots = re.findall(
        r'<img class="plot" src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', text
    )
    assert len(plots) == summary.plots == 9
    for data in plots:
        assert base64.b64decode(data).lstrip().startswith(b"<?xml")
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    assert summary.size_bytes == len(text.encode("utf-8"))
    # header numbers and persona cards come from the tables
    with Warehouse.open(full_db, read_only=True) as wh:
        n = wh.count("features.customer_features")
        segs = wh.query(
            "select segment_name, count(*) as n from ml.customer_segments group by 1"
        ).to_pylist()
    assert f'>{n:,}</div><div class="label">customers' in text
    assert text.count('<div class="persona"') == len(SEGMENT_NAMES)
    for row in segs:
        assert f"{row['n']:,} customers · " in text
        assert f"Persona text for {row['segment_name'].lower()}." in text
    assert "vseg000000001" in text and "vrec000000001" in text
    # the lift chart shows the lift table saved with the scoring bundle's churn model when it
    # was trained (on its own held-out split), not the registry's latest churn model's
    with Warehouse.open(full_db, read_only=True) as wh:
        bundle = load_model(wh, "customer_scores", wh.scalar(SCORES_VERSION))
        churn = load_model(wh, "churn", bundle.params["components"]["churn"])
        latest = load_model(wh, "churn")
    assert latest.version != churn.version
    assert latest.metrics["lift_table"] != churn.metrics["lift_table"]
    stored = pd.DataFrame.from_records(churn.metrics["lift_table"])
    shown = summary.data["churn_lift"]
    pd.testing.assert_frame_equal(shown, stored[shown.columns], check_dtype=False)
    assert shown["lift"].iloc[0] == pytest.approx(churn.metrics["top_decile_lift"])
    assert f"Measured when churn model {churn.version} was trained" in text


def test_plotted_numbers_match_pandas(full_report, full_db):
    """The aggregates behind the RFM grid, segment bars and recommendation panels (SQL in the
    report) equal the same aggregates computed with pandas on the tables."""
    summary, _ = full_report
    with Warehouse.open(full_db, read_only=True) as wh:
        feat = wh.read("features.customer_features").to_pandas()
        seg = wh.read("ml.customer_segments").to_pandas()
        recs = wh.read("ml.recommendations").to_pandas()
    expected = rfm_grid(feat)
    got = summary.data["rfm_grid"]
    assert (
        got[["r_score", "f_score", "customers"]]
        .astype("int64")
        .equals(expected[["r_score", "f_score", "customers"]])
    )
    np.testing.assert_allclose(got["mean_spend"], expected["mean_spend"])
    lift = summary.data["churn_lift"]
    assert lift["customers"].sum() == 180  # the 20% held out of 900
    assert lift["cumulative_gain"].iloc[-1] == pytest.approx(1.0)
    assert int(got["customers"].sum()) == int(feat["r_score"].notna().sum())

    sizes = summary.data["segment_sizes"].set_index("segment_name")["customers"]
    assert sizes.to_dict() == seg["segment_name"].value_counts().to_dict()

    top3 = recs[recs["rank"] <= 3].merge(seg[["customer_id", "segment_name"]], on="customer_id")
    counts = top3.groupby(["segment_name", "product_id"]).size()
    for row in summary.data["top_recommendations"].itertuples(index=False):
        assert row.customers == counts[(row.grp, row.product_id)]
        # nothing outside the panel beats its weakest product
        panel = summary.data["top_recommendations"]
        weakest = panel[panel["grp"] == row.grp]["customers"].min()
        others = counts[row.grp].drop(panel[panel["grp"] == row.grp]["product_id"])
        assert (others <= weakest).all()


def test_churn_calibration_is_the_stored_held_out_table(full_report, full_db):
    """The calibration plot shows the bundle's churn model's calibration table, measured on the
    same held-out customers as its lift table (same customers, same churners)."""
    summary, text = full_report
    with Warehouse.open(full_db, read_only=True) as wh:
        bundle = load_model(wh, "customer_scores", wh.scalar(SCORES_VERSION))
        churn = load_model(wh, "churn", bundle.params["components"]["churn"])
    shown = summary.data["churn_calibration"]
    stored = pd.DataFrame.from_records(churn.metrics["calibration_table"])
    pd.testing.assert_frame_equal(shown, stored[shown.columns], check_dtype=False)
    assert list(shown.columns) == [
        "bin",
        "lower",
        "upper",
        "customers",
        "mean_predicted",
        "observed_rate",
    ]
    lift = summary.data["churn_lift"]
    assert shown["customers"].sum() == lift["customers"].sum() == 180
    churners = (shown["observed_rate"] * shown["customers"]).sum()
    assert churners == pytest.approx(lift["positives"].sum())
    # one churn figure: distribution, reasons, lift chart and calibration plot
    assert re.search(r'<img class="plot" src="[^"]+" alt="[^"]*held-out calibration plot"', text)


def test_churn_section_says_when_the_registry_lacks_the_tables(tmp_path):
    rng = np.random.default_rng(8)
    path = tmp_path / "old_registry.duckdb"
    feat = _features(200, rng)
    scores = _ml_tables(feat, rng)["ml.customer_scores"]
    with Warehouse.open(path) as wh:
        churn_version = save_model(wh, "churn", pack({}, {}), metrics={"roc_auc": 0.7})
        scores["model_version"] = save_model(
            wh,
            "customer_scores",
            pack({}, {"components": {"churn": churn_version}}),
            params={"components": {"churn": churn_version}},
        )
        wh.write_many({"features.customer_features": feat, "ml.customer_scores": scores})
    summary = build_report(path, tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "churn" in summary.rendered
    assert "churn_lift" not in summary.data and "churn_calibration" not in summary.data
    assert f"No lift chart: churn model {churn_version} in ml.model_registry has no" in text
    assert f"No calibration plot: churn model {churn_version} in ml.model_registry" in text

    # no registry at all: the section is still drawn, and says why the charts are missing
    no_registry = tmp_path / "no_registry.duckdb"
    with Warehouse.open(no_registry) as wh:
        wh.write_many({"features.customer_features": feat, "ml.customer_scores": scores})
    summary = build_report(no_registry, tmp_path / "r2.html")
    assert "churn" in summary.rendered and "churn_lift" not in summary.data
    text = (tmp_path / "r2.html").read_text(encoding="utf-8")
    assert "No lift chart: ml.model_registry does not exist." in text


def test_sections_say_why_they_are_skipped(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "features_only.duckdb"
    with Warehouse.open(path) as wh:
        wh.write("features.customer_features", _features(200, rng))
    summary = build_report(path, tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert summary.rendered == ["rfm"]
    assert summary.skipped["segments"].startswith("table ml.customer_segments does not exist")
    assert "ml.customer_scores" in summary.skipped["churn"]
    assert "ml.recommendations" in summary.skipped["recommendations"]
    assert text.count('class="skipped"') == 7
    assert text.count('<img class="plot"') == summary.plots == 2

    # an empty warehouse still gets a report: every section skipped, each with its reason
    Warehouse.open(tmp_path / "empty.duckdb").close()
    empty = build_report(tmp_path / "empty.duckdb", tmp_path / "empty.html")
    assert empty.rendered == [] and len(empty.skipped) == 8
    assert all(reason for reason in empty.skipped.values())
    with pytest.raises(WarehouseError, match="does not exist"):
        build_report(tmp_path / "missing.duckdb", tmp_path / "missing.html")


def test_recommendations_fall_back_to_rfm_segments(tmp_path, full_db):
    rng = np.random.default_rng(5)
    path = tmp_path / "no_segments.duckdb"
    feat = _features(300, rng)
    tables = _ml_tables(feat, rng)
    with Warehouse.open(path) as wh:
        wh.write("features.customer_features", feat)
        wh.write_many({k: tables[k] for k in ("raw.products", "ml.recommendations")})
    summary = build_report(path, tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "recommendations" in summary.rendered
    assert "Grouped by RFM segment" in text
    assert summary.skipped["segment_map"].startswith("table ml.customer_segments")


def test_report_on_the_dbt_built_demo_features(demo_wh, tmp_path):
    """The real feature table (dbt on the demo warehouse) has what the RFM section needs; the
    sections whose ml tables are absent say so instead of failing."""
    summary = build_report(demo_wh, tmp_path / "demo.html")
    assert "rfm" in summary.rendered
    grid = summary.data["rfm_grid"]
    scored = demo_wh.scalar(
        "select count(*) from features.customer_features where r_score is not null"
    )
    assert int(grid["customers"].sum()) == scored > 0
    assert set(grid["r_score"]) <= set(range(1, 6)) and set(grid["f_score"]) <= set(range(1, 6))
    for key, reason in summary.skipped.items():
        assert reason.startswith("table ml."), (key, reason)
    assert len(summary.rendered) + len(summary.skipped) == 8


# --------------------------------------------------------------------------- headless browser
class _DevTools:
    """Chrome DevTools Protocol over --remote-debugging-pipe (fd 3 in, fd 4 out): no driver,
    no extra package, and the browser's own console, log and network events."""

    def __init__(self, profile: Path, timeout: float = 30.0):
        cmd_r, self._cmd_w = os.pipe()
        self._resp_r, resp_w = os.pipe()

        def wire():  # in the child: the pipe ends on the fds Chromium expects
            os.dup2(cmd_r, 3)  # resp_w is never 3: it was opened after cmd_r
            os.dup2(resp_w, 4)
            for fd in (3, 4):  # dup2 onto itself keeps close-on-exec: clear it
                os.set_inheritable(fd, True)

        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            [CHROMIUM, *flags],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # fds 3 and 4 are set up after fork and must survive exec: no close_fds (Python's
            # own descriptors are close-on-exec anyway, PEP 446)
            close_fds=False,
            preexec_fn=wire,
        )
        os.close(cmd_r)
        os.close(resp_w)
        self.timeout = timeout
        self.events: list[dict] = []
        self._buf = b""
        self._next = 0
        self.session: str | None = None

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from chromium over the DevTools pipe")
            ready, _, _ = select.select([self._resp_r], [], [], left)
            if ready:
                chunk = os.read(self._resp_r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, params: dict | None = None, *, browser: bool = False) -> dict:
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params or {}}
        if self.session and not browser:
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, event: str) -> dict:
        deadline = time.monotonic() + self.timeout
        for seen in self.events:
            if seen.get("method") == event:
                return seen
        while True:
            msg = self._read(deadline)
            self.events.append(msg)
            if msg.get("method") == event:
                return msg

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._read(deadline))
        except TimeoutError:
            pass

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call("Browser.close", browser=True)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._resp_r)


def _visit(tools: _DevTools, page: Path, width: int) -> dict:
    """Open ``page`` in a new tab: problems (console errors, exceptions, error log entries,
    failed loads), requested urls, per-image load state and a full-page PNG screenshot."""
    target = tools.call("Target.createTarget", {"url": "about:blank"}, browser=True)
    attached = tools.call(
        "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, browser=True
    )
    tools.session = attached["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        tools.call(f"{domain}.enable")
    tools.call(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
    )
    tools.call("Page.navigate", {"url": page.resolve().as_uri()})
    tools.wait_for("Page.loadEventFired")
    tools.drain(0.5)
    # big SVGs (the heat map, the rasterised map) can still be decoding at the load event
    tools.call(
        "Runtime.evaluate",
        {
            "expression": "Promise.all(Array.from(document.images).map("
            "i => i.decode().catch(() => null)))",
            "awaitPromise": True,
        },
    )
    images = tools.call(
        "Runtime.evaluate",
        {
            "expression": "JSON.stringify(Array.from(document.images).map("
            "i => [i.className, i.complete, i.naturalWidth, i.naturalHeight]))",
            "returnByValue": True,
        },
    )
    height = int(tools.call("Page.getLayoutMetrics")["cssContentSize"]["height"])
    shot = tools.call(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    problems, urls = [], []
    for ev in tools.events:
        if ev.get("sessionId") != tools.session:
            continue
        method, params = ev.get("method"), ev.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            problems.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Runtime.exceptionThrown":
            problems.append(f"exception: {params.get('exceptionDetails')}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            problems.append(f"log: {params['entry'].get('text')} {params['entry'].get('url')}")
        elif method == "Network.loadingFailed":
            problems.append(f"network: {params.get('errorText')}")
        elif method == "Network.requestWillBeSent":
            urls.append(params["request"]["url"])
    return {
        "problems": problems,
        "urls": urls,
        "images": json.loads(images["result"]["value"]),
        "png": base64.b64decode(shot["data"]),
    }


def _open_in_chromium(pages: list[Path], profile: Path, width: int = 1280) -> list[dict]:
    tools = _DevTools(profile)
    try:
        return [_visit(tools, page, width) for page in pages]
    finally:
        tools.close()


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"{CHROMIUM} not installed (run scripts/install_browser.sh; CI installs it)",
)
def test_report_in_headless_chromium(full_report, tmp_path):
    from PIL import Image

    summary, text = full_report
    page = tmp_path / "report.html"
    page.write_text(text, encoding="utf-8")
    # a broken page first: proves that the checks below would see errors and network use
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<html><body><script>console.error('boom'); undefinedFunction();</script>"
        '<img src="http://127.0.0.1:9/x.png"></body></html>',
        encoding="utf-8",
    )
    bad, good = _open_in_chromium([broken, page], tmp_path / "profile")
    assert any("boom" in p for p in bad["problems"])
    assert any("undefinedFunction" in p for p in bad["problems"])
    assert "http://127.0.0.1:9/x.png" in bad["urls"]

    (tmp_path / "report.png").write_bytes(good["png"])
    keep = os.environ.get("PYPROFILE_REPORT_SCREENSHOT")  # to look at it: set a path
    if keep:
        shutil.copyfile(tmp_path / "report.png", keep)
    assert good["problems"] == []
    # self-contained: the page itself is the only thing loaded besides inline data: URIs
    assert [u for u in good["urls"] if not u.startswith(("file://", "data:"))] == []
    plots = [i for i in good["images"] if i[0] == "plot"]
    assert len(plots) == summary.plots == 9
    assert all(complete and w > 0 and h > 0 for _, complete, w, h in plots)

    shot = np.asarray(Image.open(io.BytesIO(good["png"])).convert("RGB"), dtype=float)
    assert shot.shape[1] == 1280 and shot.shape[0] > 3000  # the whole page, not one screen
    assert shot.std() > 20  # not blank
    # the plots' own colours are on screen: segment bars, churn histogram, CLV histogram
    for hex_color in ("#4e79a7", "#e15759", "#59a14f"):
        rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
        close = (np.abs(shot - rgb).max(axis=2) < 12).sum()
        assert close > 500, f"{hex_color}: only {close} pixels"


def test_clv_section_shows_the_bgnbd_holdout_check_and_the_assumption_notes(tmp_path):
    rng = np.random.default_rng(5)
    path = tmp_path / "clv.duckdb"
    feat = _features(300, rng)
    check = [
        {"frequency": "0", "customers": 200, "predicted": 0.21, "actual": 0.18},
        {"frequency": "1", "customers": 60, "predicted": 0.55, "actual": 0.61},
        {"frequency": "6+", "customers": 40, "predicted": 2.40, "actual": 2.10},
    ]
    with Warehouse.open(path) as wh:
        wh.write("features.customer_features", feat)
        bg = save_model(wh, "bgnbd", pack({}, {"x": 1}), metrics={"calibration_table": check})
        meta = {"components": {"bgnbd": bg}, "diagnostics": ["order value and frequency correlate"]}
        bundle = save_model(wh, "customer_scores", pack({}, meta), params=meta)
        scores = _ml_tables(feat, rng)["ml.customer_scores"].assign(model_version=bundle)
        wh.write("ml.customer_scores", scores)
    summary = build_report(path, tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "clv" in summary.rendered
    pd.testing.assert_frame_equal(
        summary.data["bgnbd_holdout"], pd.DataFrame(check), check_dtype=False
    )
    assert "order value and frequency correlate" in text
    assert "P(alive) is shown for repeat buyers only" in text


def test_recommendations_show_the_sequence_model_next_to_the_baselines(tmp_path):
    """The recommender comparison is the registry's record of the run that wrote
    ml.recommendations: every candidate's selection NDCG@10 (the sequence model among them),
    the held-out figures of the chosen model and of popularity, and the embeddings' sequence
    model on its own split."""
    from pyprofile.flows.recommendations import run_recommendations

    rng = np.random.default_rng(2)
    rows = []
    for u in range(50):  # customers walk a cycle of 10 products: order is everything
        start = int(rng.integers(10))
        for t in range(8):
            at = pd.Timestamp("2024-01-01") + pd.Timedelta(hours=10 * u + t)
            rows.append((f"c{u}", f"P{(start + t) % 10:03d}", at, "product_view"))
    events = pd.DataFrame(rows, columns=["customer_id", "product_id", "event_at", "event_type"])
    pairs = events.groupby(["customer_id", "product_id"], as_index=False).agg(
        last_interaction_at=("event_at", "max")
    )
    path = tmp_path / "recs.duckdb"
    with Warehouse.open(path) as wh:
        wh.write("features.customer_product_interactions", pairs.assign(weight=1.0))
        customers = pd.DataFrame({"customer_id": [f"c{u}" for u in range(50)]})
        wh.write("features.customer_features", customers.assign(as_of_date=date(2024, 1, 31)))
        wh.write("features.customer_event_sequences", events)
        seq = {"dim": 16, "layers": 1, "max_length": 8, "steps": 60, "eval_every": 20}
        run = run_recommendations(
            wh,
            k=3,
            candidates=["popularity", "ease", "sequence"],
            sequences="features.customer_event_sequences",
            time_column="last_interaction_at",
            sequence_params=seq,
            min_support=1,
            threads=1,
        )
        sequence = load_model(wh, "sequence_recommender")
    summary = build_report(path, tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    shown = summary.data["recommender_evaluation"].set_index("model")
    selection = {r["method"]: r["ndcg@10"] for r in run["validation"]}
    assert set(shown.index) == set(selection) == {"popularity", "ease", "sequence"}
    for method, score in selection.items():
        assert shown.loc[method, "selection_ndcg@10"] == pytest.approx(score)
    chosen = shown[shown["chosen"]]
    assert list(chosen.index) == [run["method"]]
    assert chosen["held_out_ndcg"].iloc[0] == pytest.approx(run["metrics"]["model_ndcg@3"])
    assert shown.loc["popularity", "held_out_recall"] == pytest.approx(
        run["metrics"]["popularity_recall@3"]
    )
    others = shown.drop(index=[run["method"], "popularity"])
    assert others["held_out_ndcg"].isna().all()  # only the chosen model is held out
    assert "held-out NDCG@3" in text and f"<td>{selection['sequence']:.3f}</td>" in text
    assert f"Sequence model {sequence.version}" in text
    assert f"NDCG@10 {sequence.metrics['validation_ndcg@10']:.3f}" in text
