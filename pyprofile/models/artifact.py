"""Pickle-free persistence of fitted estimators: named numpy arrays plus JSON metadata.

An artifact is an ``.npz`` (``allow_pickle=False``) holding the arrays and one JSON document;
its SHA-256 is the checksum the registry stores and verifies. Estimators write and read
artifacts through :class:`pyprofile.models.base.Estimator` (``to_artifact`` / ``from_artifact``).
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
from datetime import date, datetime
from typing import Any

import numpy as np

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
    text = json.dumps(meta or {}, sort_keys=True, default=jsonable)
    out[_META] = np.frombuffer(text.encode(), dtype=np.uint8)
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
    """SHA-256 of an artifact, hex."""
    return hashlib.sha256(blob).hexdigest()


def jsonable(value: Any) -> Any:
    """JSON stand-in for numpy scalars and arrays, dates and other objects."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def restore_params(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """Parameters read back from JSON, with lists turned back into the tuples the signature
    uses (so that a reloaded estimator's ``get_params()`` equals the original's)."""
    signature = inspect.signature(cls.__init__).parameters
    out = {}
    for name, value in params.items():
        default = signature[name].default if name in signature else None
        tuple_like = isinstance(default, tuple) or (
            default is None and "tuple" in str(signature[name].annotation)
        )
        out[name] = tuple(value) if isinstance(value, list) and tuple_like else value
    return out
