"""TF SavedModel export with tokenisation and image decoding in the graph.

The SavedModel serves without keras-clip: a process that imports only
`tensorflow` and `tensorflow_text` (for the tokenizer's ops) can load it.

Signatures (all embeddings float32, L2-normalised):

- `encode_text`: texts tf.string [None] -> {"embeddings": [None, D]}.
  Tokenised in the graph; long texts are truncated keeping the end token;
  an empty string encodes as [START, END]; bytes that are not valid UTF-8
  are tokenised without error (tensorflow-text's FastBertTokenizer).
- `encode_image`: images uint8 [None, S, S, 3] (RGB, already S x S) ->
  {"embeddings"}. Normalised in the graph with the model's mean and std;
  any other size or channel count is an InvalidArgumentError saying so.
- `encode_image_bytes`: image_bytes tf.string [None] (JPEG, PNG, GIF, BMP,
  WebP) -> {"embeddings"}. Decoded to RGB (JPEGs turned upright by their EXIF
  orientation), fitted to S x S as the model says (by default bicubic, short
  side to S, centre-cropped; SigLIP squashes; `images.fit_to_square`),
  normalised. Corrupt bytes are an
  InvalidArgumentError naming the decode failure.
- `serving_default`: image_bytes tf.string [None] and texts tf.string [None]
  -> {"image_embeddings", "text_embeddings", "logits"}, logits =
  logit_scale * image_embeddings @ text_embeddings.T (+ logit_bias for a
  SigLIP model; zero-shot in one call).
- `encode_token_ids`: token_ids int32 [None, L] -> {"embeddings"}.
- `encode_normalized_images`: float32 [None, S, S, 3], already normalised
  -> {"embeddings"}. For clients that preprocess themselves; S is not
  checked here (SavedModel signatures check dtypes only): use
  `encode_image` for a checked entry point.
- `image_preprocessing`: no inputs -> {"config": tf.string scalar}, the
  model's `ImagePreprocessing` as JSON (`read_image_preprocessing`), for
  clients that prepare images themselves.

A SigLIP 2 NaFlex model takes images of any size and aspect ratio: in
`encode_image` (uint8 [None, H, W, 3], one size per call) and
`encode_image_bytes` each image becomes its patch sequence in the graph
(`keras_clip.data.naflex`, at the model's `max_num_patches`), and
`encode_normalized_images` takes `patches` float32 [None, max_num_patches,
patch_size**2 * 3] and `spatial_shapes` int32 [None, 2] (a fixed budget:
one traced shape; other budgets are a Keras-side choice,
`image_preprocessing.with_budget`).

Models trained on PyTorch are exported from a TensorFlow-backend process
that loads their weights (ExportArchive needs TensorFlow or JAX).
"""

import json

import keras
import tensorflow as tf

from keras_clip.data.images import decode_rgb
from keras_clip.data.images import fit_image
from keras_clip.data.images import normalize
from keras_clip.export.tensorflow_process import export_in_tensorflow_process
from keras_clip.export.towers import tower_signatures
from keras_clip.models.preprocessing import ImagePreprocessing
from keras_clip.models.reparameterization import reparameterized


