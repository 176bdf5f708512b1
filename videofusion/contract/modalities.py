"""Modality names: what `model.modalities` lists, and its parsing; the model inputs of each modality.

Example:

>>> parse("video, audio")
('audio', 'video')
>>> parse("video,smell")
Traceback (most recent call last):
...
ValueError: model.modalities='video,smell': expected a comma-separated subset of video,audio,text
"""

from videofusion.contract import tensors

VIDEO = "video"
AUDIO = "audio"
TEXT = "text"
ALL = (VIDEO, AUDIO, TEXT)
# The model inputs each modality's encoder reads (`tensors`).
INPUTS = {
    VIDEO: (tensors.FRAMES, tensors.FRAME_MASK),
    AUDIO: (tensors.WAVEFORM, tensors.MEL, tensors.AUDIO_PRESENT),
    TEXT: (tensors.TOKENS,),
}


def parse(spec: str, field: str = "model.modalities") -> tuple:
    """`"video,audio"` → `("audio", "video")` (sorted, deduplicated); raises on an unknown or empty list,
    naming the config `field` it came from."""
    chosen = tuple(sorted({m.strip() for m in spec.split(",") if m.strip()}))
    if not chosen or any(m not in ALL for m in chosen):
        raise ValueError(f"{field}={spec!r}: expected a comma-separated subset of {','.join(ALL)}")
    return chosen
