"""Synthetic customers: a conditional tabular GAN (CTGAN family) and its quality report."""

from pyprofile.synth.synthesizer import Synthesizer
from pyprofile.synth.transformer import DataTransformer

__all__ = ["DataTransformer", "Synthesizer"]
