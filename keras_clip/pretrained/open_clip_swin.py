"""open_clip's Swin CLIP checkpoints: tensors in and out.

The image tower is `visual.trunk.*` (timm's Swin: `patch_embed`, `layers.*`
with `downsample` and `blocks`, `norm`) and `visual.head.proj` (open_clip's
bias-free projection); the text tower has OpenAI's names at the top level.

Example:

```python
model = keras_clip.CLIP.from_pretrained("swin_base_patch4_window7_224/")  # open_clip directory
model.save_pretrained("tuned/", format="open_clip")
```
"""

from keras_clip.encoders.swin import SwinTransformer
from keras_clip.layers.swin_block import PatchMerging
from keras_clip.models.timm_swin import from_open_clip_swin_config
from keras_clip.pretrained.configs import timm_model_cfg
from keras_clip.pretrained.layouts import openai_text_entries
from keras_clip.pretrained.weight_map import biased_conv
from keras_clip.pretrained.weight_map import dense
from keras_clip.pretrained.weight_map import layer_norm
from keras_clip.pretrained.weight_map import tensor

TRUNK = "visual.trunk."


def is_swin_model(model):
    return isinstance(getattr(model, "image_encoder", None), SwinTransformer)


def swin_shape(config, tensors):
    """Shape fields of a Swin config, the stages read off the tensors (so
    shrunken towers load too) when the checkpoint has them."""
    if f"{TRUNK}patch_embed.proj.weight" not in tensors:
        return from_open_clip_swin_config(config)
    stages = sorted({int(k.split(".")[3]) for k in tensors if k.startswith(f"{TRUNK}layers.")})
    depths, heads = [], []
    for stage in stages:
        prefix = f"{TRUNK}layers.{stage}.blocks."
        depths.append(
            len({k[len(prefix) :].split(".")[0] for k in tensors if k.startswith(prefix)})
        )
        heads.append(tensors[f"{prefix}0.attn.relative_position_bias_table"].shape[1])
    width = tensors[f"{TRUNK}patch_embed.proj.weight"].shape[0]
    return from_open_clip_swin_config(config, (width, depths, heads))


def swin_weight_map(model):
    """Entries for open_clip's names of a Swin `CLIP`."""
    vision = model.image_encoder
    entries = biased_conv(vision.patch_embedding, f"{TRUNK}patch_embed.proj")
    entries += layer_norm(vision.patch_norm, f"{TRUNK}patch_embed.norm")
    for index, stage in enumerate(vision.stages):
        blocks = [layer for layer in stage if not isinstance(layer, PatchMerging)]
        if index:
            merging = f"{TRUNK}layers.{index}.downsample"
            entries += layer_norm(stage[0].norm, f"{merging}.norm")
            entries += dense(stage[0].reduction, f"{merging}.reduction.weight")
        for i, block in enumerate(blocks):
            prefix = f"{TRUNK}layers.{index}.blocks.{i}"
            entries += layer_norm(block.norm1, f"{prefix}.norm1")
            entries += dense(block.qkv, f"{prefix}.attn.qkv")
            entries += dense(block.proj, f"{prefix}.attn.proj")
            entries.append(tensor(block.bias_table, f"{prefix}.attn.relative_position_bias_table"))
            entries += layer_norm(block.norm2, f"{prefix}.norm2")
            entries += dense(block.fc1, f"{prefix}.mlp.fc1")
            entries += dense(block.fc2, f"{prefix}.mlp.fc2")
    entries += layer_norm(vision.final_norm, f"{TRUNK}norm")
    entries += dense(vision.head, "visual.head.proj.weight")
    return entries + openai_text_entries(model)


def to_open_clip_swin_config(model):
    """open_clip's model config of a Swin keras-clip `CLIP`."""
    return timm_model_cfg(model, "", "linear", custom_text=False)
