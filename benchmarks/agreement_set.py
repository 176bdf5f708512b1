"""The pretraining benchmark's set: every clip shows a digit crossing the frame and sings it.

Twenty classes, digit × direction (`three-left`: a handwritten 3 travelling right to left). Every clip is a
real mp4 (H.264 + AAC, `write_mp4`): 2 s, 10 fps, 64×64 pixels, 16 kHz mono audio, built from the
appearance set's parts (`appearance_set.py`): its textured backgrounds, soft distractor blobs, "handwritten"
glyphs in the training faces and "sung" digit words in the training voices. What is seen and what is
heard agree — the digit is both on screen and in the sound — and one factor only the picture carries:
the direction, left or right, the glyph crossing 24–40 px of the frame over the clip at a random
height. So a model that learns the digit from the agreement of picture and sound (pretraining, no
label) still needs a few labels for the direction.

Every glyph, voice, background, path and word timing is drawn afresh for every clip from
`numpy.random.default_rng([seed, index])`: test clips are new instances of the training styles. Classes
cycle within each split (balanced when a split's size is a multiple of 20). The output folder holds
`videos/<split>/<index>_<digit>-<direction>.mp4` and `manifest.csv` (`path,label,split`).

    .venv/bin/python benchmarks/agreement_set.py --output /tmp/vf_agreement/raw

Example:

>>> [label(i) for i in (0, 1, 10, 19)]
['zero-left', 'one-left', 'zero-right', 'nine-right']
"""

import os
from typing import List

import appearance_set as parts
import numpy as np
from absl import app, flags, logging

from videofusion import fileio, progress
from videofusion.ingest.demo_videos import write_mp4

DIRECTIONS = ("left", "right")
LABELS = tuple(f"{digit}-{direction}" for direction in DIRECTIONS for digit in parts.DIGITS)
_TRAVEL_PX = (24.0, 40.0)


def label(position: int) -> str:
    """The class of a split's clip number `position`."""
    return LABELS[position % len(LABELS)]


def crossing_path(height: int, width: int, leftwards: bool, rng: np.random.Generator) -> np.ndarray:
    """`[frames, 2]` top-left (x, y) of a `height`×`width` glyph crossing horizontally, staying in frame."""
    num_frames = int(round(parts.DURATION_S * parts.FPS))
    travel = min(rng.uniform(*_TRAVEL_PX), parts.SIZE - width)
    x0 = rng.uniform(0, parts.SIZE - width - travel)
    xs = x0 + np.linspace(0.0, travel, num_frames)
    y = rng.uniform(0, parts.SIZE - height) + np.cumsum(rng.normal(0, 0.3, num_frames))
    path = np.stack([xs[::-1] if leftwards else xs, np.clip(y, 0, parts.SIZE - height)], axis=1)
    return path


def render_clip(digit: int, leftwards: bool, rng: np.random.Generator) -> tuple:
    """(uint8 frames `[20, 64, 64, 3]`, float32 audio `[32000]`): the glyph crossing, the word sung."""
    background = parts.textured_background(rng)
    layers = []
    if rng.random() < 0.5:
        blob = parts.blob_mask(rng)
        layers.append((blob, rng.uniform(0, 255, size=3), parts.drift_path(*blob.shape, (0.0, 8.0), rng),
                       rng.uniform(0.6, 1.0)))
    glyph = parts.glyph_mask(digit, parts.sample_glyph_style(parts.TRAIN_FONTS, rng), rng)
    layers.append((glyph, parts.contrasting_colour(background, rng), crossing_path(*glyph.shape, leftwards, rng),
                   1.0))
    frames = np.empty((len(layers[-1][2]), parts.SIZE, parts.SIZE, 3), np.uint8)
    for t in range(len(frames)):
        frame = background + rng.normal(0, 5, size=background.shape).astype(np.float32)
        for mask, colour, path, opacity in layers:
            parts.paste(frame, mask, colour, *path[t], opacity=opacity)
        frames[t] = np.clip(frame, 0, 255).astype(np.uint8)
    plan = parts.ClipPlan(0, "train", digit, parts.BOTH)
    return frames, parts.render_audio(plan, parts.TRAIN_VOICES, rng)


def write_agreement_set(output_dir: str, seed: int = 0, num_train: int = 400, num_val: int = 100,
                        num_test: int = 200) -> str:
    """Writes the clips and `manifest.csv` under `output_dir`; returns the manifest's path."""
    rows: List[str] = []
    index = 0
    splits = [("train", num_train), ("val", num_val), ("test", num_test)]
    bar = progress.track(range(num_train + num_val + num_test), desc="agreement clips", unit="clip")
    counter = iter(bar)
    for split, count in splits:
        for position in range(count):
            next(counter)
            name = label(position)
            digit, direction = parts.DIGITS.index(name.split("-")[0]), name.split("-")[1]
            frames, samples = render_clip(digit, direction == "left", np.random.default_rng([seed, index]))
            path = f"videos/{split}/{index:05d}_{name}.mp4"
            with fileio.atomic_path(os.path.join(output_dir, path)) as tmp:
                write_mp4(tmp, frames, parts.FPS, samples, parts.SAMPLE_RATE)
            rows.append(f"{path},{name},{split}")
            index += 1
    list(counter)
    manifest = os.path.join(output_dir, parts.MANIFEST_FILE)
    with fileio.atomic_open(manifest, "w", encoding="utf-8") as f:
        f.write("path,label,split\n" + "\n".join(rows) + "\n")
    logging.info("Wrote %d clips (%d train, %d val, %d test) and %s", index, num_train, num_val, num_test, manifest)
    return manifest


def main(_):
    values = flags.FLAGS
    write_agreement_set(values.output, values.seed, values.num_train, values.num_val, values.num_test)


if __name__ == "__main__":
    flags.DEFINE_string("output", None, "Folder for the videos and manifest.csv.", required=True)
    flags.DEFINE_integer("seed", 0, "Random seed; the same seed gives the same files.")
    flags.DEFINE_integer("num_train", 400, "Training clips.")
    flags.DEFINE_integer("num_val", 100, "Validation clips.")
    flags.DEFINE_integer("num_test", 200, "Test clips (new instances of the training styles).")
    app.run(main)
