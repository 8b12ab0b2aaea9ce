"""Estimators and their maths. Nothing here talks to a warehouse: estimators take Arrow
tables or DataFrames, and persist as pickle-free artifacts (``to_artifact`` /
``from_artifact``) that the warehouse's registry stores.

The estimators are imported on first use, so that importing a light module of this package
(``pyprofile.models.data``, say) does not import torch and scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BGNBD": "pyprofile.models.clv",
    "GammaGamma": "pyprofile.models.clv",
    "PropensityModel": "pyprofile.models.propensity",
    "Recommender": "pyprofile.models.recommend",
    "Segmenter": "pyprofile.models.segment",
    "Synthesizer": "pyprofile.models.synth.synthesizer",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pyprofile.models' has no attribute {name!r}")
