"""Run the bundled dbt project (programmatically, in this process) against a warehouse file."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyprofile.errors import PyprofileError
from pyprofile.warehouse import DB_ENV

_HERE = Path(__file__).resolve().parent
_ML_LOCK = threading.Lock()


def project_dir() -> Path:
    """The dbt project: ``dbt_project/`` of a source checkout, else the copy inside the wheel."""
    for candidate in (_HERE.parent / "dbt_project", _HERE / "_dbt_project"):
        if (candidate / "dbt_project.yml").exists():
            return candidate
    raise PyprofileError("the bundled dbt project was not found; reinstall pyprofile")


def udfs_dir() -> Path:
    """The static SQL macros: ``udfs/`` of a source checkout, else the copy inside the wheel."""
    for candidate in (_HERE.parent / "udfs", _HERE / "_udfs"):
        if candidate.is_dir():
            return candidate
    raise PyprofileError("the bundled udfs/ folder was not found; reinstall pyprofile")


def publish_static_macros(wh) -> list[str]:
    """Persist every static macro kept as SQL under ``udfs/`` (``*.sql``); returns their names."""
    from pyprofile.udfs import publish_sql_file

    return [publish_sql_file(wh, path) for path in sorted(udfs_dir().glob("*.sql"))]


def config_value(raw: Any, cast: Callable[[Any], Any] = str) -> Any:
    """A dbt model config value (rendered from a var, so often text) or None when unset."""
    return None if raw in (None, "", "none", "None", "null") else cast(raw)


def run_step(model: str, outputs: str, fn: Callable[[], dict], *, extra: Sequence[str] = ()):
    """Run one ml step for a dbt Python model and return its one-row run log (Arrow).

    A step whose input is missing or unusable (an :class:`~pyprofile.errors.InputError`, e.g.
    no order lines to recommend from) is skipped with its reason instead of failing the build.
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
    row = {
        "model": [model],
        "status": [status],
        "model_version": [summary.get("model_version")],
        "rows_written": [summary.get("rows")],
        "output_tables": [outputs],
        "message": [message],
    }
    for key in extra:
        row[key] = [None if summary.get(key) is None else str(summary.get(key))]
    return pa.table(row)


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

    project = project_dir()
    work = _work_dir(project)
    os.environ[DB_ENV] = str(Path(db).resolve())
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
        "--quiet",
    ]
    for s in select:
        args += ["--select", s]
    if vars:
        args += ["--vars", json.dumps(vars)]
    if full_refresh:
        args.append("--full-refresh")

    def callback(event) -> None:
        if on_node is None or event.info.name != "NodeFinished":
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

    result = dbtRunner(callbacks=[callback]).invoke(args)
    nodes = []
    if result.result is not None and hasattr(result.result, "results"):
        for r in result.result.results:
            nodes.append(
                NodeResult(
                    name=r.node.name,
                    kind=r.node.resource_type,
                    status=str(r.status),
                    seconds=float(r.execution_time or 0),
                    message=r.message,
                )
            )
    run = DbtRun(success=bool(result.success), nodes=nodes)
    if raise_on_error and not run.success:
        failed = run.failures()
        if failed:
            detail = "; ".join(f"{n.name}: {(n.message or n.status).strip()}" for n in failed[:5])
        else:
            detail = str(result.exception or "see dbt's log")
        raise PyprofileError(f"dbt {command} failed: {detail}")
    return run
