"""videofusion: videos → TFRecords → a trained audio-visual fusion model → a SavedModel."""

__version__ = "0.4.0"
