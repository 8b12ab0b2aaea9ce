"""``RelationalSynthesizer``: a whole synthetic shop (customers, orders, lines, events) with
referential integrity by construction.

Two stages:

1. **Customer model** — the conditional tabular GAN (:class:`Synthesizer`) learns each
   customer's attributes jointly with a summary of the customer's timeline
   (:mod:`.summary`: start, order count, first-order lag and span, basket size, price level,
   status, discount and category shares, browsing sessions and their window).
2. **Timeline model** — (:mod:`.timeline`) writes each synthetic customer's orders, lines and
   sessions consistent with that row, from the shop's calendar (daily intensity, hour profile
   per weekday), its products (popularity, price levels), quantity, discount and amount
   distributions and real session shapes (:mod:`.templates`).

Every order belongs to a generated customer, every line to a generated order and a catalogue
product, every event to a generated customer: integrity holds because children are only ever
generated from their parents. Ids are new (``SYN-C…``, ``SYN-O…``, ``SYN-S…``); products are
the shop's own catalogue, copied as it is (shared data, not personal).

>>> model = RelationalSynthesizer(epochs=300).fit(customers, orders, items, products, events)
>>> tables = model.sample(10_000)  # {"customers": ..., "orders": ..., ...} as Arrow tables
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa

from pyprofile.errors import InputError
from pyprofile.models.artifact import jsonable
from pyprofile.models.base import Estimator
from pyprofile.models.data import as_arrow
from pyprofile.models.synth import activity as act
from pyprofile.models.synth.baskets import BasketModel
from pyprofile.models.synth.summary import customer_summary
from pyprofile.models.synth.synthesizer import Synthesizer
from pyprofile.models.synth.templates import Templates
from pyprofile.models.synth.timeline import Calendar, TimelineModel

TABLES = ("customers", "orders", "order_items", "products", "events")
REQUIRED = {
    "customers": ["customer_id"],
    "orders": ["order_id", "customer_id", "ordered_at", "amount"],
    "order_items": ["order_id", "product_id", "quantity", "unit_price"],
    "products": ["product_id"],
    "events": ["customer_id", "event_at", "event_type"],
}
ID_PREFIX = {"customers": "SYN-C", "orders": "SYN-O", "events": "SYN-S"}
NOT_MODELLED = ("customer_id", "signup_at")  # the key; sign-up comes from the timeline


def _ipc(table_or_schema) -> np.ndarray:
    if isinstance(table_or_schema, pa.Schema):
        buf = table_or_schema.serialize()
    else:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table_or_schema.schema) as writer:
            writer.write_table(table_or_schema)
        buf = sink.getvalue()
    return np.frombuffer(buf.to_pybytes(), dtype=np.uint8)


def _from_ipc_table(arr: np.ndarray) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(arr.tobytes())).read_all()


class RelationalSynthesizer(Estimator):
    """A synthetic shop: GAN customers with timeline summaries, then their timelines.

    Parameters ``epochs``, ``batch_size`` and ``synthesizer_params`` go to the customer model
    (:class:`Synthesizer`). ``max_templates`` bounds the real session shapes kept per kind.

    **Differential privacy** (``epsilon``, optional ``delta``; needs ``opacus``): the whole
    fitted model, so every shop sampled from it, is (epsilon, delta)-DP for adding or removing
    one customer with all its orders, lines and events (:mod:`.dp_timeline`: a private customer
    model, a Gaussian release of the timeline statistics, session shapes from a noisy chain
    instead of real sessions). ``epsilon_`` and ``delta_`` hold what was spent.
    """

    fitted_attribute: ClassVar[str] = "customer_model_"
    artifact_format: ClassVar[str] = "pyprofile.relational_synthesizer/1"

    def __init__(
        self,
        *,
        epochs: int = 300,
        batch_size: int | None = None,
        synthesizer_params: dict | None = None,
        max_templates: int = 20_000,
        purchase_event: str = "purchase",
        view_event: str = "product_view",
        random_state: int = 0,
        device: str = "auto",
        threads: int | None = 1,
        verbose: bool = False,
        epsilon: float | None = None,
        delta: float | None = None,
    ):
        self.epsilon, self.delta = epsilon, delta
        self.epochs = epochs
        self.batch_size = batch_size
        self.synthesizer_params = synthesizer_params
        self.max_templates = max_templates
        self.purchase_event = purchase_event
        self.view_event = view_event
        self.random_state = random_state
        self.device = device
        self.threads = threads
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def fit(self, customers, orders, order_items, products, events=None) -> RelationalSynthesizer:
        """Learn the shop from its cleaned raw tables (Arrow or pandas; unique keys, no
        orphans, valid times: what :func:`pyprofile.flows.synth_warehouse` reads)."""
        raw = {"customers": customers, "orders": orders, "order_items": order_items}
        raw.update(products=products, events=events)
        arrow = {k: as_arrow(v, k) for k, v in raw.items() if v is not None}
        self._validate(arrow)
        shop = act.Shop(
            *(arrow[k].to_pandas() for k in TABLES[:4]),
            events=arrow["events"].to_pandas() if "events" in arrow else None,
            purchase_event=self.purchase_event,
        )
        ix = act.index_shop(shop)
        sessions = act.link_sessions(ix, self.purchase_event)
        self.schemas_ = {k: v.schema for k, v in arrow.items()}
        self.products_ = arrow["products"]
        self.has_signup_ = "signup_at" in shop.customers
        if self.epsilon is not None:
            return self._fit_private(shop, ix, sessions)
        self.epsilon_ = self.delta_ = None
        start = act.customer_start(ix, sessions)
        table = self.training_table(shop.customers, customer_summary(ix, sessions, start))
        self.customer_model_ = Synthesizer(**self._gan_params()).fit(table)
        rng = np.random.default_rng(self.random_state)
        self.timeline_ = TimelineModel.fit(
            ix, sessions, rng, view_event=self.view_event, max_templates=self.max_templates
        )
        return self

    def _fit_private(self, shop: act.Shop, ix, sessions) -> RelationalSynthesizer:
        """(epsilon, delta)-DP for one customer: the timeline released first (it re-codes
        statuses to the released ones), then the private customer model."""
        from pyprofile.models.synth import dp, dp_timeline

        n = ix.n_customers
        delta = self.delta if self.delta is not None else min(1e-5, 1 / (10 * n))
        dp.check_budget(self.epsilon, delta)
        (gan_eps, gan_delta), (tl_eps, tl_delta) = dp_timeline.split_budget(self.epsilon, delta)
        released = dp_timeline.fit_private(
            ix,
            sessions,
            shop.products,
            dp.secret_rng()[0],
            epsilon=tl_eps,
            delta=tl_delta,
            purchase_event=self.purchase_event,
            view_event=self.view_event,
        )
        start = act.customer_start(released.ix, sessions)
        summary = customer_summary(released.ix, sessions, start, scale=released.scale)
        table = self.training_table(shop.customers, summary)
        params = {**self._gan_params(), "epsilon": gan_eps, "delta": gan_delta}
        self.customer_model_ = Synthesizer(**params).fit(table)
        self.timeline_ = released.timeline
        self.epsilon_ = self.customer_model_.epsilon_ + released.epsilon
        self.delta_ = self.customer_model_.delta_ + released.delta
        return self

    def _gan_params(self) -> dict[str, Any]:
        params = dict(self.synthesizer_params or {})
        if params.get("epsilon") is not None or params.get("delta") is not None:
            raise InputError(
                "pass epsilon and delta to the relational synthesizer itself: given to the "
                "customer model alone they would leave the timelines unprotected"
            )
        params.update(
            epochs=self.epochs,
            batch_size=self.batch_size,
            random_state=self.random_state,
            device=self.device,
            threads=self.threads,
            verbose=self.verbose,
        )
        return params

    @staticmethod
    def training_table(customers: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
        """The customer model's rows: attributes (no key, no sign-up) next to the summary."""
        clash = [c for c in customers.columns if c.startswith(act.PREFIX)]
        if clash:
            raise InputError(
                f"customers: column(s) {', '.join(clash)} use the reserved prefix "
                f"{act.PREFIX!r}; rename them"
            )
        attributes = customers.drop(columns=[c for c in NOT_MODELLED if c in customers])
        return pd.concat([attributes.reset_index(drop=True), summary], axis=1)

    @staticmethod
    def _validate(arrow: dict[str, pa.Table]) -> None:
        for name in TABLES[:4]:
            if name not in arrow:
                raise InputError(f"the {name} table is required")
        for name, table in arrow.items():
            missing = [c for c in REQUIRED[name] if c not in table.column_names]
            if missing:
                raise InputError(
                    f"{name} lacks required column(s) {', '.join(missing)}; "
                    f"it has {', '.join(table.column_names)}"
                )
        if arrow["customers"].num_rows < 20:
            raise InputError(
                f"customers has {arrow['customers'].num_rows} rows: need at least 20 to learn from"
            )

    # ------------------------------------------------------------------ sample
    def sample(self, n_customers: int, *, random_state: int | None = None) -> dict[str, pa.Table]:
        """A synthetic shop of ``n_customers`` customers: one Arrow table per raw table,
        with the input tables' columns and types (columns not modelled are null)."""
        self._check_fitted()
        n = int(n_customers)
        if n < 1:
            raise InputError(f"customers must be at least 1, got {n}")
        seed = self.random_state + 1 if random_state is None else int(random_state)
        drawn = self.customer_model_.sample_arrow(n, random_state=seed)
        rows = drawn.to_pandas()
        timeline = self.timeline_.generate(rows, np.random.default_rng(seed))
        out = {
            "customers": self._customers(drawn, rows, timeline["start"]),
            "orders": self._orders(timeline["orders"]),
            "order_items": self._items(timeline["orders"], timeline["lines"]),
            "products": {c: self.products_[c] for c in self.products_.column_names},
        }
        if "events" in self.schemas_:
            out["events"] = self._events(timeline["events"])
        return {k: _conform(v, self.schemas_[k]) for k, v in out.items()}

    def _stamps(self, seconds: np.ndarray) -> pa.Array:
        base = self.timeline_.calendar.day0 * act.SECONDS_PER_DAY
        micros = (np.asarray(seconds, np.float64) + base) * 1e6
        ok = np.isfinite(micros)
        return pa.array(np.where(ok, micros, 0).astype(np.int64), mask=~ok).cast(pa.timestamp("us"))

    def _customers(self, drawn: pa.Table, rows: pd.DataFrame, start) -> dict[str, pa.Array]:
        n = len(rows)
        cols = {"customer_id": pa.array(_ids("customers", n))}
        for name in drawn.column_names:
            if not name.startswith(act.PREFIX):
                cols[name] = drawn[name]
        if self.has_signup_:
            lag = (
                rows["tl_signup_lag_hours"].to_numpy(float)
                if "tl_signup_lag_hours" in rows
                else np.zeros(n)
            )
            real_start = (
                pd.to_datetime(rows["tl_start_at"]).notna().to_numpy()
                if "tl_start_at" in rows
                else np.ones(n, bool)
            )
            seconds = np.where(
                real_start & np.isfinite(lag), start + np.maximum(lag, 0) * 3600, np.nan
            )
            cols["signup_at"] = self._stamps(seconds)
        return cols

    def _orders(self, o: dict) -> dict[str, pa.Array]:
        t = self.timeline_
        cols = {
            "order_id": pa.array(_ids("orders", len(o["customer"]))),
            "customer_id": pa.array(_ids("customers", None, o["customer"])),
            "ordered_at": self._stamps(o["seconds"]),
            "amount": pa.array(o["amount"]),
        }
        if t.has_discount:
            cols["discount"] = pa.array(o["discount"])
        if o["status"] is not None:
            cols["status"] = pa.array(np.array(t.statuses, dtype=object)[o["status"]])
        return cols

    def _items(self, o: dict, lines: dict) -> dict[str, pa.Array]:
        product_ids = self.products_["product_id"].combine_chunks()
        return {
            "order_id": pa.array(_ids("orders", None, lines["order"])),
            "product_id": product_ids.take(pa.array(lines["product"])),
            "quantity": pa.array(lines["quantity"]),
            "unit_price": pa.array(lines["unit_price"]),
        }

    def _events(self, e: dict) -> dict[str, pa.Array]:
        product_ids = self.products_["product_id"].combine_chunks()
        product = e["product"]
        has = product >= 0
        taken = product_ids.take(pa.array(np.where(has, product, 0)))
        return {
            "customer_id": pa.array(_ids("customers", None, e["customer"])),
            "event_at": self._stamps(e["seconds"]),
            "event_type": pa.array(np.array(self.timeline_.event_types, dtype=object)[e["type"]]),
            "product_id": pa.array(taken.to_pylist(), type=taken.type, mask=~has)
            if len(product)
            else pa.array([], type=product_ids.type),
            "session_id": pa.array(_ids("events", None, e["session"])),
        }

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        t = self.timeline_
        arrays = {"gan": np.frombuffer(self.customer_model_.to_artifact(), dtype=np.uint8)}
        arrays["products"] = _ipc(self.products_)
        for name, schema in self.schemas_.items():
            arrays[f"schema.{name}"] = _ipc(schema)
        arrays.update({f"basket.{k}": v for k, v in t.baskets.arrays().items()})
        arrays.update({f"template.{k}": v for k, v in t.templates.arrays().items()})
        c = t.calendar
        for key in ("order_days", "session_days", "order_hours", "session_hours"):
            arrays[f"calendar.{key}"] = getattr(c, key)
        state = {
            "calendar": {
                "day0": c.day0,
                "n_days": c.n_days,
                "end_second": c.end_second,
                "order_rate_cap": c.order_rate_cap,
                "session_rate_cap": c.session_rate_cap,
            },
            "spread": float(t.baskets.spread),
            "session_share": t.session_share,
            "statuses": [jsonable(s) if s is not None else None for s in t.statuses],
            "event_types": [jsonable(s) if s is not None else None for s in t.event_types],
            "has_discount": t.has_discount,
            "has_signup": self.has_signup_,
            "privacy": [self.epsilon_, self.delta_],
        }
        return arrays, state

    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        self.customer_model_ = Synthesizer.from_artifact(
            arrays["gan"].tobytes(), device=self.device
        )
        self.products_ = _from_ipc_table(arrays["products"])
        self.schemas_ = {
            k[7:]: pa.ipc.read_schema(pa.py_buffer(v.tobytes()))
            for k, v in arrays.items()
            if k.startswith("schema.")
        }
        self.has_signup_ = state["has_signup"]
        self.epsilon_, self.delta_ = state.get("privacy", [None, None])
        part = {
            p: {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(p + ".")}
            for p in ("basket", "template", "calendar")
        }
        basket = {**part["basket"], "spread": state["spread"]}
        self.timeline_ = TimelineModel(
            calendar=Calendar(**state["calendar"], **part["calendar"]),
            baskets=BasketModel(**basket),
            templates=Templates(**part["template"]),
            session_share=state["session_share"],
            statuses=state["statuses"],
            event_types=state["event_types"],
            has_discount=state["has_discount"],
        )


def _ids(table: str, n: int | None, rows: np.ndarray | None = None) -> np.ndarray:
    """New ids: ``SYN-C0000001``... for rows 0..n-1, or for the given row numbers."""
    rows = np.arange(n) if rows is None else np.asarray(rows)
    if not len(rows):
        return np.zeros(0, dtype=object)
    width = 9 if table == "orders" else 7
    numbers = (rows + 1).astype(str)
    return np.char.add(ID_PREFIX[table], np.char.zfill(numbers, width)).astype(object)


def _conform(columns: dict[str, pa.Array], schema: pa.Schema) -> pa.Table:
    """The source table's columns in order and types (columns not generated are null)."""
    n = len(next(iter(columns.values()))) if columns else 0
    arrays = []
    for field in schema:
        if field.name not in columns:
            arrays.append(pa.nulls(n, type=field.type))
            continue
        col = columns[field.name]
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        if not col.type.equals(field.type):
            try:
                col = col.cast(field.type, safe=False)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InputError(f"cannot write {field.name} as {field.type}: {exc}") from exc
        arrays.append(col)
    return pa.Table.from_arrays(
        arrays, schema=pa.schema([pa.field(f.name, f.type) for f in schema])
    )
