"""The two towers of a CLIP model as graphs of their own: what the ONNX and
OpenVINO exports share.

Each tower is exported as a model of its own (`TowerModel`) with one input,

    images     float32 [N, S, S, 3], normalised with the model's mean and std
               (a SigLIP 2 NaFlex model: two inputs, patches float32 [N,
               max_num_patches, patch_size**2 * 3] and spatial_shapes int32
               [N, 2], see `keras_clip.data.naflex`)
    token_ids  int32 [N, L]

and the embeddings [N, D] (L2-normalised) as its output. Beside the graphs
a JSON file (`write_tower_config`) holds what a client needs to use them:
the model's `ImagePreprocessing` config, the context length, the logit
scale and bias (logits = logit_scale * image @ text.T + logit_bias),
whether the logits are sigmoids (SigLIP) and the export's own settings.

Example:

```python
text_tower = TowerModel(model, "text")  # token ids in, embeddings out
text_tower(token_ids)
write_tower_config(model, "towers/config.json", format="mine")
```
"""

import json
import os

import keras

from keras_clip.keras_workarounds import ExplicitSignatures
from keras_clip.models.reparameterization import reparameterized

TOWERS = ("image", "text")
INPUT_NAMES = {"image": "images", "text": "token_ids"}


class TowerModel(ExplicitSignatures, keras.Model):
    """One tower of a CLIP model, as a model of its own (for export only).

    Args:
        clip: a `keras_clip.CLIP`.
        tower: "image" or "text".
    """

    def __init__(self, clip, tower, **kwargs):
        if tower not in TOWERS:
            raise ValueError(f"tower must be one of {TOWERS}, got {tower!r}.")
        super().__init__(name=f"{tower}_encoder", **kwargs)
        self.clip = clip
        self.tower = tower

    def call(self, inputs):
        if self.tower == "image":
            return self.clip.encode_image(inputs)
        return self.clip.encode_text(inputs)


def context_length_of(model):
    """The text tower's context length; a ValueError when it cannot be told."""
    context_length = getattr(model.text_encoder, "context_length", None)
    if context_length is None:
        raise ValueError("Cannot tell the text encoder's context length for the exported graph.")
    return int(context_length)


def tower_signatures(model):
    """The towers' input specs (TensorFlow backend): batch size free."""
    import tensorflow as tf

    preprocessing = model.image_preprocessing
    if preprocessing.is_naflex:  # patches at the model's budget, and their grids
        patch_dim = preprocessing.patch_size**2 * 3
        image = {
            "patches": tf.TensorSpec(
                [None, preprocessing.max_num_patches, patch_dim], tf.float32, name="patches"
            ),
            "spatial_shapes": tf.TensorSpec([None, 2], tf.int32, name="spatial_shapes"),
        }
    else:
        size = model.image_size
        image = tf.TensorSpec([None, size, size, 3], tf.float32, name="images")
    return {
        "image": image,
        "text": tf.TensorSpec([None, context_length_of(model)], tf.int32, name="token_ids"),
    }


def built_towers(model):
    """(tower, `TowerModel`, its input spec) for both towers, each called
    once on zeros so that its weights exist."""
    import tensorflow as tf

    model = reparameterized(model)  # MobileCLIP's FastViT serves folded
    for tower, spec in tower_signatures(model).items():
        wrapper = TowerModel(model, tower)
        wrapper(tf.nest.map_structure(lambda s: tf.ones([1, *s.shape[1:]], s.dtype), spec))
        yield tower, wrapper, spec


def write_tower_config(model, path, **settings):
    """Writes the JSON that travels with exported towers (see the module
    docstring); `settings` (JSON values) are added as they are."""
    config = {
        "image_preprocessing": model.image_preprocessing.get_config(),
        "context_length": context_length_of(model),
        "logit_scale": float(keras.ops.convert_to_numpy(model.logit_scale)),
        "logit_bias": 0.0
        if model.logit_bias is None
        else float(keras.ops.convert_to_numpy(model.logit_bias)),
        # SigLIP: each logit is its own sigmoid (a softmax otherwise).
        "sigmoid_logits": model.logit_bias is not None,
        **settings,
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    return config
