"""One flow per capability, named like the dbt model that calls it, all of one shape:
read inputs -> fit -> publish registry rows, tables and scoring functions in one transaction
-> return a summary."""

from pyprofile.flows.recommendations import run_recommendations
from pyprofile.flows.scoring import run_scoring
from pyprofile.flows.segmentation import run_segmentation
from pyprofile.flows.synthesizer import run_synthesizer

__all__ = ["run_recommendations", "run_scoring", "run_segmentation", "run_synthesizer"]
