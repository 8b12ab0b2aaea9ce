"""Synthetic customers: a conditional tabular GAN (CTGAN family) and its quality report."""

from pyprofile.models.synth.synthesizer import Synthesizer
from pyprofile.models.synth.transformer import DataTransformer

__all__ = ["DataTransformer", "Synthesizer"]
