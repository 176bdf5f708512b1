"""Embedders: a model → one vector per record in each of its embedding spaces, for `embed` and `search`.

What a model path gives (`load_embedder`):

- an export (`exports/NAME/VERSION`, a SavedModel): the space `fused`, the vector its classifier reads
  (`serve_examples`' `embedding` output);
- a supervised run folder (`videofusion train`): `fused` too, computed by the module the export of that
  run would hold (`export.serving_module`, in memory), so a run and its export give the same vectors;
- a pretrained run folder (`videofusion pretrain`): one space per modality (`audio`, `video`, `text`), the
  unit vectors of its projection heads (`pretraining.modality_spaces`), in which one clip's modalities
  agree: an audio vector is compared with video vectors by their cosine.

A record's vector in each space is the mean over its evaluation views (`eval.num_clips × eval.num_crops`,
`transforms.eval_views`), as `evaluate` averages its softmax. Videos become records as `prepare` makes
them (`predict.video_records`, with the decoding parameters the model's training data was prepared with).

Example:

>>> embedder = load_embedder("exports/demo/1")  # doctest: +SKIP
>>> vectors = embedder.embed_records(embedder.records("clip.mp4"))  # doctest: +SKIP
>>> embedder.spaces, vectors["fused"].shape  # doctest: +SKIP
({'fused': 64}, (1, 64))
"""

import dataclasses
import functools
import hashlib
import os
from typing import Callable, Dict, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

import videofusion
from videofusion import config as config_lib
from videofusion import fileio, run_folder
from videofusion.contract import modalities, record_schema
from videofusion.data import caption_tokenizer, pipeline
from videofusion.ingest import clip_encoder
from videofusion.models import pretraining
from videofusion.serving import export, predict, signatures

FUSED = "fused"  # the space of a classifier's fused vector
EXPORT, RUN, PRETRAINED_RUN = "export", "run", "pretrained_run"  # `ModelInfo.kind`
_RECORD_BATCH = 32  # records per call of the model


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """Which model made a collection's vectors: what `embeddings.json` records, and `search` reloads."""

    path: str
    kind: str  # EXPORT, RUN or PRETRAINED_RUN
    version: str  # the export's version folder, or the run's model.keras fingerprint
    modalities: List[str]
    labels: List[str]  # the classes of a classifier ([] for a pretrained run)
    videofusion_version: str = videofusion.__version__


class Embedder:
    """Serialized records → `{space: [records, dim]}` float32; `records` turns a video file into them."""

    def __init__(self, info: ModelInfo, params: clip_encoder.EncodeParams,
                 embed_batch: Callable[[List[bytes]], Dict[str, np.ndarray]]):
        self.info = info
        self.params = params  # how the model's training data was decoded
        self._embed_batch = embed_batch
        self.spaces = {name: int(vector.shape[-1]) for name, vector in self.embed_records([blank_record()]).items()}

    def embed_records(self, records: Sequence[bytes]) -> Dict[str, np.ndarray]:
        """Each record's vector in every space (the mean over its views), in batches of the model."""
        parts = [self._embed_batch(list(records[i:i + _RECORD_BATCH]))
                 for i in range(0, len(records), _RECORD_BATCH)]
        return {name: np.concatenate([np.asarray(part[name], np.float32) for part in parts]) for name in parts[0]}

    def records(self, path: str, caption: str = "", start: Optional[float] = None,
                end: Optional[float] = None) -> List[bytes]:
        """`path` as the records `prepare` writes; raises `media.MediaError` for a file that can't be used."""
        return predict.video_records(path, self.params, caption, start, end)

    @property
    def reads_text(self) -> bool:
        return modalities.TEXT in self.info.modalities


