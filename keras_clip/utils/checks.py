"""Checks on user inputs that raise clear errors before any graph runs.

They read static shapes and dtypes only, so they cost nothing at run time
and also fire while a backend traces a function; dimensions that are not
known statically (None) are skipped.
"""

import keras
import numpy as np


def check_positive_ints(**values):
    """Raises ValueError unless every value is a positive integer."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def check_transformer_shape(width, num_layers, num_heads, **more):
    """Raises ValueError unless the sizes (and `more`) are positive integers
    and `width` splits evenly into `num_heads` heads."""
    check_positive_ints(width=width, num_layers=num_layers, num_heads=num_heads, **more)
    if width % num_heads:
        raise ValueError(f"width={width} is not divisible by num_heads={num_heads}.")


def check_output_width(projected, embed_dim, width):
    """A tower without a projection outputs its `width`: `embed_dim` must be it."""
    if not projected and embed_dim != width:
        raise ValueError(
            f"Without a projection the text embedding is {width} wide (width); "
            f"embed_dim={embed_dim} cannot be reached."
        )


def _dtype(x):
    return keras.backend.standardize_dtype(getattr(x, "dtype", "float32"))


def check_images(images, image_size=None, name="images"):
    """Images must be float (batch, height, width, 3), of `image_size`."""
    shape = tuple(images.shape)
    if len(shape) != 4:
        raise ValueError(
            f"{name} must have rank 4 (batch, height, width, channels); received shape {shape}."
        )
    if shape[-1] is not None and shape[-1] != 3:
        raise ValueError(
            f"{name} must have 3 (RGB) channels in the last axis; received "
            f"shape {shape}. Convert grayscale or RGBA images to RGB first."
        )
    dtype = _dtype(images)
    if "float" not in dtype:
        raise ValueError(
            f"{name} must be floating point, normalised as the model was "
            f"trained (e.g. model.image_preprocessing.normalize(uint8_images)); "
            f"received dtype {dtype}."
        )
    if image_size is not None:
        for size in shape[1:3]:
            if size is not None and size != image_size:
                raise ValueError(
                    f"{name} must be {image_size}x{image_size} pixels; received shape {shape}."
                )


def check_patch_images(images, patch_size=None, name="images"):
    """NaFlex images must be a dict of float "patches" (batch, length,
    patch_size * patch_size * 3) and int "spatial_shapes" (batch, 2)."""
    if not isinstance(images, dict) or set(images) != {"patches", "spatial_shapes"}:
        received = sorted(images) if isinstance(images, dict) else type(images).__name__
        raise ValueError(
            f"A NaFlex image tower takes {name} as a dict with 'patches' and "
            f"'spatial_shapes' (keras_clip.data.naflex.naflex_patches makes it); "
            f"received {received}."
        )
    patches, spatial_shapes = images["patches"], images["spatial_shapes"]
    shape = tuple(patches.shape)
    expected = None if patch_size is None else patch_size * patch_size * 3
    if len(shape) != 3 or (expected is not None and shape[-1] not in (None, expected)):
        raise ValueError(
            f"{name}['patches'] must be (batch, length, {expected or 'patch_size**2 * 3'}) "
            f"flattened {patch_size}x{patch_size} RGB patches; received shape {shape}."
        )
    if "float" not in _dtype(patches):
        raise ValueError(
            f"{name}['patches'] must be floating point, normalised; received dtype "
            f"{_dtype(patches)}."
        )
    grid_shape = tuple(spatial_shapes.shape)
    if (
        len(grid_shape) != 2
        or grid_shape[-1] not in (None, 2)
        or "int" not in _dtype(spatial_shapes)
    ):
        raise ValueError(
            f"{name}['spatial_shapes'] must be integer (batch, 2) patch grids (rows, "
            f"columns); received shape {grid_shape}, dtype {_dtype(spatial_shapes)}."
        )
    check_same_batch(patches, spatial_shapes, ("patches", "spatial_shapes"))


def check_patch_grids(images, name="images"):
    """NumPy NaFlex grids (values known before any graph) must hold at
    least one patch each and at most the padded length."""
    grids = np.asarray(images["spatial_shapes"])
    length = np.shape(images["patches"])[-2]
    if (grids < 1).any() or (np.prod(grids, axis=-1) > length).any():
        raise ValueError(
            f"{name}['spatial_shapes'] must be grids of at least 1x1 patches with at most "
            f"{length} (the padded length) patches; received {grids.tolist()}."
        )


def image_batch(images):
    """The tensor whose first axis is the image batch: the images, or a
    NaFlex dict's patches."""
    return images["patches"] if isinstance(images, dict) else images


