"""Errors a user can cause and fix: the CLI prints them as one line, never a traceback."""


class PyprofileError(Exception):
    """Base class for user-facing errors (bad input, missing tables, unfitted models)."""


class InputError(PyprofileError, ValueError):
    """The data handed in breaks the input contract (missing column, wrong type, empty table...)."""


class WarehouseError(PyprofileError):
    """A warehouse object is missing or cannot be read or written."""


class ModelNotFoundError(WarehouseError):
    """The registry has no model (or no such version) under that name."""


class CorruptArtifactError(WarehouseError):
    """A stored model's bytes do not match their checksum: never used silently."""


class NotFittedError(PyprofileError, AttributeError):
    """A model method that needs a fitted model was called before ``fit``."""