def blank_record(caption: str = "", sample_rate: int = 16000) -> bytes:
    """A one-frame black, silent clip holding `caption`: a caption's query for a space that reads only text."""
    return record_schema.encode_clip(record_schema.Clip(
        label_index=record_schema.UNLABELED_INDEX, label_text="", filename="", start_us=0, end_us=100_000,
        frame_rate=10.0, jpeg_frames=[_black_jpeg()], waveform=np.zeros(sample_rate // 10, np.float32),
        sample_rate=sample_rate, has_audio=False, caption=caption or None,
    ))


def silenced(record: bytes) -> bytes:
    """`record` with its waveform zeroed (its frames only): the model then sees no sound, as with
    `evaluate --silence-audio` (`transforms.audio_present` of a silent window is 0)."""
    example = tf.train.SequenceExample.FromString(record)
    for feature in example.feature_lists.feature_list[record_schema.WAVEFORM].feature:
        feature.float_list.value[:] = np.zeros(len(feature.float_list.value), np.float32)
    return example.SerializeToString()


@functools.lru_cache(maxsize=1)
def _black_jpeg() -> bytes:
    return clip_encoder.encode_jpeg(np.zeros((16, 16, 3), np.uint8))


def file_fingerprint(path: str) -> str:
    """The first 16 hex digits of the SHA-256 of a file (read in 1 MiB blocks): a model file's version."""
    digest = hashlib.sha256()
    with fileio.open_file(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _export_embedder(model_dir: str) -> Embedder:
    predictor = predict.Predictor(model_dir)
    info = ModelInfo(path=fileio.absolute(model_dir), kind=EXPORT,
                     version=os.path.basename(os.path.normpath(model_dir)),
                     modalities=modalities.parse(predictor.metadata["modalities"]), labels=predictor.labels)
    return Embedder(info, predictor.params, lambda records: {FUSED: predictor.outputs(records)[signatures.EMBEDDING]})


def _run_embedder(workdir: str) -> Embedder:
    paths = run_folder.RunPaths(workdir)
    config = config_lib.load_run_config(workdir)
    model = keras.models.load_model(paths.model, compile=False)
    chosen = modalities.parse(config.model.modalities)
    params = predict.encode_params(export.decoding(config))
    version = f"model.keras@{file_fingerprint(paths.model)}"
    if not pretraining.is_pretraining_model(model):
        module = export.serving_module(workdir, config, model)
        info = ModelInfo(fileio.absolute(workdir), RUN, version, chosen, run_folder.load_labels(workdir))
        return Embedder(info, params, lambda records: {
            FUSED: module.serve_examples(tf.constant(records))[signatures.EMBEDDING].numpy()})
    spaces = pretraining.modality_spaces(model)
    options = pipeline.PipelineOptions.from_config(config, caption_tokenizer.tokenizer_for_run(config, workdir), model)
    signature = signatures.view_signature(options, config.data.text_length if options.tokenizer else 0)
    views = options.num_clips * options.num_crops

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def embed_batch(examples):
        features = signatures.example_views(examples, options, signature)
        outputs = spaces(signatures.flatten_views(features, spaces.input), training=False)
        return {name: signatures.mean_over_views(vector, views) for name, vector in outputs.items()}

    return Embedder(ModelInfo(fileio.absolute(workdir), PRETRAINED_RUN, version, chosen, []), params,
                    lambda records: {name: v.numpy() for name, v in embed_batch(tf.constant(records)).items()})


def load_embedder(model_path: str) -> Embedder:
    """The embedder of an export folder (`assets.extra/videofusion.json` inside) or a run folder
    (`model.keras` inside, from `train` or `pretrain`); raises `FileNotFoundError` for anything else."""
    if fileio.isfile(os.path.join(model_path, export.METADATA_FILE)):
        return _export_embedder(model_path)
    if fileio.isfile(run_folder.RunPaths(model_path).model):
        return _run_embedder(model_path)
    raise FileNotFoundError(
        f"{model_path}: neither an export (no {export.METADATA_FILE}) nor a finished run (no model.keras): give "
        "exports/NAME/VERSION or the --workdir of `videofusion train` or `videofusion pretrain`"
    )
