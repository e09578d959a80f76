"""Third-party towers: keras-hub CLIP encoders and keras.applications."""

import keras
import numpy as np
import pytest

import keras_clip
from tests.helpers import tiny_batch
from tests.helpers import to_numpy


def test_keras_hub_encoders_as_towers(tmp_path):
    import keras_hub

    image_encoder = keras_hub.models.CLIPVisionEncoder(
        patch_size=8,
        hidden_dim=16,
        num_layers=1,
        num_heads=2,
        intermediate_dim=32,
        image_shape=(32, 32, 3),
    )
    text_encoder = keras_hub.models.CLIPTextEncoder(
        vocabulary_size=100,
        embedding_dim=16,
        hidden_dim=16,
        num_layers=1,
        num_heads=2,
        intermediate_dim=32,
        max_sequence_length=16,
    )
    model = keras_clip.CLIP(image_encoder, text_encoder, embed_dim=8)
    batch = tiny_batch()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(batch, batch_size=8, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    # The text sequence is pooled at the end token (the largest id).
    embeddings = to_numpy(model.encode_text(batch["token_ids"]))
    changed = batch["token_ids"].copy()
    changed[changed == 0] = 5  # only positions after the end token change
    np.testing.assert_allclose(
        to_numpy(model.encode_text(changed)), embeddings, rtol=1e-5, atol=1e-6
    )
    path = str(tmp_path / "hub.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(
        loaded.predict(batch, verbose=0)["image_embeddings"],
        model.predict(batch, verbose=0)["image_embeddings"],
    )


@pytest.mark.backend("tensorflow", "torch")
def test_keras_applications_backbone_as_image_tower():
    """A keras.applications feature map as the image tower. (Not on JAX: the
    tower contract is backend-independent and covered there by the keras-hub
    test; compiling MobileNetV3 took half a minute of the JAX run.)"""
    backbone = keras.applications.MobileNetV3Small(
        input_shape=(32, 32, 3), include_top=False, weights=None, include_preprocessing=False
    )  # a feature map: mean-pooled
    text_encoder = keras_clip.encoders.TextTransformer(100, 16, 16, 1, 2)
    model = keras_clip.CLIP(backbone, text_encoder, embed_dim=8)
    batch = tiny_batch()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(batch, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert model.predict(batch, verbose=0)["image_embeddings"].shape == (8, 8)
