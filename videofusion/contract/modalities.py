"""Modality names: what `model.modalities` lists, and its parsing.

Example:

>>> parse("video, audio")
('audio', 'video')
>>> parse("video,smell")
Traceback (most recent call last):
...
ValueError: model.modalities='video,smell': expected a comma-separated subset of video,audio,text
"""

VIDEO = "video"
AUDIO = "audio"
TEXT = "text"
ALL = (VIDEO, AUDIO, TEXT)


def parse(spec: str) -> tuple:
    """`"video,audio"` → `("audio", "video")` (sorted, deduplicated); raises on an unknown or empty list."""
    chosen = tuple(sorted({m.strip() for m in spec.split(",") if m.strip()}))
    if not chosen or any(m not in ALL for m in chosen):
        raise ValueError(f"model.modalities={spec!r}: expected a comma-separated subset of {','.join(ALL)}")
    return chosen
