"""videofusion: audio-visual (and text) video classification with Keras and TensorFlow."""

import pathlib
import re

import setuptools

_VERSION = re.search(
    r'__version__ = "([^"]+)"',
    (pathlib.Path(__file__).parent / "videofusion" / "__init__.py").read_text(),
).group(1)

setuptools.setup(
    name="videofusion",
    version=_VERSION,
    description="Videos in, a trained audio-visual fusion model and a SavedModel out.",
    long_description=(pathlib.Path(__file__).parent / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.12",
    packages=setuptools.find_packages(include=["videofusion", "videofusion.*"]),
    install_requires=[
        "tensorflow==2.21.0",
        "tensorboard==2.21.0",
        "keras==3.15.1",
        "keras-hub==0.32.0",
        "tensorflow-text==2.21.1",  # predict loads SavedModels of text models (their tokenizer ops)
        "av==18.1.0",
        "google-crc32c==1.9.0",
        "opencv-python-headless==5.0.0.93",
        "absl-py==2.5.1",
        "ml-collections==1.1.0",
        "numpy==2.4.6",
        "tqdm==4.70.1",
    ],
    extras_require={
        "dev": ["pytest==9.2.0", "pytest-xdist==3.8.0", "jax[cpu]==0.10.2", "tensorflow-serving-api==2.21.0"],
        "bench": ["imageio-ffmpeg==0.8.1"],  # a static ffmpeg, the reference of benchmarks/bench_prepare.py
        # The JAX backend (KERAS_BACKEND=jax); on GPUs install JAX's CUDA wheels of the same version instead.
        "jax": ["jax==0.10.2"],
        # `videofusion prepare|predict --runner beam` and `embed_beam` (DirectRunner; Dataflow, Flink, Spark);
        # tensorflow-hub: Beam's TensorFlow model handler imports it. Pins of them and their deps:
        # requirements-beam.txt.
        "beam": ["apache-beam==2.77.0", "tensorflow-hub==0.16.1"],
        # `videofusion search` beyond serving.vector_index.EXACT_MAX_ROWS embeddings (FAISS IVF; its
        # dependencies, numpy and packaging, are pinned already): requirements-search.txt.
        "faiss": ["faiss-cpu==1.15.1"],
        # `videofusion export --format litert` and `predict` on its .tflite models through the LiteRT interpreter
        # (no TensorFlow on a device); its other dependencies (numpy, protobuf, flatbuffers, ml_dtypes) are
        # pinned already: requirements-litert.txt.
        "litert": ["ai-edge-litert==2.3.0"],
    },
    entry_points={"console_scripts": ["videofusion=videofusion.cli:main"]},
)
