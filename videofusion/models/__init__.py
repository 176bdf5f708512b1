"""Models: a `config.model` section → Keras functional models (encoders, fusion, heads), and runs loaded back.

In: a config and input shapes (`contract.tensors` names the inputs). Out: `keras.Model`s. Imports
`keras` only, never TensorFlow, so that the same models run under the JAX backend.

- `builder`: `build_model` (per-modality encoders → fusion → heads), `video/`, `fusion/`,
  `audio_encoder`, `text_encoder`, `frame_backbones`, `frame_preprocessing`, `audio_preprocessing`,
  `layers`;
- `optimization`: the optimizer, learning-rate schedule and loss of `config.train`; `finetune`:
  backbone phases;
- `saving`: `load_run`, a finished run's config, labels and model;
- `pretraining`: the encoders with projection heads for `videofusion pretrain`; `transfer`: a
  classifier starts from them (`model.init_from`).
"""

from videofusion.models.audio_preprocessing import SpecAugment
from videofusion.models.builder import InputShapes, build_classifier, build_model
from videofusion.models.finetune import ScaledAdam
from videofusion.models.frame_preprocessing import FrameAugment
from videofusion.models.optimization import SmoothedCrossentropy
from videofusion.models.pretraining import build_pretraining_model
from videofusion.models.saving import load_run

__all__ = ["FrameAugment", "InputShapes", "ScaledAdam", "SmoothedCrossentropy", "SpecAugment", "build_classifier",
           "build_model", "build_pretraining_model", "load_run"]
