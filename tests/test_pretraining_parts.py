"""The parts of pretraining on their own: the model's layer names (the contract `model.init_from` relies
on), the loss, the retrieval metric and the weight transfer's refusal."""

import keras
import numpy as np
import pytest
from conftest import model_input_shapes

from videofusion.config import base_config
from videofusion.evaluation import retrieval
from videofusion.models import build_model, pretraining, transfer
from videofusion.training import contrastive

SHAPES = model_input_shapes(num_frames=4, image_size=32, mel_frames=38, mel_bins=16)


def _model_config(**changes):
    cfg = base_config().model
    cfg.update({"embed_dim": 16, "video_encoder": "lstm", "fusion": "concat", **changes})
    return cfg


def test_the_pretraining_model_names_its_encoders_as_the_classifier_does():
    cfg = _model_config()
    pretrain_model = pretraining.build_pretraining_model(cfg, SHAPES, projection_dim=8, temperature=0.1)
    classifier = build_model(cfg, SHAPES, num_classes=3)
    with_weights = lambda model: {layer.name for layer in model.layers if layer.weights}  # noqa: E731
    shared = with_weights(pretrain_model) & with_weights(classifier)
    assert {"frame_cnn", "lstm", "frame_projection", "audio_conv1", "audio_projection"} <= shared
    assert with_weights(pretrain_model) - shared == {"audio_projection_head_1", "audio_projection_head_2",
                                                     "video_projection_head_1", "video_projection_head_2",
                                                     pretraining.SCALE_LAYER}
    loaded, new = transfer.load_encoders(classifier, pretrain_model)
    assert set(loaded) == shared and "fused_logits" in new
    for name in loaded:
        for mine, theirs in zip(classifier.get_layer(name).weights, pretrain_model.get_layer(name).weights):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs))


def test_transfer_refuses_a_layer_of_another_shape_and_changes_nothing():
    pretrain_model = pretraining.build_pretraining_model(_model_config(), SHAPES, projection_dim=8, temperature=0.1)
    classifier = build_model(_model_config(embed_dim=24), SHAPES, num_classes=3)
    before = [keras.ops.convert_to_numpy(w) for w in classifier.weights]
    with pytest.raises(transfer.IncompatibleEncoderError, match="has weights of shapes"):
        transfer.load_encoders(classifier, pretrain_model)
    for value, weight in zip(before, classifier.weights):
        np.testing.assert_array_equal(value, keras.ops.convert_to_numpy(weight))


def test_contrastive_loss_rewards_each_clip_picking_its_own_pair():
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(6, 8)).astype("float32")
    unit = lambda x: 5 * x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    aligned = np.stack([unit(audio), unit(audio + 0.1 * rng.normal(size=audio.shape))], axis=1)
    shuffled = np.stack([aligned[:, 0], aligned[::-1, 1]], axis=1)
    loss = contrastive.CrossModalInfoNCE()
    assert float(loss(np.arange(6), aligned)) < 0.1 < float(loss(np.arange(6), shuffled))
    three = np.stack([aligned[:, 0], aligned[:, 1], aligned[:, 0]], axis=1)  # three modalities: three pairs
    assert float(loss(np.arange(6), three)) < 0.1


def test_contrastive_loss_pairs_the_views_of_a_clip_by_its_id():
    rng = np.random.default_rng(1)
    unit = lambda x: 5 * x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    clips = unit(rng.normal(size=(4, 8)))
    # Two views per clip (rows 2i, 2i + 1), audio and video alike: views of a clip agree, clips differ.
    embeddings = np.repeat(np.stack([clips, clips], axis=1), 2, axis=0).astype("float32")
    views = np.repeat(np.arange(4), 2)
    plain, within = contrastive.CrossModalInfoNCE(), contrastive.CrossModalInfoNCE(within_modal_weight=1.0)
    # A clip's other view is a positive too; taken for another clip, it would cost log 2.
    assert float(plain(views, embeddings)) < 0.01
    np.testing.assert_allclose(float(plain(np.arange(8), embeddings)), np.log(2), rtol=1e-3)
    assert float(within(views, embeddings)) < 0.01
    # Each view's video must find its other view's video, not another clip's.
    swapped = embeddings.copy()
    swapped[1::2, 1] = swapped[1::2, 1][::-1]  # the second views' videos shuffled among the clips
    assert float(within(views, swapped)) > float(plain(views, swapped)) + 1.0
    # One view per clip: no within-modality term.
    np.testing.assert_allclose(float(within(np.arange(8), swapped)), float(plain(np.arange(8), swapped)), rtol=1e-6)


def test_recall_at_k_counts_ties_against_the_own_clip():
    queries = np.array([[1.0, 0.0], [1.0, 0.0]])
    gallery = np.array([[1.0, 0.0], [1.0, 0.0]])  # both gallery rows tie for both queries
    assert retrieval.recall_at_k(queries, gallery, k=1) == 0.0
    assert retrieval.recall_at_k(queries, gallery, k=2) == 1.0
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(50, 4))
    assert retrieval.recall_at_k(embeddings, embeddings, k=1) == 1.0
