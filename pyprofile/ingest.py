"""Load your own CSV or Parquet exports into the raw tables, with a column mapping.

Dates are parsed with an explicit format or one inferred from the data; rows whose required
values cannot be parsed are kept out of the raw table and recorded in ``raw.load_rejects``
(nothing is lost). Loading the same file twice adds nothing the second time: new rows are
appended only if they are not already there (row for row). Orders without an order id get
a deterministic one (``G`` + 16 hex of a hash of customer, time, amount and occurrence), so
reloading the same export yields the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pyprofile.errors import InputError
from pyprofile.warehouse import Warehouse
from pyprofile.warehouse.sql import qualified, quote, string

# table -> {contract column: (type, required)}
CONTRACT: dict[str, dict[str, tuple[str, bool]]] = {
    "customers": {
        "customer_id": ("varchar", True),
        "signup_at": ("timestamp", False),
        "birth_date": ("date", False),
        "age": ("integer", False),
        "gender": ("varchar", False),
        "income": ("double", False),
        "income_band": ("varchar", False),
        "region": ("varchar", False),
        "channel": ("varchar", False),
    },
    "orders": {
        "order_id": ("varchar", False),  # generated when absent
        "customer_id": ("varchar", True),
        "ordered_at": ("timestamp", True),
        "amount": ("decimal(18, 4)", True),
        "discount": ("decimal(18, 4)", False),
        "status": ("varchar", False),
    },
    "order_items": {
        "order_id": ("varchar", True),
        "product_id": ("varchar", True),
        "quantity": ("integer", True),
        "unit_price": ("decimal(18, 4)", True),
    },
    "products": {
        "product_id": ("varchar", True),
        "category": ("varchar", False),
        "brand": ("varchar", False),
        "price": ("decimal(18, 4)", False),
    },
    "events": {
        "customer_id": ("varchar", True),
        "event_at": ("timestamp", True),
        "event_type": ("varchar", True),
        "product_id": ("varchar", False),
        "session_id": ("varchar", False),
    },
}

# Tried in order when no format is given; the first that parses every non-empty value wins
# (so 03/04/2024 is read month-first only if no value rules that out).
DATE_FORMATS = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y%m%d",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%Y/%m/%d",
]


@dataclass
class LoadReport:
    table: str
    read: int
    loaded: int
    rejected: int
    duplicates: int
    reasons: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


ENCODINGS = ("utf-8", "utf-16", "latin-1")


def _reader(path: Path, encoding: str | None = None) -> str:
    """The table function that reads ``path`` (CSV as text, so that nothing is guessed)."""
    suffix = "".join(path.suffixes).lower()
    lit = string(str(path))
    if suffix.endswith(".parquet") or suffix.endswith(".pq"):
        return f"read_parquet({lit})"
    if encoding is not None and encoding.lower() not in ENCODINGS:
        raise InputError(f"--encoding {encoding!r}: use one of {', '.join(ENCODINGS)}")
    options = "" if encoding is None else f", encoding = {string(encoding.lower())}"
    if any(suffix.endswith(s) for s in (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")):
        return f"read_csv({lit}, all_varchar = true, header = true{options})"
    raise InputError(f"{path}: unsupported file type (use .csv, .tsv or .parquet)")


def _infer_format(wh: Warehouse, src: str, text: str, params: list) -> str | None:
    """The first format that parses every non-empty value of a text expression (None: ISO
    cast). ``params`` are the values the expression refers to as ``$n``."""
    sample = f"(select {text} as v from {src} where {text} is not null limit 20000)"
    total = wh.scalar(f"select count(*) from {sample}", params)
    if not total:
        return None
    if wh.scalar(f"select count(try_cast(v as timestamp)) from {sample}", params) == total:
        return None
    best, best_ok = None, 0
    n = len(params) + 1
    for fmt in DATE_FORMATS:
        ok = wh.scalar(f"select count(try_strptime(v, ${n})) from {sample}", [*params, fmt])
        if ok == total:
            return fmt
        if ok > best_ok:
            best, best_ok = fmt, ok
    return best


def load_file(
    db,
    table: str,
    path: str | Path,
    *,
    mapping: dict[str, str] | None = None,
    constants: dict[str, str] | None = None,
    date_format: str | None = None,
    encoding: str | None = None,
    guests: bool = False,
    replace: bool = False,
) -> LoadReport:
    """Load ``path`` into ``raw.<table>``.

    ``mapping`` maps contract names to the file's columns; a date and a time column are
    combined with ``+`` (``ordered_at="Date+Time"``). ``constants`` sets a contract column to
    one value for every row (a shop whose lines have no quantity: ``quantity="1"``).
    ``encoding`` reads a CSV in ``utf-8``, ``utf-16`` or ``latin-1``. ``guests`` (orders only):
    an order without a customer id is a guest checkout, loaded as its own pseudo-customer
    ``guest-<order id>`` and flagged in the text column ``is_guest``, instead of rejected.
    """
    if table not in CONTRACT:
        raise InputError(f"unknown table {table!r}: choose one of {', '.join(CONTRACT)}")
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    options = _Options(
        mapping=dict(mapping or {}),
        constants=dict(constants or {}),
        date_format=date_format,
        encoding=encoding,
        guests=guests,
        replace=replace,
    )
    options.check(table)
    wh = Warehouse.open(db)
    try:
        return _load(wh, table, path, options)
    finally:
        wh.close()


@dataclass
class _Options:
    mapping: dict[str, str]
    constants: dict[str, str]
    date_format: str | None
    encoding: str | None
    guests: bool
    replace: bool

    def check(self, table: str) -> None:
        contract = CONTRACT[table]
        for option, names in (("--map", self.mapping), ("--set", self.constants)):
            unknown = [k for k in names if k not in contract]
            if unknown:
                raise InputError(
                    f"{option} names {', '.join(unknown)} not in the {table} contract "
                    f"({', '.join(contract)})"
                )
        both = sorted(set(self.mapping) & set(self.constants))
        if both:
            raise InputError(f"{', '.join(both)}: give a column either with --map or --set")
        if self.guests and table != "orders":
            raise InputError("--guests applies to orders only")


def _load(wh, table: str, path: Path, options: _Options) -> LoadReport:
    contract = CONTRACT[table]
    src = _reader(path, options.encoding)
    try:
        file_cols = [r[0] for r in wh.con.execute(f"describe select * from {src}").fetchall()]
    except Exception as exc:
        hint = " (try --encoding latin-1)" if "unicode" in str(exc).lower() else ""
        raise InputError(f"{path}: cannot be read{hint}: {' '.join(str(exc).split())}") from exc
    chosen = _match_columns(path, contract, options.mapping, file_cols)
    read = int(wh.scalar(f"select count(*) from {src}"))
    if read == 0:
        raise InputError(f"{path}: the file has no rows; nothing was loaded into raw.{table}")
    given = {*chosen, *options.constants}
    missing = [n for n, (_, req) in contract.items() if req and n not in given]
    if missing:
        raise InputError(
            f"{path}: raw.{table} needs column(s) {', '.join(missing)}; the file has "
            f"{', '.join(file_cols)} — map them with --map {missing[0]}=<file column> "
            f"or set them with --set {missing[0]}=<value>"
        )
    notes: list[str] = []
    used = {part for source in chosen.values() for part in source.split("+")}
    extras = [c for c in file_cols if c not in used and c.lower() not in contract]
    _stage(wh, src, contract, (chosen, options), extras, notes)
    if table == "orders" and "order_id" not in given:
        notes.append("order_id: none in the file, generated from customer, time and amount")
        _generate_order_ids(wh)
    cols = [n for n in contract if n in given or (table == "orders" and n == "order_id")]
    cols += extras + (["is_guest"] if options.guests else [])
    if options.guests:
        notes.append(_guest_orders(wh))
    reasons = dict(
        wh.con.execute(
            "select _reason, count(*) from __load where _reason is not null group by 1"
        ).fetchall()
    )
    rejected = sum(reasons.values())
    loaded, duplicates = _publish(wh, table, path, cols, options.replace, read - rejected)
    wh.execute("drop table if exists __load")
    if table == "orders" and not wh.exists("raw.customers"):
        notes.append("no raw.customers table: customers are derived from orders")
    return LoadReport(table, read, loaded, rejected, duplicates, reasons, notes)


def _guest_orders(wh) -> str:
    """Guest checkouts (no customer id) become one pseudo-customer per order, flagged."""
    wh.execute("alter table __load add column is_guest varchar")
    wh.execute(
        "update __load set is_guest = case when customer_id is null then 'true' else 'false' end, "
        "customer_id = coalesce(customer_id, 'guest-' || order_id), "
        "_reason = case when _reason = 'missing customer_id' then null else _reason end"
    )
    guests = wh.scalar("select count(*) from __load where is_guest = 'true' and _reason is null")
    return f"guest checkouts: {guests:,} order(s) without a customer loaded as guest-<order id>"


def _match_columns(
    path: Path, contract: dict[str, tuple[str, bool]], mapping: dict[str, str], file_cols: list
) -> dict[str, str]:
    """Contract column -> file column(s): the mapped name (``A+B`` for two columns joined with
    a space, e.g. a date and a time), else the same name (any case)."""
    lower = {c.lower(): c for c in file_cols}

    def find(name: str, source: str) -> str | None:
        if source in file_cols:
            return source
        if source.lower() in lower:
            return lower[source.lower()]
        if name in mapping:
            raise InputError(
                f"{path}: --map {name}={mapping[name]} but the file has no column {source!r} "
                f"(columns: {', '.join(file_cols)})"
            )
        return None

    chosen: dict[str, str] = {}
    for name in contract:
        parts = [find(name, part.strip()) for part in mapping.get(name, name).split("+")]
        if all(parts):
            chosen[name] = "+".join(parts)
    return chosen


def _text(source: str) -> str:
    """The trimmed text of a file column, or of ``A+B`` joined with a space; null when empty."""
    parts = [f"cast({quote(part)} as varchar)" for part in source.split("+")]
    joined = parts[0] if len(parts) == 1 else f"concat_ws(' ', {', '.join(parts)})"
    return f"nullif(trim({joined}), '')"


def _stage(wh, src, contract, given, extras, notes) -> None:
    """The temp table ``__load``: typed contract columns, extras as text, the row number
    ``_row`` and ``_reason``, why a row is rejected (null when it is kept). ``given``: the
    file column(s) of each contract column, and the options (constants, date format)."""
    chosen, options = given
    exprs, checks, params = [], [], []
    for name, (typ, required) in contract.items():
        if name in options.constants:
            params.append(options.constants[name])  # bound: a value never becomes SQL text
            text = f"nullif(trim(cast(${len(params)} as varchar)), '')"
        elif name in chosen:
            text = _text(chosen[name])
        else:
            continue
        if typ in ("timestamp", "date"):
            fmt = options.date_format or _infer_format(wh, src, text, params)
            if fmt:
                params.append(fmt)  # referenced as $n wherever the value is used
                parsed = f"try_strptime({text}, ${len(params)})"
            else:
                parsed = f"try_cast({text} as timestamp)"
            value = f"cast({parsed} as {typ})"
            notes.append(f"{name}: parsed with {fmt or 'ISO 8601'}")
        elif typ == "varchar":
            value = text
        else:
            value = f"try_cast({text} as {typ})"
        exprs.append(f"{value} as {quote(name)}")
        checks.append((name, text, value, required))
    exprs += [f"nullif(trim(cast({quote(c)} as varchar)), '') as {quote(c)}" for c in extras]
    reason_sql = " ".join(
        f"when {text} is not null and {value} is null then 'unparseable {name}'"
        + (f" when {text} is null then 'missing {name}'" if req else "")
        for name, text, value, req in checks
    )
    staged = f"""
        select row_number() over () as _row, {", ".join(exprs)},
            case {reason_sql} end as _reason
        from {src}"""
    wh.execute(f"create or replace temp table __load as {staged}", params)


def _generate_order_ids(wh) -> None:
    """``G`` + 16 hex of customer, time, amount and occurrence: the same export, the same ids."""
    wh.execute("""
        alter table __load add column order_id varchar;
        update __load set order_id = g.id from (
            select _row, 'G' || substr(md5(concat_ws('|', customer_id, ordered_at, amount,
                row_number() over (partition by customer_id, ordered_at, amount
                                   order by _row))), 1, 16) as id
            from __load) as g
        where __load._row = g._row""")


def _publish(wh, table, path, cols, replace, accepted) -> tuple[int, int]:
    """Kept rows into ``raw.<table>`` and rejected ones into ``raw.load_rejects``, in one
    transaction; returns (rows loaded, rows already present)."""
    target = qualified(f"raw.{table}")
    col_list = ", ".join(quote(c) for c in cols)
    with wh.transaction() as con:
        con.execute("create schema if not exists raw")
        if replace or not wh.exists(f"raw.{table}"):
            con.execute(
                f"create or replace table {target} as select {col_list} from __load "
                "where _reason is null order by _row"
            )
            loaded, duplicates = accepted, 0
        else:
            loaded = _append(wh, table, path, cols)
            duplicates = accepted - loaded
        con.execute(
            "create table if not exists raw.load_rejects (table_name varchar, file varchar, "
            "row_number bigint, reason varchar, loaded_at timestamp)"
        )
        con.execute(
            "delete from raw.load_rejects where table_name = ? and file = ?", [table, str(path)]
        )
        con.execute(
            "insert into raw.load_rejects select ?, ?, _row, _reason, current_timestamp "
            "from __load where _reason is not null",
            [table, str(path)],
        )
    return loaded, duplicates


def _append(wh, table, path, cols) -> int:
    """Append the kept rows not already in ``raw.<table>`` (row for row); returns how many."""
    have = list(wh.columns(f"raw.{table}"))
    if set(have) != set(cols):
        raise InputError(
            f"{path}: raw.{table} already has columns {', '.join(have)} but this file "
            f"gives {', '.join(cols)}; use --replace to replace the table"
        )
    target = qualified(f"raw.{table}")
    ordered = ", ".join(quote(c) for c in have)
    before = wh.count(f"raw.{table}")
    wh.execute(
        f"insert into {target} select {ordered} from __load where _reason is null "
        f"except all select {ordered} from {target}"
    )
    return wh.count(f"raw.{table}") - before
