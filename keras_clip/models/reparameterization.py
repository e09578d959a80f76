"""A model's serving form: re-parameterisable image towers folded.

MobileCLIP's FastViT towers train with parallel convolution branches and
BatchNorms that fold, for inference, into single convolutions computing
the same function (`keras_clip.encoders.FastViT.reparameterized`). The
exports (SavedModel, ONNX, OpenVINO) fold before they trace; call
`reparameterized(model)` to serve or benchmark the folded form in Keras.

Example:

```python
served = reparameterized(model)  # the same model when nothing folds
served.encode_image(images)  # equal to model.encode_image(images) within 1e-5
```
"""

import keras


def reparameterized(model):
    """A copy of the `CLIP` `model` with its image tower folded for serving
    (the model itself when its tower has nothing to fold or is folded)."""
    tower = model.image_encoder
    if not hasattr(tower, "reparameterized") or getattr(tower, "folded", False):
        return model
    folded_tower = tower.reparameterized()
    config = model.get_config()
    config["image_encoder"] = keras.saving.serialize_keras_object(folded_tower)
    served = type(model).from_config(config)
    served.image_encoder.set_weights(folded_tower.get_weights())
    tower_ids = {id(v) for v in tower.weights}
    served_tower_ids = {id(v) for v in served.image_encoder.weights}
    sources = [v for v in model.weights if id(v) not in tower_ids]
    targets = [v for v in served.weights if id(v) not in served_tower_ids]
    for source, target in zip(sources, targets, strict=True):
        target.assign(source)
    return served