def export_saved_model(model, tokenizer, path):
    """Writes `model` and `tokenizer` as a TF SavedModel at `path`; images
    are prepared in the graph as the model's `image_preprocessing` says.

    Args:
        model: a `keras_clip.CLIP`.
        tokenizer: a `keras_clip.Tokenizer`.
        path: output directory.

    Example:

    ```python
    export_saved_model(model, tokenizer, "saved_models/shapes_clip")
    served = tf.saved_model.load("saved_models/shapes_clip")
    served.signatures["encode_text"](texts=tf.constant(["a red circle"]))
    ```
    """
    if keras.backend.backend() == "torch":
        return export_in_tensorflow_process(
            "keras_clip.export.saved_model:export_saved_model", model, tokenizer, path
        )
    model = reparameterized(model)  # MobileCLIP's FastViT serves folded
    preprocessing = model.image_preprocessing
    image_size = preprocessing.image_size
    context = tokenizer.context_length
    archive = keras.export.ExportArchive()
    if keras.backend.backend() != "tensorflow":
        # JAX: jax2tf needs the model's variables tracked. TensorFlow: the
        # endpoints' own variables suffice, and tracking the model as well
        # would store every weight twice (once per Keras variable wrapper).
        archive.track(model)
    for resource in tokenizer.tf_resources():
        archive.track(resource)

    encode_token_ids = archive.add_endpoint(
        "encode_token_ids",
        lambda token_ids: {"embeddings": model.encode_text(token_ids)},
        input_signature=[tf.TensorSpec([None, context], tf.int32, name="token_ids")],
    )

    # Float32 images, or a NaFlex model's patches at its budget and their
    # grids (one traced shape: XLA and jax2tf need it).
    image_input = tower_signatures(model)["image"]
    encode_normalized_images = archive.add_endpoint(
        "encode_normalized_images",
        lambda images: {"embeddings": model.encode_image(images)},
        input_signature=[image_input],
    )
    # One uint8 image as `images.fit_image` gives it.
    fitted_spec = tf.nest.map_structure(
        lambda spec: tf.TensorSpec(
            spec.shape[1:], tf.uint8 if spec.dtype.is_floating else spec.dtype
        ),
        image_input,
    )

    def encode_fitted(images):
        return encode_normalized_images(normalize(images, preprocessing))

    logit_scale = tf.Variable(
        float(keras.ops.convert_to_numpy(model.logit_scale)), trainable=False, name="logit_scale"
    )
    archive.track(logit_scale)
    bias = model.logit_bias  # SigLIP's; logits are scale * cosine + bias
    logit_bias = tf.Variable(
        0.0 if bias is None else float(keras.ops.convert_to_numpy(bias)),
        trainable=False,
        name="logit_bias",
    )
    archive.track(logit_bias)

    # SavedModel signatures check dtypes, not static dimensions: check sizes.
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8, name="images")])
    def encode_image(images):
        if preprocessing.is_naflex:  # any one size: NaFlex in the graph
            fit = lambda image: fit_image(image, preprocessing)  # noqa: E731
            return encode_fitted(tf.map_fn(fit, images, fn_output_signature=fitted_spec))
        tf.debugging.assert_equal(
            tf.shape(images)[1:],
            tf.constant([image_size, image_size, 3]),
            message=f"images must be uint8 RGB [batch, {image_size}, "
            f"{image_size}, 3]; use encode_image_bytes to resize",
        )
        return encode_fitted(images)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def encode_text(texts):
        return encode_token_ids(tokenizer.tokenize(texts))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def encode_image_bytes(image_bytes):
        images = tf.map_fn(
            lambda b: fit_image(decode_rgb(b), preprocessing),
            image_bytes,
            fn_output_signature=fitted_spec,
        )
        return encode_fitted(images)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="image_bytes"),
            tf.TensorSpec([None], tf.string, name="texts"),
        ]
    )
    def serving_default(image_bytes, texts):
        images = encode_image_bytes(image_bytes)["embeddings"]
        text = encode_text(texts)["embeddings"]
        logits = logit_scale * tf.matmul(images, text, transpose_b=True) + logit_bias
        return {"image_embeddings": images, "text_embeddings": text, "logits": logits}

    preprocessing_json = json.dumps(preprocessing.get_config())

    @tf.function(input_signature=[])
    def image_preprocessing():
        return {"config": tf.constant(preprocessing_json)}

    for name, fn in (
        ("image_preprocessing", image_preprocessing),
        ("encode_image", encode_image),
        ("encode_text", encode_text),
        ("encode_image_bytes", encode_image_bytes),
        ("serving_default", serving_default),
    ):
        archive.add_endpoint(name, fn)
    archive.write_out(path, verbose=False)
    return path


def read_image_preprocessing(path_or_loaded):
    """The `ImagePreprocessing` a SavedModel from `export_saved_model` was
    written with (a path, or the SavedModel as `tf.saved_model.load` gives it)."""
    loaded = path_or_loaded
    if isinstance(loaded, (str, bytes)) or hasattr(loaded, "__fspath__"):
        loaded = tf.saved_model.load(loaded)
    config = loaded.image_preprocessing()["config"].numpy().decode("utf-8")
    return ImagePreprocessing.from_config(json.loads(config))
