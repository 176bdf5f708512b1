"""A held-out evaluation set that needs appearance: digits shown as glyphs or "spoken", unseen instances in test.

Ten classes, the digits `zero` … `nine`. Every clip is a real mp4 (H.264 + AAC, written with
`videofusion.demo.write_mp4`): 2 s, 10 fps, 64×64 pixels, 16 kHz mono audio. Each clip is one of three
types; within a split, the clips of every class go through the cycle visual, audio, visual, audio, both
(40/40/20 % when the split has a multiple of 50 clips; each half of the default 480 test clips has
100/100/40):

- `visual` (40 %): the digit is shown as a small glyph (about half the frame's height) that drifts
  slowly (3–8 px/s, random direction, staying in frame) at a random place over a coloured, textured
  background; the audio carries no class: hum and noise, and in half of these clips a few random notes
  that are no digit's word (nor a piece of one);
- `audio` (40 %): no glyph, only the textured background; the digit is "spoken" in the audio;
- `both` (20 %): the glyph is shown and the digit spoken.

Every clip has the same kind of background (random base colour, smooth low-frequency colour texture,
static grain and per-frame pixel noise), and about half of the clips of every type a soft coloured blob
drifting about as a distractor; so neither the picture's texture nor the blob tells the class or the
clip type. Video alone can therefore reach about 0.64 (60 % of the clips show the digit, a tenth of the
rest by chance; 0.625 on each half of the default test split), audio alone the same, and only a model that uses
both can reach 1.

Glyphs are drawn with `cv2.putText` in one of OpenCV's built-in faces at a random weight (100–900),
then made "handwritten": widened by up to 1 px, bent by a smooth random elastic distortion (up to
1.5 px), rotated (±12°), sheared (±0.2), scaled to 28–36 px high and shrunk from 4× with area
averaging; the colour's luminance differs from the background's by at least 100. Training and
validation glyphs use the faces `sans` and `italic`. The pinned OpenCV 5 no longer has the Hershey
stroke fonts: its `FONT_HERSHEY_*` constants draw these built-in faces (TRIPLEX as DUPLEX, both SCRIPT
faces as `italic`), so holding Hershey faces out of training would hold out nothing.

There is no speech synthesiser, so each digit has its own fixed "word": a sequence of two or three
notes from a two-octave major pentatonic scale above 220 Hz (`WORDS`; every two words of the same
length differ by at least 5 semitones in some note, even after each is transposed by up to a
semitone). A word is sung by a "voice": a harmonic amplitude profile drawn from a timbre family, with
a random global transposition (±1 semitone), tempo (notes of 0.14–0.24 s), vibrato and level, over hum
and noise. The word lies within 0.45–1.55 s, so every 1.6 s window of the experiments (8 frames,
stride 2) holds it whole. Training and validation voices come from the families `buzzy`, `soft` and
`low_formant`.

The test split has two halves (`styles` in `clip_types.csv`), each with every class and clip type:

- `seen` (the first half): new instances of the training styles — every glyph, voice, background,
  place and path drawn afresh, as a new clip of a real dataset is; the issue's targets (about 0.64
  video or audio alone, about 1 fused) are about these clips;
- `held_out` (the second half): styles training never saw — glyphs only in the face `uni` (another
  design: a `0` without the slash, a `1` without the foot, other curves) and voices only from the
  families `hollow` (odd harmonics only) and `high_formant`: a harder shift, like a test set of
  another dataset. A per-frame CNN trained on the training glyphs' frames alone (the video row's
  `pooled_cnn`, or one 4× as wide with zoom, shift and rotation augmentation; softmax over the
  digits, 8–12 epochs) recognises 0.65–0.78 of these glyph clips, against 0.84–0.87 of the validation
  split's: on this half no video model is expected near its ceiling.

Everything about clip `index` is drawn from `numpy.random.default_rng([seed, index])`; train, val and
test clips are numbered in that order. The output folder holds `videos/<split>/<index>_<digit>.mp4`,
`manifest.csv` (`path,label,split`) and `clip_types.csv` (`path,clip_type,styles`, same paths).

    .venv/bin/python benchmarks/appearance_set.py --output /tmp/vf_appearance/raw
    .venv/bin/python benchmarks/appearance_set.py --output /tmp/small --num_train 60 --num_val 20 --num_test 40

Example:

>>> manifest = write_appearance_set("/tmp/appearance", num_train=20, num_val=10, num_test=10)  # doctest: +SKIP
>>> [plan.clip_type for plan in plan_clips(20, 0, 0)][::10]
['visual', 'audio']
"""

