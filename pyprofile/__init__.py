"""pyprofile: customer profiles inside your SQL warehouse.

>>> from pyprofile import Warehouse, Segmenter, run_segmentation
>>> run_segmentation("demo.duckdb")

The estimators (``Synthesizer``, ``Segmenter``, ``PropensityModel``, ``BGNBD``,
``GammaGamma``, ``Recommender``) live in :mod:`pyprofile.models`, the engine seam
(``Warehouse``) in :mod:`pyprofile.warehouse`, the flows (``run_*``) in
:mod:`pyprofile.flows`. Names are imported on first use, so ``import pyprofile`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "BGNBD": "pyprofile.models.clv",
    "GammaGamma": "pyprofile.models.clv",
    "PropensityModel": "pyprofile.models.propensity",
    "Recommender": "pyprofile.models.recommend",
    "Segmenter": "pyprofile.models.segment",
    "Synthesizer": "pyprofile.models.synth.synthesizer",
    "Warehouse": "pyprofile.warehouse",
    "run_recommendations": "pyprofile.flows.recommendations",
    "run_scoring": "pyprofile.flows.scoring",
    "run_segmentation": "pyprofile.flows.segmentation",
    "run_synthesizer": "pyprofile.flows.synthesizer",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pyprofile' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