def check_token_ids(token_ids, context_length=None, name="token_ids"):
    """Token ids must be integer (batch, length) with length <= context."""
    shape = tuple(token_ids.shape)
    if len(shape) != 2:
        raise ValueError(f"{name} must have rank 2 (batch, sequence); received shape {shape}.")
    dtype = _dtype(token_ids)
    if "int" not in dtype:
        raise ValueError(
            f"{name} must be integers (use keras_clip.Tokenizer); received dtype {dtype}."
        )
    if context_length is not None and shape[1] is not None:
        if shape[1] > context_length:
            raise ValueError(
                f"{name} has {shape[1]} tokens per caption, more than the "
                f"text encoder's context_length={context_length}. Tokenize "
                f"with context_length={context_length} (it truncates and "
                "keeps the end token)."
            )


def check_same_batch(images, token_ids, names=("images", "token_ids")):
    """Images and token ids must have the same (static) batch size."""
    a, b = image_batch(images).shape[0], token_ids.shape[0]
    if a is not None and b is not None and a != b:
        if names[1] != "token_ids":
            raise ValueError(f"{names[0]} and {names[1]} have different batch sizes: {a} and {b}.")
        raise ValueError(
            f"images and token_ids have different batch sizes: {a} images "
            f"and {b} captions. Each image needs exactly one caption."
        )


def check_model_inputs(inputs, keys=("images", "token_ids")):
    """Raises ValueError unless `inputs` is a dict of some of `keys` whose
    images and token ids (when both are given) have the same batch size."""
    if not isinstance(inputs, dict) or not set(inputs) & set(keys):
        received = type(inputs).__name__
        if isinstance(inputs, dict):
            received += f" with keys {sorted(inputs)}"
        raise ValueError(
            f"CLIP takes a dict with 'images' and/or 'token_ids'; received {received}."
        )
    unknown = set(inputs) - set(keys)
    if unknown:
        raise ValueError(f"Unknown input keys {sorted(unknown)}; CLIP takes {list(keys)}.")
    if len(inputs) == 2:
        check_same_batch(inputs["images"], inputs["token_ids"])


def call_inputs(args, kwargs):
    """The `x` of a `fit`/`evaluate`/`predict` call's arguments."""
    return args[0] if args else kwargs.get("x")


def check_array_inputs(args, kwargs):
    """Raises ValueError when `fit`/`evaluate`/`predict` get a dict of arrays
    whose images and token ids differ in number (Keras' own check crashes
    on a dict while writing its message)."""
    x = call_inputs(args, kwargs)
    if isinstance(x, dict) and isinstance(x.get("images"), dict):
        if isinstance(x["images"].get("spatial_shapes"), np.ndarray):
            check_patch_grids(x["images"])
    if isinstance(x, dict) and {"images", "token_ids"} <= set(x):
        images, token_ids = x["images"], x["token_ids"]
        if hasattr(image_batch(images), "shape") and hasattr(token_ids, "shape"):
            check_same_batch(images, token_ids)


def check_no_targets(method, args, kwargs):
    """Raises ValueError when `fit`/`evaluate` get targets, sample weights or
    class weights: a contrastive model learns from the pairs alone, and
    Keras would drop sample weights without targets silently."""
    given = [
        name
        for name, value in (
            ("targets (y)", args[1] if len(args) > 1 else kwargs.get("y")),
            ("sample_weight", kwargs.get("sample_weight")),
            ("class_weight", kwargs.get("class_weight")),
        )
        if value is not None
    ]
    if given:
        raise ValueError(
            f"CLIP learns from the image-caption pairs alone; {method} takes no "
            f"{' or '.join(given)}. Pass only the inputs dict (or a dataset of "
            "inputs dicts)."
        )
