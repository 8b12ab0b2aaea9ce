"""The model registry in the warehouse (``ml.model_registry``).

Each row is one trained model: name, version, trained_at, params and metrics (JSON), the
artifact (BLOB, see :mod:`pyprofile.models.artifact`) and its SHA-256, verified on every load.
The version is derived from the artifact's content, so a seeded retrain on the same data gets
the same version and reruns are idempotent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyprofile.errors import CorruptArtifactError, ModelNotFoundError
from pyprofile.models.artifact import checksum, jsonable
from pyprofile.warehouse.engine import Warehouse
from pyprofile.warehouse.sql import qualified
from pyprofile.warehouse.tables import REGISTRY


@dataclass(frozen=True)
class ModelRecord:
    name: str
    version: str
    trained_at: datetime
    params: dict[str, Any]
    metrics: dict[str, Any]
    artifact: bytes
    checksum: str


def _ensure(wh: Warehouse) -> None:
    wh.execute("create schema if not exists ml")
    wh.execute(
        f"create table if not exists {qualified(REGISTRY)} ("
        " name varchar not null, version varchar not null, trained_at timestamp not null,"
        " params json, metrics json, artifact blob not null, checksum varchar not null,"
        " primary key (name, version))"
    )


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, default=jsonable)


def version_of(artifact: bytes) -> str:
    """The registry version of an artifact: ``v`` + 12 hex digits of its checksum."""
    return "v" + checksum(artifact)[:12]


def save_model(
    wh: Any,
    name: str,
    artifact: bytes,
    *,
    params: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> str:
    """Store an artifact under ``name``; returns its version (``v`` + 12 hex of its checksum)."""
    wh = Warehouse.open(wh)
    digest = checksum(artifact)
    version = version_of(artifact)
    _ensure(wh)
    with wh.transaction():
        wh.execute(
            f"delete from {qualified(REGISTRY)} where name = ? and version = ?", [name, version]
        )
        wh.execute(
            f"insert into {qualified(REGISTRY)} values (?, ?, ?, ?, ?, ?, ?)",
            [
                name,
                version,
                datetime.now(UTC).replace(tzinfo=None),
                _json(params or {}),
                _json(metrics or {}),
                artifact,
                digest,
            ],
        )
    return version


def load_model(wh: Any, name: str, version: str | None = None) -> ModelRecord:
    """Fetch a model (the latest trained when ``version`` is None) and verify its checksum."""
    wh = Warehouse.open(wh)
    if not wh.exists(REGISTRY):
        raise ModelNotFoundError(
            f"no model registry ({REGISTRY}) in this warehouse: train a model first"
        )
    sql = (
        f"select name, version, trained_at, params, metrics, artifact, checksum "
        f"from {qualified(REGISTRY)} where name = ?"
    )
    args: list[Any] = [name]
    if version is not None:
        sql += " and version = ?"
        args.append(version)
    rows = wh.query(sql + " order by trained_at desc limit 1", args).to_pylist()
    if not rows:
        what = f"version {version} of " if version else ""
        raise ModelNotFoundError(f"no {what}model named {name!r} in {REGISTRY}")
    row = rows[0]
    blob = bytes(row["artifact"])
    if checksum(blob) != row["checksum"]:
        raise CorruptArtifactError(
            f"model {name} {row['version']} in {REGISTRY}: artifact checksum mismatch "
            "(corrupted or tampered with); retrain it, or delete that row to go on"
        )
    return ModelRecord(
        name=row["name"],
        version=row["version"],
        trained_at=row["trained_at"],
        params=json.loads(row["params"] or "{}"),
        metrics=json.loads(row["metrics"] or "{}"),
        artifact=blob,
        checksum=row["checksum"],
    )


def latest_models(wh: Any) -> list[dict[str, Any]]:
    """The latest version of every registered model: name, version, trained_at, metrics."""
    wh = Warehouse.open(wh)
    if not wh.exists(REGISTRY):
        return []
    rows = wh.query(
        f"select name, version, trained_at, metrics from {qualified(REGISTRY)} "
        "qualify row_number() over (partition by name order by trained_at desc) = 1 "
        "order by name"
    ).to_pylist()
    return [{**row, "metrics": json.loads(row["metrics"] or "{}")} for row in rows]
