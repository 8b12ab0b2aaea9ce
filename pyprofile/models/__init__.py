"""Estimators and their maths. Nothing here talks to a warehouse: estimators take Arrow
tables or DataFrames, and persist as pickle-free artifacts (``to_artifact`` /
``from_artifact``) that the warehouse's registry stores."""

from pyprofile.models.clv import BGNBD, GammaGamma
from pyprofile.models.propensity import PropensityModel
from pyprofile.models.recommend import Recommender
from pyprofile.models.segment import Segmenter
from pyprofile.models.synth import Synthesizer

__all__ = ["BGNBD", "GammaGamma", "PropensityModel", "Recommender", "Segmenter", "Synthesizer"]
