"""Loss layers: values, weights, clamps and config round trips."""

import math

import keras
import numpy as np
import pytest

from keras_clip import layers
from keras_clip import objectives
from keras_clip.objectives import functional as losses
from tests.helpers import gradients
from tests.helpers import to_numpy

RNG = np.random.default_rng(0)
IMAGE = RNG.normal(size=(6, 8)).astype("float32")
TEXT = RNG.normal(size=(6, 8)).astype("float32")


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def np_softplus(x):
    return np.logaddexp(0.0, x)


def test_infonce_layer_uses_clamped_learnable_scale():
    layer = objectives.InfoNCELoss(temperature=0.07)
    layer.build((None, 8))
    assert to_numpy(layer.logit_scale) == pytest.approx(1 / 0.07, rel=1e-6)
    expected = losses.clip_loss(IMAGE, TEXT, 1 / 0.07)
    np.testing.assert_allclose(to_numpy(layer(IMAGE, TEXT)), to_numpy(expected), rtol=1e-6)
    layer.log_logit_scale.assign(10.0)  # exp(10) > 100: the forward clamps
    assert to_numpy(layer.logit_scale) == pytest.approx(100.0, rel=1e-6)
    assert layer.log_logit_scale.constraint is not None
    frozen = objectives.InfoNCELoss(learnable_temperature=False)
    frozen.build((None, 8))
    assert not frozen.trainable_weights