import csv
import dataclasses
import itertools
import os
from typing import List, Sequence

import cv2
import numpy as np
from absl import app, flags, logging

from videofusion import fileio, progress
from videofusion.ingest.demo_videos import luminance, write_mp4

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPLITS = ("train", "val", "test")
VISUAL, AUDIO, BOTH = "visual", "audio", "both"
CLIP_TYPES = (VISUAL, AUDIO, BOTH)
SEEN, HELD_OUT = "seen", "held_out"
# Clip types of the 5 groups of ten clips (one per digit) that repeat through each split: 40/40/20 %.
CLIP_TYPE_CYCLE = (VISUAL, AUDIO, VISUAL, AUDIO, BOTH)
MANIFEST_FILE = "manifest.csv"
CLIP_TYPES_FILE = "clip_types.csv"

SIZE = 64
FPS = 10
DURATION_S = 2.0
SAMPLE_RATE = 16000

# OpenCV's built-in faces (cv2.FontFace); "sans" and "italic" have a weight axis, "uni" has not.
TRAIN_FONTS = ("sans", "italic")
TEST_FONTS = ("uni",)
_WEIGHTS = (100, 900)
_SUPERSAMPLE = 4  # glyphs are drawn this many times larger, then shrunk with area averaging
_DRAW_SIZE_PX = 160  # font size of the drawing, before it is cropped to its ink and scaled
_GLYPH_HEIGHT_PX = (28.0, 36.0)
_EXTRA_STROKE_PX = (0.0, 1.0)  # stroke widening (dilation) at the final size
_WOBBLE_PX = (0.0, 1.5)  # amplitude of the smooth elastic distortion ("handwriting"), final size
_ROTATION_DEG = 12.0
_SHEAR = 0.2
_DRIFT_PX_PER_S = (3.0, 8.0)
_MIN_CONTRAST = 100.0

_BASE_HZ = 220.0
PENTATONIC = (0, 2, 4, 7, 9, 12, 14, 16, 19, 21)  # semitones above _BASE_HZ
# Each digit's word, as indices into PENTATONIC.
WORDS = ((0, 4), (5, 2), (2, 7), (9, 6), (0, 3, 1), (7, 4, 8), (3, 8, 5), (6, 1, 4), (4, 4, 9), (8, 2, 2))
TRAIN_VOICES = ("buzzy", "soft", "low_formant")
TEST_VOICES = ("hollow", "high_formant")
_NUM_HARMONICS = 12
_MAX_PARTIAL_HZ = 7500.0
_NOTE_S = (0.14, 0.24)
_GAP_S = (0.03, 0.06)
_WORD_SPAN_S = (0.45, 1.55)
_MIN_DISTRACTOR_DISTANCE = 3.0  # semitones from any word (or piece of one)


@dataclasses.dataclass(frozen=True)
class ClipPlan:
    """What clip `index` is: its split, digit and clip type (the rest is drawn when rendering)."""

    index: int
    split: str
    digit: int
    clip_type: str
    styles: str = SEEN  # or HELD_OUT: the glyph face and voice family are those training never sees

    @property
    def shows_glyph(self) -> bool:
        return self.clip_type in (VISUAL, BOTH)

    @property
    def speaks(self) -> bool:
        return self.clip_type in (AUDIO, BOTH)

    @property
    def path(self) -> str:
        return f"videos/{self.split}/{self.index:05d}_{DIGITS[self.digit]}.mp4"


