"""How fast one process decodes JPEG frames with OpenCV: the host's side of the input, measurable on a
machine that has OpenCV and no TensorFlow (`bench_accelerator --device_inputs`) as well as here
(`bench_input`); and the JPEG frames of prepared shards to measure it on (with TensorFlow, here).

>>> image = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].tobytes()
>>> opencv_decode_rate([image] * 10, repeats=1) > 0
True
"""

import time
from typing import List

import cv2
import numpy as np


def opencv_decode_rate(jpegs: List[bytes], repeats: int = 3, flag: int = cv2.IMREAD_COLOR) -> float:
    """Frames per CPU second this process decodes `jpegs` with `cv2.imdecode(…, flag)` on one thread, the
    fastest of `repeats` passes."""
    cv2.setNumThreads(1)
    arrays = [np.frombuffer(jpeg, np.uint8) for jpeg in jpegs]
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for array in arrays:
            cv2.imdecode(array, flag)
        best = min(best, time.process_time() - start)
    return len(arrays) / max(best, 1e-9)


def shard_jpegs(data_dir: str, count: int) -> List[bytes]:
    """The first `count` JPEG frames of the training shards of `data_dir`, clip after clip."""
    import tensorflow as tf  # here only: the decoding rate needs none

    from videofusion.contract import prepared_folder, record_schema

    frames: List[bytes] = []
    for record in tf.data.TFRecordDataset(prepared_folder.shard_files(data_dir, "train")):
        frames.extend(record_schema.parse_clip(record)[record_schema.IMAGES].numpy())
        if len(frames) >= count:
            break
    return frames[:count]