def test_jsd_layer_uses_next_caption_as_negative():
    layer = objectives.JSDLoss()
    layer.build((None, 8))
    scale = 1 / 0.07
    image, text = unit(IMAGE.astype("float64")), unit(TEXT.astype("float64"))
    positive = scale * np.sum(image * text, axis=1)
    negative = scale * np.sum(image * np.roll(text, -1, axis=0), axis=1)
    expected = np.mean(np_softplus(-positive)) + np.mean(np_softplus(negative))
    loss, scores = layer.compute(IMAGE, TEXT)
    np.testing.assert_allclose(to_numpy(loss), expected, rtol=1e-5)
    logits = scale * image @ text.T
    np.testing.assert_allclose(to_numpy(scores.image_to_text), logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(to_numpy(scores.text_to_image), logits.T, rtol=1e-5, atol=1e-5)
    assert scores.offset == 0
    symmetric = objectives.JSDLoss(symmetric=True)
    symmetric.build((None, 8))
    text_negative = scale * np.sum(np.roll(image, -1, axis=0) * text, axis=1)
    other = np.mean(np_softplus(-positive)) + np.mean(np_softplus(text_negative))
    np.testing.assert_allclose(to_numpy(symmetric(IMAGE, TEXT)), (expected + other) / 2, rtol=1e-5)


def test_jsd_projection_critic_and_prior_train():
    layer = objectives.JSDLoss(critic="projection", projection_dim=4, prior_weight=0.5)
    layer.build((None, 8))
    names = {w.path.split("/")[-1] for w in layer.trainable_weights}
    assert {"hidden_kernel", "log_logit_scale", "kernel"} <= names
    loss, scores = layer.compute(IMAGE, TEXT, training=True)
    assert np.isfinite(to_numpy(loss)) and to_numpy(scores.image_to_text).shape == (6, 6)


def test_prior_discriminator_gradients_split_between_players():
    """One loss, two players: z gets only the encoder's gradient (that of
    softplus(-D(z))), D's weights get none from the encoder's term and do
    get the discriminator's."""
    prior = objectives.PriorDiscriminator(hidden_dim=4, seed=1)
    prior.build((None, 8))
    weights = prior.trainable_variables
    assert len(weights) == 4

    def with_weights(term):
        def fn(z, *values):
            with keras.StatelessScope(state_mapping=list(zip(weights, values))):
                return term(z)

        return fn

    def encoder_reference(z):  # the encoder's loss, D not frozen
        return keras.ops.mean(keras.ops.softplus(-prior.discriminate(z)))

    def encoder_term(z):
        return keras.ops.mean(keras.ops.softplus(-prior.discriminate(z, frozen=True)))

    z = unit(IMAGE)
    values = [to_numpy(w) for w in weights]
    full = gradients(with_weights(prior), z, *values)
    reference = gradients(with_weights(encoder_reference), z, *values)
    frozen = gradients(with_weights(encoder_term), z, *values)
    np.testing.assert_allclose(full[0], reference[0], rtol=1e-5, atol=1e-7)
    assert np.abs(full[0]).sum() > 1e-4
    for grad in frozen[1:]:
        np.testing.assert_array_equal(grad, np.zeros_like(grad))
    assert all(np.abs(grad).sum() > 1e-6 for grad in full[1:])
    # The discriminator's gradient is not the encoder's with the sign flipped.
    assert not np.allclose(full[1], reference[1])


def test_siglip_layer_matches_functional():
    layer = objectives.SigLIPLoss()
    layer.build((None, 8))
    expected = losses.siglip_loss(IMAGE, TEXT, 10.0, -10.0)
    np.testing.assert_allclose(to_numpy(layer(IMAGE, TEXT)), to_numpy(expected), rtol=1e-5)


def test_objective_names_and_errors():
    assert isinstance(objectives.get("InfoNCE"), objectives.InfoNCELoss)
    assert isinstance(objectives.get("jsd"), objectives.JSDLoss)
    assert isinstance(objectives.get("siglip"), objectives.SigLIPLoss)
    with pytest.raises(ValueError, match="Unknown objective 'triplet'"):
        objectives.get("triplet")
    both_ways = objectives.get("jsd", symmetric=True, prior_weight=0.5)
    assert both_ways.symmetric and both_ways.prior_weight == 0.5
    with pytest.raises(ValueError, match=r"options \['symmetric'\] go with an objective name"):
        objectives.get(objectives.JSDLoss(), symmetric=True)
    with pytest.raises(ValueError, match="Unknown critic"):
        objectives.JSDLoss(critic="bilinear")
    with pytest.raises(ValueError, match="temperature must be positive"):
        objectives.InfoNCELoss(temperature=0.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        objectives.InfoNCELoss(label_smoothing=1.0)


def test_objectives_run_in_float32_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")
    for layer in (objectives.InfoNCELoss(), objectives.JSDLoss(), objectives.SigLIPLoss()):
        layer.build((None, 8))
        assert layer.dtype_policy.name == "float32"
        value = layer(keras.ops.cast(IMAGE, "bfloat16"), keras.ops.cast(TEXT, "bfloat16"))
        assert keras.backend.standardize_dtype(value.dtype) == "float32"


def _round_trip(layer, *inputs):
    """Same outputs from a layer rebuilt from its config with its weights."""
    first = to_numpy(layer(*inputs))
    clone = layer.__class__.from_config(layer.get_config())
    clone(*inputs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(to_numpy(clone(*inputs)), first)
    serialized = keras.saving.serialize_keras_object(layer)
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is type(layer)
    assert revived.get_config() == layer.get_config()


@pytest.mark.parametrize(
    "make",
    [
        lambda: objectives.InfoNCELoss(temperature=0.05, label_smoothing=0.1),
        lambda: objectives.JSDLoss(critic="projection", projection_dim=4, symmetric=True),
        lambda: objectives.SigLIPLoss(init_logit_scale=5.0, init_logit_bias=-3.0),
    ],
)
def test_objective_config_round_trip(make):
    _round_trip(make(), IMAGE, TEXT)


SEQUENCE = RNG.normal(size=(2, 5, 8)).astype("float32")


@pytest.mark.parametrize(
    "make, inputs",
    [
        (lambda: layers.MultiHeadSelfAttention(2, use_causal_mask=True), (SEQUENCE,)),
        (lambda: layers.TransformerBlock(2, mlp_ratio=2.0, activation="gelu"), (SEQUENCE,)),
        (lambda: layers.PostNormTransformerBlock(2, intermediate_size=12), (SEQUENCE,)),
        (
            lambda: layers.T5EncoderBlock(2, head_dim=3, intermediate_size=12),
            (SEQUENCE, RNG.normal(size=(1, 2, 5, 5)).astype("float32")),
        ),
        (
            lambda: layers.RelativePositionMLP(2, num_heads=2, hidden_dim=4, num_prefix_tokens=1),
            (RNG.normal(size=(1, 2, 5, 5)).astype("float32"),),
        ),
        (
            lambda: layers.AttentionPool2D(2, num_heads=2, output_dim=6),
            (RNG.normal(size=(2, 2, 2, 8)).astype("float32"),),
        ),
        (lambda: layers.ProjectionBlock(6), (IMAGE,)),
        (lambda: objectives.PriorDiscriminator(hidden_dim=4, seed=3), (unit(IMAGE),)),
    ],
)
def test_building_block_config_round_trip(make, inputs):
    layer = make()
    if isinstance(layer, objectives.PriorDiscriminator):
        layer.build(inputs[0].shape)
        assert layer.get_config()["seed"] == 3
        revived = objectives.PriorDiscriminator.from_config(layer.get_config())
        assert revived.hidden_dim == 4
        return
    _round_trip(layer, *inputs)


def test_causal_attention_ignores_future_tokens():
    layer = layers.MultiHeadSelfAttention(2, use_causal_mask=True)
    changed = SEQUENCE.copy()
    changed[:, 3:] += 5.0
    a, b = to_numpy(layer(SEQUENCE)), to_numpy(layer(changed))
    np.testing.assert_allclose(a[:, :3], b[:, :3], rtol=1e-5, atol=1e-6)
    assert not np.allclose(a[:, 3:], b[:, 3:])


def test_max_value_constraint():
    constraint = objectives.MaxValue(math.log(100.0))
    assert to_numpy(constraint(keras.ops.convert_to_tensor(9.0))) == pytest.approx(math.log(100.0))
    assert objectives.MaxValue.from_config(constraint.get_config()).max_value == (
        constraint.max_value
    )
