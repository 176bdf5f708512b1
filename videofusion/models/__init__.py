"""Keras functional models (they import `keras` only, so they also run under the JAX backend)."""

from videofusion.models.builder import InputShapes, build_model, parse_modalities
from videofusion.models.finetune import ScaledAdam
from videofusion.models.frame_preprocessing import FrameAugment
from videofusion.models.recipe import SmoothedCrossentropy

__all__ = ["FrameAugment", "InputShapes", "ScaledAdam", "SmoothedCrossentropy", "build_model", "parse_modalities"]
