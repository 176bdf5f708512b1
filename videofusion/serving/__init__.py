"""Serving: a trained run → a versioned SavedModel for TF Serving (`export`), and video files → labels
through it (`predict`). The SavedModel's signatures are in `signatures.py`; the caption tokenizer it
carries, in core TensorFlow ops, in `wordpiece.py`."""
