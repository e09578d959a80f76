"""open_clip's ConvNeXt CLIP checkpoints: tensors in and out.

The image tower is `visual.trunk.*` (timm's ConvNeXt: `stem`, `stages.*`,
`head.norm`) and `visual.head.*` (open_clip's projection: `proj`, or
`mlp.fc1` / `mlp.fc2`); the text tower has OpenAI's names at the top level.

Example:

```python
model = keras_clip.CLIP.from_pretrained("convnext_base_w/")  # open_clip directory
model.save_pretrained("tuned/", format="open_clip")
```
"""

from keras_clip.encoders.convnext import ConvNeXt
from keras_clip.models.timm_convnext import from_open_clip_convnext_config
from keras_clip.pretrained.configs import timm_model_cfg
from keras_clip.pretrained.layouts import openai_text_entries
from keras_clip.pretrained.weight_map import biased_conv
from keras_clip.pretrained.weight_map import dense
from keras_clip.pretrained.weight_map import layer_norm
from keras_clip.pretrained.weight_map import tensor

TRUNK = "visual.trunk."


def is_convnext_model(model):
    return isinstance(getattr(model, "image_encoder", None), ConvNeXt)


def convnext_shape(config, tensors):
    """Shape fields of a ConvNeXt config, the stages read off the tensors
    (so shrunken towers load too) when the checkpoint has them."""
    if f"{TRUNK}stem.0.weight" not in tensors:
        return from_open_clip_convnext_config(config)
    depths = tuple(
        len({k.split(".")[5] for k in tensors if k.startswith(f"{TRUNK}stages.{i}.blocks.")})
        for i in range(4)
    )
    dims = (tensors[f"{TRUNK}stem.0.weight"].shape[0],) + tuple(
        tensors[f"{TRUNK}stages.{i}.downsample.1.weight"].shape[0] for i in (1, 2, 3)
    )
    return from_open_clip_convnext_config(config, (depths, dims))


def convnext_weight_map(model):
    """Entries for open_clip's names of a ConvNeXt `CLIP`."""
    vision = model.image_encoder
    entries = biased_conv(vision.stem, f"{TRUNK}stem.0")
    entries += layer_norm(vision.stem_norm, f"{TRUNK}stem.1")
    for index, blocks in enumerate(vision.stages):
        stage = f"{TRUNK}stages.{index}"
        if index:
            entries += layer_norm(vision.downsample_norms[index - 1], f"{stage}.downsample.0")
            entries += biased_conv(vision.downsamples[index - 1], f"{stage}.downsample.1")
        for i, block in enumerate(blocks):
            prefix = f"{stage}.blocks.{i}"
            entries.append(tensor(block.gamma, f"{prefix}.gamma"))
            entries += biased_conv(block.depthwise, f"{prefix}.conv_dw", depthwise=True)
            entries += layer_norm(block.norm, f"{prefix}.norm")
            entries += dense(block.mlp_hidden, f"{prefix}.mlp.fc1")
            entries += dense(block.mlp_output, f"{prefix}.mlp.fc2")
    entries += layer_norm(vision.head_norm, f"{TRUNK}head.norm")
    if vision.head_hidden is None:
        entries += _projection(vision.projection, "visual.head.proj")
    else:
        entries += dense(vision.head_hidden, "visual.head.mlp.fc1")
        entries += _projection(vision.projection, "visual.head.mlp.fc2")
    return entries + openai_text_entries(model)


def _projection(layer, prefix):
    bias = f"{prefix}.bias" if layer.use_bias else None
    return dense(layer, f"{prefix}.weight", bias)


def to_open_clip_convnext_config(model):
    """open_clip's model config of a ConvNeXt keras-clip `CLIP`."""
    vision = model.image_encoder
    return timm_model_cfg(
        model, "", vision.head, custom_text=False, timm_proj_bias=vision.head_bias
    )
