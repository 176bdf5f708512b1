"""Export: a trained run → `exports/NAME/<version>/`, a SavedModel that TF Serving loads as it is.

The SavedModel holds the model with all of its preprocessing (`signatures.py`: `serving_default` on
decoded media, `serve_examples` on serialized records), the run's labels as the asset `labels.txt`,
and, in `assets.extra/videofusion.json` (a place TF Serving leaves alone), what a client needs to decode
videos the way `prepare` did: frame rate, short side, sample rate, JPEG quality, clip length. Its graph
uses TensorFlow's core ops only (`graph_ops` lists them): a caption tokenizer in core ops is built at
export time (`wordpiece.py`). The version folder is written under a temporary name and renamed when
complete; an existing version is never overwritten.

Example:

>>> export("runs/demo", "exports/demo")  # doctest: +SKIP
'exports/demo/1'
>>> sorted(graph_ops("exports/demo/1"))[:3]  # doctest: +SKIP
['Abs', 'AddV2', 'All']
"""

import os
import shutil
from typing import Optional, Set

import tensorflow as tf
from absl import logging
from tensorflow.core.protobuf import saved_model_pb2

import videofusion
from videofusion import fileio, models, run_folder
from videofusion.contract import modalities, prepared_folder
from videofusion.data import caption_tokenizer, pipeline
from videofusion.serving import signatures, wordpiece

METADATA_FILE = os.path.join("assets.extra", "videofusion.json")


def next_version(output_dir: str) -> int:
    """1 + the largest integer-named version folder in `output_dir` (1 for a new one)."""
    if not os.path.isdir(output_dir):
        return 1
    versions = [int(name) for name in os.listdir(output_dir) if name.isdigit()]
    return max(versions, default=0) + 1


def decoding(config) -> dict:
    """How `prepare` decoded the run's data: what `predict` must repeat to feed the model the same."""
    try:
        parameters = prepared_folder.read_dataset_info(config.data.dir)[prepared_folder.PARAMETERS]
    except (OSError, KeyError):
        logging.warning("%s has no dataset.json: predict will assume prepare's default JPEG quality (%d) and "
                        "clip length (%.0f s)", config.data.dir, prepared_folder.DEFAULT_JPEG_QUALITY,
                        prepared_folder.DEFAULT_MAX_CLIP_SECONDS)
        parameters = {}
    return {
        "fps": config.data.fps,
        "short_side": config.data.short_side,
        "sample_rate": config.data.sample_rate,
        "jpeg_quality": parameters.get("jpeg_quality", prepared_folder.DEFAULT_JPEG_QUALITY),
        "max_clip_seconds": parameters.get("max_clip_seconds", prepared_folder.DEFAULT_MAX_CLIP_SECONDS),
    }


def serving_module(workdir: str, config, model) -> signatures.ServingModule:
    """The run in `workdir` (its `config` and `model`, `models.load_run`) wrapped as the SavedModel's
    module, with top-k outputs for its `eval.top_k`."""
    tokenizer = None
    if modalities.TEXT in modalities.parse(config.model.modalities):
        tokenizer = wordpiece.CoreWordPiece(caption_tokenizer.load_vocabulary(workdir), config.data.text_length)
    options = pipeline.PipelineOptions.from_config(config, model=model)
    return signatures.ServingModule(model, options, run_folder.RunPaths(workdir).labels, config.eval.top_k,
                                    tokenizer)


def export(workdir: str, output_dir: str, version: Optional[int] = None) -> str:
    """Exports the run in `workdir` as `output_dir/<version>` (default: the next one); returns that path.

    Raises `FileExistsError` if that version exists.
    """
    config, labels, model = models.load_run(workdir)
    target = os.path.join(output_dir, str(version or next_version(output_dir)))
    if os.path.exists(target):
        raise FileExistsError(f"{target} exists: choose another --version, or leave it out for the next one")
    module = serving_module(workdir, config, model)
    staging = fileio.temp_name(target)
    try:
        tf.saved_model.save(module, staging, signatures=module.signatures())
        metadata = {"videofusion_version": videofusion.__version__, "labels": labels,
                    "num_frames": config.data.num_frames, "stride": config.data.stride,
                    "modalities": config.model.modalities,
                    **decoding(config)}
        fileio.write_json(os.path.join(staging, METADATA_FILE), metadata)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logging.info("Exported %s to %s (%d ops in its graph)", workdir, target, len(graph_ops(target)))
    return target


def graph_ops(export_dir: str) -> Set[str]:
    """The op types of a SavedModel's graph and of every function in its library."""
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    ops = set()
    for meta_graph in proto.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops
