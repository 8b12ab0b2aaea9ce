"""What every pyprofile estimator shares: scikit-learn's conventions and one persistence API.

:class:`Estimator` is a :class:`sklearn.base.BaseEstimator` (so ``get_params``, ``clone`` and
``repr`` come from scikit-learn) that knows when it is fitted (``check_is_fitted`` works) and
round-trips through pickle-free bytes: ``to_artifact()`` stores the parameters and the fitted
state, ``from_artifact()`` rebuilds an equal, fitted estimator.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError as SklearnNotFittedError

from pyprofile import errors
from pyprofile.errors import InputError
from pyprofile.models.artifact import pack, restore_params, unpack


class NotFittedError(errors.NotFittedError, SklearnNotFittedError):
    """A method that needs a fitted model was called before ``fit``: both pyprofile's and
    scikit-learn's ``NotFittedError``."""


class Estimator(BaseEstimator, abc.ABC):
    """Base of the pyprofile estimators.

    Subclasses set ``fitted_attribute`` (an attribute that exists only once fitted) and
    ``artifact_format``, and implement ``_get_state`` / ``_set_state``.
    """

    fitted_attribute: ClassVar[str] = ""
    artifact_format: ClassVar[str] = ""

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, self.fitted_attribute)

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit() first")

    # ------------------------------------------------------------------ persistence
    @abc.abstractmethod
    def _get_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The fitted attributes as named arrays and a JSON-able dict."""

    @abc.abstractmethod
    def _set_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        """Restore the fitted attributes from :meth:`_get_state`'s output."""

    def to_artifact(self) -> bytes:
        """The parameters and the fitted state as pickle-free bytes."""
        self._check_fitted()
        arrays, state = self._get_state()
        meta = {"format": self.artifact_format, "params": self.get_params(), "state": state}
        return pack(arrays, meta)

    @classmethod
    def from_artifact(cls, blob: bytes, **overrides: Any):
        """Rebuild the fitted estimator from :meth:`to_artifact` bytes; ``overrides`` replace
        parameters that do not change the fitted state (e.g. ``device``)."""
        arrays, meta = unpack(blob)
        if meta.get("format") != cls.artifact_format:
            raise InputError(
                f"not a {cls.__name__} artifact (format {meta.get('format')!r}, "
                f"expected {cls.artifact_format!r})"
            )
        model = cls(**{**restore_params(cls, meta["params"]), **overrides})
        model._set_state(arrays, meta["state"])
        return model
