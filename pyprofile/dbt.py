"""dbt from pyprofile: run the bundled project in this process, and the helpers its Python
models call (a run log per ml step, config values, the static scoring functions)."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyprofile.errors import PyprofileError
from pyprofile.resources import project_dir
from pyprofile.warehouse.engine import DB_ENV

_ML_LOCK = threading.Lock()


def publish_static_functions(wh: Any) -> list[str]:
    """Persist every scoring function kept as SQL under ``udfs/``; returns their names."""
    from pyprofile.warehouse.engine import Warehouse
    from pyprofile.warehouse.functions import publish_functions, static_functions

    functions = static_functions()
    publish_functions(Warehouse.open(wh), functions)
    return [f.name for f in functions]


def config_value(raw: Any, cast: Callable[[Any], Any] = str) -> Any:
    """A dbt model config value (rendered from a var, so often text) or None when unset."""
    return None if raw in (None, "", "none", "None", "null") else cast(raw)


def _partial(summary: dict) -> str | None:
    """The parts of a step that were skipped and why (e.g. CLV without repeat buyers), and the
    assumption checks that failed."""
    skipped = summary.get("skipped") or {}
    notes = [f"{part} skipped: {why}" for part, why in skipped.items()]
    return "; ".join(notes + list(summary.get("diagnostics") or [])) or None


def clear_outputs(wh: Any, step: str) -> None:
    """Drop what ``step`` wrote on an earlier run (its tables and scoring functions), so that a
    skipped step leaves no stale result next to fresh features."""
    from pyprofile.warehouse.engine import Warehouse
    from pyprofile.warehouse.tables import STEP_OUTPUTS

    tables, functions = STEP_OUTPUTS[step]
    Warehouse.open(wh).drop(tables, functions)


def run_step(
    model: str,
    outputs: str,
    fn: Callable[[], dict],
    *,
    extra: Sequence[str] = (),
    session: Any = None,
):
    """Run one ml step for a dbt Python model and return its one-row run log (Arrow).

    A step whose input is missing or unusable (an :class:`~pyprofile.errors.InputError`, e.g.
    no order lines to recommend from) is skipped with its reason instead of failing the build;
    with ``session`` (the model's connection) its outputs of an earlier run are cleared.
    """
    import pyarrow as pa

    from pyprofile.errors import InputError

    try:
        # one ml step at a time: dbt runs Python models in parallel threads, and torch's
        # thread settings are process-wide, so parallel fits would not be reproducible
        with _ML_LOCK:
            summary, status, message = fn(), "ok", None
    except InputError as exc:
        summary, status, message = {}, "skipped", str(exc)
        print(f"pyprofile: {model} skipped: {exc}")
        if session is not None:
            clear_outputs(session, model)
    rows = summary.get("rows")
    row = {
        "model": model,
        "status": status,
        "model_version": summary.get("model_version"),
        "rows_written": None if rows is None else int(rows),
        "output_tables": outputs,
        "message": message or _partial(summary),
        **{key: None if summary.get(key) is None else str(summary.get(key)) for key in extra},
    }
    # typed columns: an all-null column would otherwise get DuckDB's NULL type, which BI
    # tools and ODBC/JDBC drivers cannot read
    types = {"rows_written": pa.int64()}
    schema = pa.schema([(name, types.get(name, pa.string())) for name in row])
    return pa.Table.from_pylist([row], schema=schema)


def _work_dir(project: Path) -> Path:
    """dbt's target/log folder, outside the (possibly read-only) installed project."""
    if os.access(project, os.W_OK):
        return project
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pyprofile"
    digest = hashlib.sha1(str(project).encode()).hexdigest()[:10]
    return base / f"dbt-{digest}"


@dataclass
class NodeResult:
    name: str
    kind: str
    status: str
    seconds: float
    message: str | None = None


@dataclass
class DbtRun:
    success: bool
    nodes: list[NodeResult] = field(default_factory=list)

    def failures(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.status in ("error", "fail", "runtime error")]


def run_dbt(
    command: str,
    db: str | os.PathLike,
    *,
    select: Sequence[str] = (),
    vars: dict[str, Any] | None = None,
    full_refresh: bool = False,
    on_node: Callable[[NodeResult], None] | None = None,
    raise_on_error: bool = True,
) -> DbtRun:
    """Invoke ``dbt <command>`` (build, run, test, ...) on the bundled project for warehouse ``db``.

    No connection to ``db`` may be open in this process for writing while dbt runs.
    """
    from dbt.cli.main import dbtRunner

    os.environ[DB_ENV] = str(Path(db).resolve())
    args = _arguments(command, select, full_refresh)

    def callback(event) -> None:
        if on_node is None or event.info.name not in ("NodeStart", "NodeFinished"):
            return
        if event.info.name == "NodeStart":
            node = event.data.node_info
            on_node(NodeResult(node.node_name, node.resource_type, "started", 0.0))
            return
        info = event.data.run_result
        node = event.data.node_info
        on_node(
            NodeResult(
                name=node.node_name,
                kind=node.resource_type,
                status=info.status,
                seconds=float(info.execution_time or 0),
                message=info.message or None,
            )
        )

    # vars go as a dict: through --vars they would be JSON re-read as YAML, which turns dates
    # into dates, splits emoji and refuses long strings
    result = dbtRunner(callbacks=[callback]).invoke(args, **({"vars": vars} if vars else {}))
    nodes = [
        NodeResult(
            name=r.node.name,
            kind=r.node.resource_type,
            status=str(r.status),
            seconds=float(r.execution_time or 0),
            message=r.message,
        )
        for r in getattr(result.result, "results", None) or []
    ]
    run = DbtRun(success=bool(result.success), nodes=nodes)
    if raise_on_error and not run.success:
        raise PyprofileError(_failure_line(command, run, result.exception))
    return run


def _failure_line(command: str, run: DbtRun, exception: BaseException | None) -> str:
    """One line: what failed (first line of each of the first three messages) and the log."""
    log = _work_dir(project_dir()) / "logs" / "dbt.log"
    failed = run.failures()
    if failed:
        first = [f"{n.name}: {' '.join((n.message or n.status).split())[:300]}" for n in failed[:3]]
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        detail = f"{len(failed)} of {len(run.nodes)} nodes failed ({'; '.join(first)}{more})"
    else:
        detail = " ".join(str(exception or "see the log").split())[:300]
    return f"dbt {command} failed: {detail}; full log: {log}"


def _arguments(command: str, select: Sequence[str], full_refresh: bool) -> list[str]:
    """dbt's command line for the bundled project (target and logs in a writable folder)."""
    project = project_dir()
    work = _work_dir(project)
    args = [
        command,
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(project),
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
        # nothing on the console (progress comes through the callback); the file keeps it all
        "--log-level",
        "none",
        "--log-level-file",
        "info",
    ]
    for s in select:
        args += ["--select", s]
    if full_refresh:
        args.append("--full-refresh")
    return args
