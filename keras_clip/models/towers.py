"""How CLIP calls any Keras model as a tower, and pools what it returns.

A tower is any Keras model mapping images (or token ids) to features. It
may take a plain tensor, or a dict (as keras-hub's `CLIPVisionEncoder`
takes `{"images": ...}` and `CLIPTextEncoder` takes `{"token_ids": ...}`).
Its output is pooled to (batch, features) by these rules:

- rank 2 (batch, features): used as it is;
- image towers, rank 3 (batch, tokens, width): "first" token (the class
  token, the default) or "mean" over tokens;
- image towers, rank 4 (batch, height, width, channels): mean over space;
- text towers, rank 3: "end_token" (default: the first end-of-text token,
  see `keras_clip.layers.pooling.end_token_positions`), "first" or "mean".
"""

import keras
from keras import ops

from keras_clip.layers.pooling import end_token_positions
from keras_clip.layers.pooling import gather_positions

IMAGE_POOLING = ("auto", "first", "mean")
TEXT_POOLING = ("auto", "end_token", "first", "mean")


def check_pooling(image_pooling, text_pooling):
    if image_pooling not in IMAGE_POOLING:
        raise ValueError(
            f"Unknown image_pooling {image_pooling!r}; expected one of {IMAGE_POOLING}."
        )
    if text_pooling not in TEXT_POOLING:
        raise ValueError(f"Unknown text_pooling {text_pooling!r}; expected one of {TEXT_POOLING}.")


def declared_inputs(encoder):
    """The inputs a tower declares: a functional model's (keras-hub,
    keras.applications), or those of a layer's first symbolic call; None for
    a tower never called on symbolic inputs (Keras raises there)."""
    try:
        return encoder.input
    except (AttributeError, ValueError):
        return None


def call_tower(encoder, inputs, key, training=None):
    """Calls `encoder` on `inputs`, wrapped as `{key: inputs}` if it takes a dict."""
    if isinstance(declared_inputs(encoder), dict):
        inputs = {key: inputs}
    outputs = encoder(inputs, training=training)
    if isinstance(outputs, dict):
        for name in ("pooled_output", "sequence_output"):
            if name in outputs:
                return outputs[name]
        raise ValueError(
            f"The tower {encoder.name!r} returned a dict with keys "
            f"{sorted(outputs)}; expected a tensor or 'sequence_output'."
        )
    return outputs


def tower_input_shape(encoder, key):
    """The input shape a tower declares, or None when it declares none.

    Functional models (keras-hub, keras.applications) declare it, but may
    leave the sequence length open: then `context_length` or
    `max_sequence_length` fills it. The package's own encoders expose
    `image_size` or `context_length`. Any unknown non-batch dimension gives
    None (the model then builds at its first call).
    """
    shape = None
    inputs = declared_inputs(encoder)
    if inputs is not None:
        if isinstance(inputs, dict):
            inputs = inputs.get(key, next(iter(inputs.values())))
        shape = tuple(inputs.shape)
    elif key == "images" and hasattr(encoder, "input_shapes"):  # NaFlex: no image size
        return encoder.input_shapes()
    elif key == "images" and getattr(encoder, "image_size", None):
        shape = (None, encoder.image_size, encoder.image_size, 3)
    if key == "token_ids" and (shape is None or shape[1:] == (None,)):
        length = getattr(encoder, "context_length", None) or getattr(
            encoder, "max_sequence_length", None
        )
        shape = (None, length) if length else None
    if shape is None or None in shape[1:]:
        return None
    return shape


def known_input_shape(image_encoder, text_encoder):
    """CLIP's input shape dict when both towers declare theirs, else None."""
    input_shape = {
        "images": tower_input_shape(image_encoder, "images"),
        "token_ids": tower_input_shape(text_encoder, "token_ids"),
    }
    return None if None in input_shape.values() else input_shape


def symbolic_inputs(input_shape):
    """KerasTensors of a CLIP input shape dict: float32 images (or a NaFlex
    dict of float32 "patches" and int32 "spatial_shapes"), int32 token ids."""
    dtypes = {"images": "float32", "patches": "float32"}

    def symbolic(key, shape):
        if isinstance(shape, dict):
            return {name: symbolic(name, part) for name, part in shape.items()}
        return keras.KerasTensor(tuple(shape), dtype=dtypes.get(key, "int32"))

    known = ("images", "token_ids")
    return {key: symbolic(key, shape) for key, shape in input_shape.items() if key in known}


def _rank_error(what, shape):
    return ValueError(
        f"The {what} tower returned features of shape {shape}; expected "
        "(batch, features), (batch, tokens, width)"
        + (" or (batch, height, width, channels)." if what == "image" else ".")
    )


def pool_image_features(features, rule="auto"):
    """Pools an image tower's output to (batch, features)."""
    rank = len(features.shape)
    if rank == 2:
        return features
    if rank == 3:
        return ops.mean(features, axis=1) if rule == "mean" else features[:, 0]
    if rank == 4:
        return ops.mean(features, axis=(1, 2))
    raise _rank_error("image", tuple(features.shape))


def pool_text_features(features, token_ids, rule="auto", end_token_id=None):
    """Pools a text tower's output to (batch, features)."""
    rank = len(features.shape)
    if rank == 2:
        return features
    if rank != 3:
        raise _rank_error("text", tuple(features.shape))
    if rule == "first":
        return features[:, 0]
    if rule == "mean":
        return ops.mean(features, axis=1)
    return gather_positions(features, end_token_positions(token_ids, end_token_id))


def image_size_of(image_encoder):
    """The side, in pixels, of the images `image_encoder` takes (raises
    ValueError when it declares none)."""
    shape = tower_input_shape(image_encoder, "images")
    if isinstance(shape, dict):
        raise ValueError(
            "A NaFlex image tower has no fixed image size: images keep their aspect "
            "ratio within a patch budget (image_preprocessing.max_num_patches)."
        )
    if shape is None:
        raise ValueError("Cannot tell the image encoder's input size; pass image_size=.")
    return int(shape[1])
