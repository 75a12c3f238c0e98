"""Constrained infilling for diffusion LLMs (docstring pending)."""

from constrain.diffusion.checker import CheckResult, Gap, InfillChecker, LongestLexingRefused, normalise_segments
from constrain.diffusion.sampler import (MASK, DiffusionConstraint, DiffusionResult, RandomDenoiser,
                                         TransformersDenoiser, diffusion_generate)

__all__ = ["MASK", "CheckResult", "DiffusionConstraint", "DiffusionResult", "Gap", "InfillChecker",
           "LongestLexingRefused", "RandomDenoiser", "TransformersDenoiser", "diffusion_generate",
           "normalise_segments"]
