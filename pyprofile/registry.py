"""Model registry in the warehouse (``ml.model_registry``) and a pickle-free artifact format.

An artifact is a set of named numpy arrays plus JSON metadata, stored as an ``.npz``
(``allow_pickle=False``) BLOB with its SHA-256; the checksum is verified on every load.
The version is derived from the artifact's content, so a seeded retrain on the same data
gets the same version and reruns are idempotent.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from pyprofile.errors import WarehouseError
from pyprofile.warehouse import Warehouse, qualified

REGISTRY = "ml.model_registry"
_META = "__meta__"


def pack(arrays: dict[str, Any], meta: dict[str, Any] | None = None) -> bytes:
    """Serialise named arrays (numpy or torch tensors) and JSON metadata to bytes, no pickle."""
    out = {}
    for key, value in arrays.items():
        if hasattr(value, "detach"):  # torch tensor
            value = value.detach().cpu().numpy()
        arr = np.asarray(value)
        if arr.dtype == object:
            raise TypeError(f"array {key!r} has dtype object; store it in meta instead")
        out[key] = arr
    out[_META] = np.frombuffer(json.dumps(meta or {}, sort_keys=True).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **out)
    return buf.getvalue()


def unpack(blob: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Inverse of :func:`pack`."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files if k != _META}
        meta = json.loads(npz[_META].tobytes().decode()) if _META in npz.files else {}
    return arrays, meta


def checksum(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


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
    return json.dumps(value, sort_keys=True, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def save_model(
    wh: Warehouse,
    name: str,
    artifact: bytes,
    *,
    params: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> str:
    """Store an artifact under ``name``; returns its version (``v`` + 12 hex of its checksum)."""
    wh = Warehouse.open(wh)
    digest = checksum(artifact)
    version = "v" + digest[:12]
    _ensure(wh)
    with wh.transaction() as con:
        con.execute(
            f"delete from {qualified(REGISTRY)} where name = ? and version = ?", [name, version]
        )
        con.execute(
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


def load_model(wh: Warehouse, name: str, version: str | None = None) -> ModelRecord:
    """Fetch a model (the latest trained when ``version`` is None) and verify its checksum."""
    wh = Warehouse.open(wh)
    if not wh.exists(REGISTRY):
        raise WarehouseError(
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
    rows = wh.con.execute(sql + " order by trained_at desc limit 1", args).fetchall()
    row = rows[0] if rows else None
    if row is None:
        what = f"version {version} of " if version else ""
        raise WarehouseError(f"no {what}model named {name!r} in {REGISTRY}")
    blob = bytes(row[5])
    if checksum(blob) != row[6]:
        raise WarehouseError(f"model {name} {row[1]}: artifact checksum mismatch (corrupted)")
    return ModelRecord(
        name=row[0],
        version=row[1],
        trained_at=row[2],
        params=json.loads(row[3] or "{}"),
        metrics=json.loads(row[4] or "{}"),
        artifact=blob,
        checksum=row[6],
    )