def plan_clips(num_train: int, num_val: int, num_test: int) -> List[ClipPlan]:
    """Every clip's plan: digits cycle within each split, clip types every ten clips; the test split's
    first half has the training styles, its second half (from `num_test // 2` on) the held-out ones,
    each half with its own cycles.

    >>> plans = plan_clips(50, 0, 40)
    >>> [(p.split, p.digit, p.clip_type, p.styles) for p in plans[48:50]]
    [('train', 8, 'both', 'seen'), ('train', 9, 'both', 'seen')]
    >>> [(p.split, p.digit, p.clip_type, p.styles) for p in plans[50:52]]
    [('test', 0, 'visual', 'seen'), ('test', 1, 'visual', 'seen')]
    >>> [(p.digit, p.clip_type, p.styles) for p in plans[70:72]]
    [(0, 'visual', 'held_out'), (1, 'visual', 'held_out')]
    """
    parts = [("train", num_train, SEEN), ("val", num_val, SEEN), ("test", num_test // 2, SEEN),
             ("test", num_test - num_test // 2, HELD_OUT)]
    plans, index = [], 0
    for split, count, styles in parts:
        for position in range(count):
            clip_type = CLIP_TYPE_CYCLE[(position // len(DIGITS)) % len(CLIP_TYPE_CYCLE)]
            plans.append(ClipPlan(index, split, position % len(DIGITS), clip_type, styles))
            index += 1
    return plans


# === Pictures ===


def textured_background(rng: np.random.Generator) -> np.ndarray:
    """float32 `[64, 64, 3]`: a random colour, smooth colour texture at two scales and static grain."""
    base = rng.uniform(40, 215, size=3)
    coarse_cells = int(rng.integers(3, 6))
    coarse = rng.uniform(-35, 35, size=(coarse_cells, coarse_cells, 3)).astype(np.float32)
    fine = rng.uniform(-12, 12, size=(8, 8, 3)).astype(np.float32)
    texture = (cv2.resize(coarse, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
               + cv2.resize(fine, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC))
    grain = rng.normal(0, 4, size=(SIZE, SIZE, 3))
    return (base + texture + grain).astype(np.float32)


def contrasting_colour(background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random RGB colour whose luminance differs from the background's mean by at least 100."""
    target = luminance(background.reshape(-1, 3).mean(axis=0))
    for _ in range(100):
        colour = rng.uniform(0, 255, size=3)
        if abs(luminance(colour) - target) >= _MIN_CONTRAST:
            return colour
    return np.full(3, 0.0 if target > 127 else 255.0)


def _ink_crop(canvas: np.ndarray) -> np.ndarray:
    rows, columns = np.nonzero(canvas)
    return canvas[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]


@dataclasses.dataclass(frozen=True)
class GlyphStyle:
    """How one clip draws its digit: face and weight of the font, and the "handwriting" distortions."""

    face: str
    weight: int
    extra_stroke_px: float
    wobble_px: float
    height_px: float
    angle_deg: float
    shear: float


def sample_glyph_style(faces: Sequence[str], rng: np.random.Generator) -> GlyphStyle:
    """A random style with a face of `faces`."""
    return GlyphStyle(
        face=str(rng.choice(faces)),
        weight=int(rng.integers(_WEIGHTS[0], _WEIGHTS[1] + 1)),
        extra_stroke_px=float(rng.uniform(*_EXTRA_STROKE_PX)),
        wobble_px=float(rng.uniform(*_WOBBLE_PX)),
        height_px=float(rng.uniform(*_GLYPH_HEIGHT_PX)),
        angle_deg=float(rng.uniform(-_ROTATION_DEG, _ROTATION_DEG)),
        shear=float(rng.uniform(-_SHEAR, _SHEAR)),
    )


def _draw_digit(digit: int, face: str, weight: int) -> np.ndarray:
    """uint8 mask of the digit drawn large by `cv2.putText`, cropped to its ink, with a margin."""
    canvas = np.zeros((2 * _DRAW_SIZE_PX, 2 * _DRAW_SIZE_PX), np.uint8)
    cv2.putText(canvas, str(digit), (_DRAW_SIZE_PX // 2, 3 * _DRAW_SIZE_PX // 2), 255, cv2.FontFace(face),
                _DRAW_SIZE_PX, weight)
    ink = _ink_crop(canvas)
    margin = ink.shape[0] // 2
    return cv2.copyMakeBorder(ink, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=0)


def _thicken(ink: np.ndarray, pixels: float) -> np.ndarray:
    radius = int(round(pixels / 2))
    if radius == 0:
        return ink
    return cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))


def _wobble(ink: np.ndarray, amplitude_px: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random elastic distortion (a 6×6 grid of random shifts, interpolated)."""
    height, width = ink.shape
    shifts = rng.uniform(-amplitude_px, amplitude_px, size=(2, 6, 6)).astype(np.float32)
    fields = [cv2.resize(shift, (width, height), interpolation=cv2.INTER_CUBIC) for shift in shifts]
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(ink, xs + fields[0], ys + fields[1], cv2.INTER_LINEAR, borderValue=0)


def glyph_mask(digit: int, style: GlyphStyle, rng: np.random.Generator) -> np.ndarray:
    """float32 coverage mask in [0, 1] of one digit, about `style.height_px` high, cropped to its ink.

    The digit is drawn `_SUPERSAMPLE` times larger than wanted, thickened, wobbled, rotated and sheared
    there, and shrunk with area averaging (smooth edges at 64×64).

    >>> style = GlyphStyle("sans", 400, 0.5, 1.0, 32.0, 10.0, 0.1)
    >>> mask = glyph_mask(7, style, np.random.default_rng(0))
    >>> 30 <= mask.shape[0] <= 40, float(mask.max()) > 0.9
    (True, True)
    """
    ink = _draw_digit(digit, style.face, style.weight)
    zoom = style.height_px * _SUPERSAMPLE / (ink.shape[0] / 2)  # the ink is half of the drawing's height
    ink = _thicken(ink, style.extra_stroke_px * _SUPERSAMPLE / zoom)
    ink = _wobble(ink, style.wobble_px * _SUPERSAMPLE / zoom, rng)
    angle = np.deg2rad(style.angle_deg)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = zoom * rotation @ np.array([[1.0, style.shear], [0.0, 1.0]])
    size = int(np.ceil(max(ink.shape) * zoom * 1.5))
    centre = np.array([ink.shape[1], ink.shape[0]], np.float64) / 2
    offset = np.array([size, size]) / 2 - linear @ centre
    warped = cv2.warpAffine(ink, np.hstack([linear, offset[:, None]]), (size, size), flags=cv2.INTER_LINEAR)
    warped = _ink_crop(warped).astype(np.float32) / 255.0
    small = (max(1, round(warped.shape[1] / _SUPERSAMPLE)), max(1, round(warped.shape[0] / _SUPERSAMPLE)))
    return np.clip(cv2.resize(warped, small, interpolation=cv2.INTER_AREA), 0.0, 1.0)


def drift_path(height: int, width: int, speed_px_per_s: tuple, rng: np.random.Generator) -> np.ndarray:
    """`[frames, 2]` top-left (x, y) positions of a `height`×`width` patch drifting in a straight line,
    in a random direction, from a random place, without leaving the frame."""
    num_frames = int(round(DURATION_S * FPS))
    heading = rng.uniform(0, 2 * np.pi)
    span = np.array([SIZE - width, SIZE - height], np.float64)
    travel = rng.uniform(*speed_px_per_s) * DURATION_S * np.array([np.cos(heading), np.sin(heading)])
    travel *= min(1.0, float(np.min(np.maximum(span, 0) / np.maximum(np.abs(travel), 1e-6))))
    low = np.maximum(0.0, -travel)
    start = low + rng.uniform(0, 1, size=2) * np.maximum(span - np.abs(travel), 0.0)
    return start + np.linspace(0.0, 1.0, num_frames)[:, None] * travel


def paste(frame: np.ndarray, mask: np.ndarray, colour: np.ndarray, x: float, y: float, opacity: float = 1.0):
    """Blends `colour` into `frame` (float `[64, 64, 3]`, in place) through `mask` placed at (x, y)."""
    shift = np.array([[1.0, 0.0, x], [0.0, 1.0, y]], np.float32)
    coverage = cv2.warpAffine(mask, shift, (SIZE, SIZE), flags=cv2.INTER_LINEAR)[..., None] * opacity
    frame *= 1.0 - coverage
    frame += coverage * colour


def blob_mask(rng: np.random.Generator) -> np.ndarray:
    """A soft ellipse (the distractor), 6–16 px across."""
    radii = rng.uniform(3, 8, size=2)
    size = int(np.ceil(2 * radii.max())) + 3
    ys, xs = np.mgrid[0:size, 0:size] - (size - 1) / 2
    angle = rng.uniform(0, np.pi)
    u = (xs * np.cos(angle) + ys * np.sin(angle)) / radii[0]
    v = (-xs * np.sin(angle) + ys * np.cos(angle)) / radii[1]
    return (1.0 / (1.0 + np.exp((np.sqrt(u**2 + v**2) - 1.0) * 6.0))).astype(np.float32)


def render_frames(plan: ClipPlan, fonts: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    """uint8 RGB frames `[20, 64, 64, 3]`: background, maybe the distractor blob, the glyph if shown."""
    background = textured_background(rng)
    layers = []  # (mask, colour, path, opacity), bottom first
    if rng.random() < 0.5:
        blob = blob_mask(rng)
        layers.append((blob, rng.uniform(0, 255, size=3), drift_path(*blob.shape, (0.0, 8.0), rng),
                       rng.uniform(0.6, 1.0)))
    if plan.shows_glyph:
        glyph = glyph_mask(plan.digit, sample_glyph_style(fonts, rng), rng)
        layers.append((glyph, contrasting_colour(background, rng), drift_path(*glyph.shape, _DRIFT_PX_PER_S, rng),
                       1.0))
    num_frames = int(round(DURATION_S * FPS))
    frames = np.empty((num_frames, SIZE, SIZE, 3), np.uint8)
    for t in range(num_frames):
        frame = background + rng.normal(0, 5, size=background.shape).astype(np.float32)
        for mask, colour, path, opacity in layers:
            paste(frame, mask, colour, *path[t], opacity=opacity)
        frames[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames


# === Sounds ===


def word_semitones(digit: int) -> np.ndarray:
    """The notes of `digit`'s word, in semitones above 220 Hz.

    >>> word_semitones(4).tolist()
    [0.0, 7.0, 2.0]
    """
    return np.array([PENTATONIC[degree] for degree in WORDS[digit]], np.float64)


def _transposed_distance(a: np.ndarray, b: np.ndarray, max_shift: float = 2.0) -> float:
    """The largest note gap between equal-length `a` and `b` after the best transposition (≤ `max_shift`)."""
    difference = a - b
    shift = np.clip((difference.max() + difference.min()) / 2, -max_shift, max_shift)
    return float(np.abs(difference - shift).max())


def resembles_word(semitones: np.ndarray) -> bool:
    """Whether any 2+ consecutive notes of `semitones` come near 2+ consecutive notes of some word.

    >>> resembles_word(np.array([5.0, 0.0, 9.0])), resembles_word(np.array([1.0, 20.0]))
    (True, False)
    """
    for digit in range(len(DIGITS)):
        word = word_semitones(digit)
        for length in range(2, min(len(word), len(semitones)) + 1):
            pieces = itertools.product(range(len(semitones) - length + 1), range(len(word) - length + 1))
            distances = (_transposed_distance(semitones[i : i + length], word[j : j + length]) for i, j in pieces)
            if min(distances) < _MIN_DISTRACTOR_DISTANCE:
                return True
    return False


def voice_harmonics(family: str, rng: np.random.Generator) -> np.ndarray:
    """`[12]` harmonic amplitudes (max 1, fundamental at least 0.3) of a voice of timbre `family`."""
    k = np.arange(1, _NUM_HARMONICS + 1, dtype=np.float64)
    if family == "buzzy":
        amplitudes = k ** -rng.uniform(0.7, 1.1)
    elif family == "soft":
        amplitudes = k ** -rng.uniform(1.8, 2.6)
    elif family in ("low_formant", "high_formant"):
        centre = rng.uniform(2.0, 3.5) if family == "low_formant" else rng.uniform(5.0, 7.0)
        amplitudes = 0.3 * k**-1.5 + np.exp(-0.5 * ((k - centre) / rng.uniform(0.7, 1.2)) ** 2)
    elif family == "hollow":
        amplitudes = k ** -rng.uniform(0.8, 1.4) * np.where(k % 2 == 1, 1.0, rng.uniform(0.0, 0.1))
    else:
        raise ValueError(f"unknown voice family {family!r}: expected one of {TRAIN_VOICES + TEST_VOICES}")
    amplitudes = amplitudes * rng.lognormal(0.0, 0.25, size=k.shape)
    amplitudes /= amplitudes.max()
    amplitudes[0] = max(amplitudes[0], 0.3)
    return amplitudes


def sing(semitones: np.ndarray, harmonics: np.ndarray, start_s: float, note_s: float, gap_s: float,
         rng: np.random.Generator) -> np.ndarray:
    """float32 `[32000]`: the notes (semitones above 220 Hz) sung with `harmonics`, vibrato, envelope."""
    out = np.zeros(int(DURATION_S * SAMPLE_RATE), np.float64)
    vibrato_hz, vibrato_depth = rng.uniform(4.0, 7.0), rng.uniform(0.0, 0.25)
    attack_s, release_s = rng.uniform(0.01, 0.03), rng.uniform(0.03, 0.07)
    level = rng.uniform(0.15, 0.35)
    t = np.arange(int(note_s * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = np.minimum(1.0, np.minimum(t / attack_s, (note_s - t) / release_s))
    for number, semitone in enumerate(semitones):
        f0 = _BASE_HZ * 2.0 ** ((semitone + vibrato_depth * np.sin(2 * np.pi * vibrato_hz * t)) / 12.0)
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE + rng.uniform(0, 2 * np.pi)
        note = np.zeros_like(t)
        for k, amplitude in enumerate(harmonics, start=1):
            if k * f0.max() < _MAX_PARTIAL_HZ:
                note += amplitude * np.sin(k * phase)
        begin = int((start_s + number * (note_s + gap_s)) * SAMPLE_RATE)
        out[begin : begin + len(t)] += level * envelope * note / np.abs(note).max()
    return out.astype(np.float32)


def hum_and_noise(rng: np.random.Generator) -> np.ndarray:
    """float32 `[32000]`: mains hum (50 or 60 Hz and harmonics) and white noise, random levels."""
    t = np.arange(int(DURATION_S * SAMPLE_RATE)) / SAMPLE_RATE
    mains = rng.choice([50.0, 60.0])
    hum = sum(rng.uniform(0, 1) / k * np.sin(2 * np.pi * k * mains * t + rng.uniform(0, 2 * np.pi))
              for k in range(1, 5))
    return (rng.uniform(0.0, 0.03) * hum + rng.normal(0, rng.uniform(0.005, 0.03), t.shape)).astype(np.float32)


def _distractor_notes(rng: np.random.Generator) -> np.ndarray:
    """1–3 random chromatic notes that are no word, nor a piece of one."""
    while True:
        semitones = rng.integers(0, PENTATONIC[-1] + 1, size=int(rng.integers(1, 4))).astype(np.float64)
        if not resembles_word(semitones):
            return semitones


def render_audio(plan: ClipPlan, voices: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    """float32 mono `[32000]` at 16 kHz: hum and noise, plus the digit's word (or in half of the silent
    clips a distractor), sung by a random voice of `voices`, transposed ±1 semitone, at a random tempo."""
    samples = hum_and_noise(rng)
    if plan.speaks:
        notes = word_semitones(plan.digit)
    elif rng.random() < 0.5:
        notes = _distractor_notes(rng)
    else:
        return samples
    notes = notes + rng.uniform(-1.0, 1.0)
    note_s, gap_s = rng.uniform(*_NOTE_S), rng.uniform(*_GAP_S)
    length = len(notes) * note_s + (len(notes) - 1) * gap_s
    start_s = rng.uniform(_WORD_SPAN_S[0], _WORD_SPAN_S[1] - length)
    harmonics = voice_harmonics(str(rng.choice(voices)), rng)
    return np.clip(samples + sing(notes, harmonics, start_s, note_s, gap_s, rng), -1.0, 1.0)


# === The set ===


def render_clip(plan: ClipPlan, seed: int) -> tuple:
    """(uint8 frames `[20, 64, 64, 3]`, float32 audio `[32000]`) of one clip, from `rng([seed, index])`."""
    rng = np.random.default_rng([seed, plan.index])
    held_out = plan.styles == HELD_OUT
    frames = render_frames(plan, TEST_FONTS if held_out else TRAIN_FONTS, rng)
    samples = render_audio(plan, TEST_VOICES if held_out else TRAIN_VOICES, rng)
    return frames, samples


def _write_csv(path: str, fieldnames: Sequence[str], rows: List[dict]) -> None:
    with fileio.atomic_open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fieldnames))
        writer.writeheader()
        writer.writerows(rows)


def write_appearance_set(output_dir: str, seed: int = 0, num_train: int = 840, num_val: int = 120,
                         num_test: int = 480) -> str:
    """Writes the clips under `output_dir/videos/`, `manifest.csv` and `clip_types.csv`; returns the
    manifest's path. Classes are balanced in every split when its size is a multiple of 10, and clip
    types too when it is a multiple of 50 (of 100 for the test split: 50 per half)."""
    plans = plan_clips(num_train, num_val, num_test)
    for plan in progress.track(plans, desc="appearance clips", unit="clip"):
        frames, samples = render_clip(plan, seed)
        with fileio.atomic_path(os.path.join(output_dir, plan.path)) as tmp:
            write_mp4(tmp, frames, FPS, samples, SAMPLE_RATE)
    manifest = os.path.join(output_dir, MANIFEST_FILE)
    _write_csv(manifest, ("path", "label", "split"),
               [{"path": p.path, "label": DIGITS[p.digit], "split": p.split} for p in plans])
    _write_csv(os.path.join(output_dir, CLIP_TYPES_FILE), ("path", "clip_type", "styles"),
               [{"path": p.path, "clip_type": p.clip_type, "styles": p.styles} for p in plans])
    logging.info("Wrote %d clips (%d train, %d val, %d test) and %s", len(plans), num_train, num_val, num_test,
                 manifest)
    return manifest


def read_clip_types(directory: str) -> dict:
    """`{manifest path: (clip type, styles)}` from `directory/clip_types.csv`."""
    with open(os.path.join(directory, CLIP_TYPES_FILE), newline="", encoding="utf-8") as f:
        return {row["path"]: (row["clip_type"], row["styles"]) for row in csv.DictReader(f)}


def _define_flags():
    flags.DEFINE_string("output", None, "Folder for the videos, manifest.csv and clip_types.csv.", required=True)
    flags.DEFINE_integer("seed", 0, "Random seed; the same seed gives the same files.")
    flags.DEFINE_integer("num_train", 840, "Training clips.")
    flags.DEFINE_integer("num_val", 120, "Validation clips.")
    flags.DEFINE_integer("num_test", 480,
                         "Test clips: half new instances of the training styles, half held-out styles.")


def main(_):
    values = flags.FLAGS
    write_appearance_set(values.output, values.seed, values.num_train, values.num_val, values.num_test)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
