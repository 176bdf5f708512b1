"""The ring buffer of a live stream (videofusion/serving/live_buffer.py)."""

import threading

import numpy as np

from videofusion.serving.live_buffer import LiveBuffer


def fill(buffer, count, size=(4, 6)):
    for i in range(count):
        buffer.add_frame(np.full((*size, 3), i, np.uint8), arrival=float(i))


def test_a_window_waits_for_its_sound_then_goes_without_it_past_the_grace():
    buffer = LiveBuffer(fps=10, sample_rate=10, window_frames=4, ahead_frames=20, audio_grace_s=1.0)
    fill(buffer, 8)
    buffer.add_audio(np.full(5, 0.5, np.float32))
    assert buffer.ready_end() == 5  # the sound covers 5 frames
    fill(buffer, 12)  # 20 frames: the frames run 1 s (10 frames) ahead of the sound from frame 10 on
    assert buffer.ready_end() == 10
    window = buffer.window(8)
    assert window.waveform.tolist() == [0.5] + [0.0] * 3 and window.frames[:, 0, 0, 0].tolist() == [4, 5, 6, 7]


def test_old_frames_are_dropped_or_with_block_the_decoder_waits_for_the_reader():
    dropping = LiveBuffer(fps=10, sample_rate=10, window_frames=2, ahead_frames=2)
    fill(dropping, 10)
    assert dropping.window(10).frames[:, 0, 0, 0].tolist() == [8, 9]
    blocking = LiveBuffer(fps=10, sample_rate=10, window_frames=2, ahead_frames=3, block=True)
    blocking.has_audio = False
    decoder = threading.Thread(target=fill, args=(blocking, 6), daemon=True)
    decoder.start()
    assert blocking.wait(3, timeout=5) == 3 and blocking.frames_count == 3  # blocked 3 frames ahead
    blocking.window(2)
    decoder.join(0.5)
    assert blocking.frames_count == 5 and decoder.is_alive()
    blocking.end()
    decoder.join(5)
    assert not decoder.is_alive()


def test_frames_of_a_new_resolution_are_centre_cropped_to_a_common_size():
    buffer = LiveBuffer(fps=10, sample_rate=10, window_frames=3, ahead_frames=1)
    buffer.has_audio = False
    fill(buffer, 2, size=(4, 6))
    fill(buffer, 1, size=(4, 8))
    assert buffer.window(3).frames.shape == (3, 4, 6, 3)
