"""Keras functional models (they import `keras` only, so they also run under the JAX backend)."""

from videofusion.models.builder import InputShapes, build_model, parse_modalities

__all__ = ["InputShapes", "build_model", "parse_modalities"]
