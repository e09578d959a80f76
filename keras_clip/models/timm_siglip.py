"""timm's SigLIP ViTs (`vit_{size}_patch{N}_siglip_{resolution}`) as the
image tower of an open_clip config whose text tower is not SigLIP's: the
NLLB-SigLIP CLIPs (`nllb-clip-base-siglip`, `nllb-clip-large-siglip`), with
NLLB's encoder as text tower (`keras_clip.models.hf_text`).

Both this and open_clip's own SigLIP models (read as Hugging Face
`SiglipModel`s, `keras_clip.pretrained.open_clip_siglip`) build
`encoders.SigLIPVisionTransformer`: no class token, exact GELU, LayerNorm
epsilon 1e-6 (timm's ViT), pooled by the attention-pool head ("map"), whose
output is the image embedding (`timm_proj="none"`: nothing after it). timm
builds the tower at its name's resolution whatever `image_size` says, so
the two must agree.

Example:

```python
from keras_clip.models.architectures import open_clip_architectures

shape = timm_siglip_vision_shape(open_clip_architectures()["nllb-clip-large-siglip"])
shape["vision_width"], shape["vision_layers"], shape["patch_size"]  # 1152, 27, 14
```
"""

import re

import numpy as np

from keras_clip.models.open_clip_timm import check_timm_config
from keras_clip.models.open_clip_timm import refuse_timm_option

# timm's SigLIP ViTs: size name -> (width, depth, heads, MLP hidden width).
TIMM_SIGLIP_SHAPES = {
    "base": (768, 12, 12, 3072),
    "large": (1024, 24, 16, 4096),
    "so400m": (1152, 27, 16, 4304),
    "giantopt": (1536, 40, 16, 6144),
}
_TIMM_NAME = re.compile(r"vit_(\w+?)_patch(\d+)_siglip_(\d+)$")
TRUNK = "visual.trunk."


def parse_timm_siglip_name(name):
    """(size name, patch size, resolution) of a timm SigLIP ViT name, or None."""
    match = _TIMM_NAME.match(name or "")
    if not match or match.group(1) not in TIMM_SIGLIP_SHAPES:
        return None
    return match.group(1), int(match.group(2)), int(match.group(3))


def is_timm_siglip_vision(config):
    """Whether an open_clip config's image tower is a timm SigLIP ViT."""
    name = (config.get("vision_cfg") or {}).get("timm_model_name")
    return parse_timm_siglip_name(name) is not None


def timm_siglip_tensor_shape(tensors):
    """A timm SigLIP ViT's shape read off open_clip's tensors (`visual.trunk.*`):
    dict of "width", "depth", "mlp_hidden", "patch" and "grid" (patches a
    side). Heads are not stored: they come from the timm name's size."""
    width, _, _, patch = np.shape(tensors[f"{TRUNK}patch_embed.proj.weight"])
    blocks = {name.split(".")[3] for name in tensors if name.startswith(f"{TRUNK}blocks.")}
    return dict(
        width=width,
        depth=len(blocks),
        mlp_hidden=np.shape(tensors[f"{TRUNK}blocks.0.mlp.fc1.weight"])[0],
        patch=patch,
        grid=round(np.shape(tensors[f"{TRUNK}pos_embed"])[1] ** 0.5),
    )


def timm_siglip_vision_shape(config, tensors=None):
    """The image tower's shape fields of an open_clip config with a timm
    SigLIP ViT; every `vision_cfg` key is checked.

    Args:
        config: the open_clip model config.
        tensors: open_clip's state dict, if loading one: the tower's shape
            is read from it (a checkpoint may hold a tower of the name's
            head count but another size); else, or if it holds no tower,
            timm's shape of the name.

    Returns:
        dict of shape fields ("vision": "siglip", "image_size", ...).
    """
    vision = check_timm_config(config, "SigLIP", pools=("map",), projections=("none",))
    name = vision["timm_model_name"]
    parsed = parse_timm_siglip_name(name)
    if parsed is None:
        refuse_timm_option(
            "SigLIP",
            "vision_cfg.timm_model_name",
            name,
            f"timm's vit_{{{'|'.join(TIMM_SIGLIP_SHAPES)}}}_patchN_siglip_SIZE towers",
        )
    size, patch, resolution = parsed
    width, depth, heads, hidden = TIMM_SIGLIP_SHAPES[size]
    grid = resolution // patch  # (so400m-patch14 at 384 px: 27, the last 6 px unseen)
    if tensors is not None and f"{TRUNK}patch_embed.proj.weight" in tensors:
        # (without it, the strict loader names what is missing)
        read = timm_siglip_tensor_shape(tensors)
        width, depth, hidden, patch, grid = (
            read[k] for k in ("width", "depth", "mlp_hidden", "patch", "grid")
        )
    image_size = vision.get("image_size", 224)
    if image_size // patch != grid:
        refuse_timm_option(
            "SigLIP",
            "vision_cfg.image_size",
            image_size,
            f"{grid} x {grid} patches of {patch} px, the tower's own (timm does not resize "
            "its position embeddings)",
        )
    if config["embed_dim"] != width:
        refuse_timm_option(
            "SigLIP",
            "embed_dim",
            config["embed_dim"],
            f"embed_dim = the tower's width {width} (timm_proj='none': no image projection)",
        )
    return dict(
        vision="siglip",
        timm_model_name=name,
        image_size=image_size,
        patch_size=patch,
        vision_width=width,
        vision_layers=depth,
        vision_heads=heads,
        vision_mlp_ratio=hidden / width,
        embed_dim=config["embed_dim"],
        logit_bias=config.get("init_logit_bias"),
    )


def to_open_clip_siglip_vision_cfg(encoder):
    """open_clip's `vision_cfg` of a `SigLIPVisionTransformer` built from a
    timm name."""
    return {
        "image_size": encoder.image_size,
        "timm_model_name": encoder.timm_model_name,
        "timm_model_pretrained": False,
        "timm_pool": "map",
        "timm_proj": "none",
    }
