"""open_clip's models with timm ViT-family image towers: timm's `eva_*`,
`eva02_*_clip_*`, `vit_pe_core_*`, `vit_*_clip_*`, `vit_*_mci_*`, ViT-M/16
and ViTamin's `vitamin_*` beside open_clip's text Transformer.

open_clip builds `EVA01-g-14`, `EVA02-B-16`, ..., `PE-Core-T-16-384`, ...,
`MobileCLIP2-L-14`, `MobileCLIP-B` as a `CustomTextCLIP`: a timm `Eva` (or
plain `VisionTransformer`) image tower whose classifier head
(a biased Linear to `embed_dim`) is the projection, and CLIP's text tower
(causal, or bidirectional with `no_causal_mask`). Which `Eva` options a timm name sets (rotary embeddings, SwiGLU,
sub-LN, post-norm, attention pooling, ...) follows from its family and size
word, as timm's model functions set them; `TIMM_EVA_FAMILIES` writes them
down and `tests/test_open_clip_eva.py` checks them against timm's models.
`check_open_clip_eva_options` goes through every config key (loaded
exactly, or refused by name) and `from_open_clip_eva_config` gives the
shape fields of `keras_clip.models.architectures` (vision "eva").

Example:

```python
from keras_clip.models.architectures import open_clip_architectures

shape = from_open_clip_eva_config(open_clip_architectures()["PE-Core-T-16-384"])
shape["vision_width"], eva_tower_options(shape["timm_model_name"])["pooling"]  # 192, "map"
```
"""

import re

from keras_clip.models.open_clip_timm import check_timm_config
from keras_clip.models.open_clip_timm import clip_text_shape
from keras_clip.models.open_clip_timm import refuse_timm_option

# Each family: the timm name's pattern (size word, patch, resolution), the
# heads of each size, the pooling open_clip asks for, and the tower options
# its model functions set.
_ROTARY_EVA02 = {"reference_grid": 16, "offset": 0.0, "indexing": "ij"}
_TIMM_VIT = dict(mlp="gelu", key_bias=True)
TIMM_EVA_FAMILIES = {
    "pe_core": {
        "pattern": r"vit_pe_core_(?P<size>\w+?)_patch(?P<patch>\d+)_(?P<resolution>\d+)$",
        "heads": {"tiny": 3, "small": 6, "base": 12, "large": 16, "gigantic": 16},
        "pool": "map",
        "options": dict(
            _TIMM_VIT,
            patch_bias=False,
            pre_norm=True,
            pooling="map",
            pool_heads=8,
            pool_mlp_ratio=4.0,
            layer_norm_epsilon=1e-5,
        ),
    },
    "eva02_clip": {
        "pattern": r"eva02_(?P<size>\w+?)_patch(?P<patch>\d+)_clip_(?P<resolution>\d+)$",
        "heads": {"base": 12, "large": 16, "enormous": 16},
        "pool": "token",
        "options": dict(mlp="swiglu", mlp_norm=True, inner_norm=True, rotary=_ROTARY_EVA02),
    },
    "eva01": {
        "pattern": r"eva_(?P<size>giant)_patch(?P<patch>\d+)_(?P<resolution>\d+)$",
        "heads": {"giant": 16},
        "pool": "token",
        "options": dict(mlp="gelu"),
    },
    # timm's plain CLIP ViTs (MobileCLIP2-L-14's image tower).
    "vit_clip": {
        "pattern": r"vit_(?P<size>\w+?)_patch(?P<patch>\d+)_clip_(?P<resolution>\d+)$",
        "heads": {"base": 12, "large": 16},
        "pool": "token",
        "options": dict(_TIMM_VIT, patch_bias=False, pre_norm=True, layer_norm_epsilon=1e-5),
    },
    # MobileCLIP's ViT-B: a convolutional stem of stride 16, position
    # embeddings on the patches only (timm's no_embed_class).
    "vit_mci": {
        "pattern": r"vit_(?P<size>\w+?)_mci_(?P<resolution>\d+)$",
        "heads": {"base": 12},
        "patch": 16,
        "pool": "token",
        "options": dict(_TIMM_VIT, stem="convolutional", class_position=False),
    },
    # timm's ViT-M/16 without class token, mean-pooled (open_clip's
    # vit_medium_patch16_gap_256: a plain CLIP with a TimmModel tower whose
    # bias-free "linear" head projects).
    "vit_gap": {
        "pattern": r"vit_(?P<size>medium)_patch(?P<patch>\d+)_gap_(?P<resolution>\d+)$",
        "heads": {"medium": 8},
        "pool": "",
        "projection": "linear",
        "custom_text": False,
        "options": dict(
            mlp="gelu",
            qkv_bias=False,
            class_token=False,
            pooling="avg",
            layer_scale_init=1e-6,
            head_bias=False,
        ),
    },
    # timm's ViT-M/16 with a class token, no absolute positions and a
    # log-coordinate relative-position MLP in every block (open_clip's
    # vit_relpos_medium_patch16_cls_224, the same plain-CLIP layout).
    "vit_relpos": {
        "pattern": r"vit_relpos_(?P<size>medium)_patch(?P<patch>\d+)_cls_(?P<resolution>\d+)$",
        "heads": {"medium": 8},
        "pool": "",
        "projection": "linear",
        "custom_text": False,
        "options": dict(
            mlp="gelu",
            qkv_bias=False,
            layer_scale_init=1e-6,
            head_bias=False,
            absolute_positions=False,
            relative_position_hidden=256,
        ),
    },
    # ViTamin: a convolutional stem (MobileNet blocks) makes 16-pixel tokens
    # for ViT blocks with GeGLU MLPs; no class token, the mean of the tokens
    # LayerNormed (timm's fc_norm), open_clip's bias-free "linear" head.
    "vitamin": {
        "pattern": r"vitamin_(?P<size>small|base|large2?|xlarge)_(?P<resolution>\d+)$",
        "heads": {"small": 6, "base": 12, "large": 16, "large2": 16, "xlarge": 16},
        "patch": 16,
        "pool": "",
        "projection": "linear",
        "options": dict(
            _TIMM_VIT,
            mlp="geglu",
            stem="vitamin",
            class_token=False,
            pooling="avg",
            norm_after_pool=True,
            head_bias=False,
        ),
    },
}
# ViTamin's stem of each size: (stem width, stage widths), two and four blocks.
VITAMIN_STEMS = {
    "small": (64, (64, 128)),
    "base": (128, (128, 256)),
    "large": (160, (160, 320)),
    "large2": (160, (160, 320)),
    "xlarge": (192, (192, 384)),
}
VITAMIN_STAGE_DEPTHS = (2, 4)
# The sizes whose blocks differ from their family's: EVA-02-E is EVA-01's
# block in post-norm form; PE's gigantic tower has no class token, and its
# rotary grid starts at 0 where the other PE towers' starts at 1.
_SIZE_OPTIONS = {
    ("eva02_clip", "enormous"): dict(mlp="gelu", mlp_norm=False, inner_norm=False, rotary=None,
                                     post_norm=True),
    ("pe_core", "gigantic"): dict(class_token=False),
    ("vitamin", "xlarge"): dict(absolute_positions=False),
}  # fmt: skip
# Full-size towers of the names open_clip 3.3 uses: (width, layers, MLP hidden).
TIMM_EVA_SHAPES = {
    "vit_pe_core_tiny_patch16_384": (192, 12, 768),
    "vit_pe_core_small_patch16_384": (384, 12, 1536),
    "vit_pe_core_base_patch16_224": (768, 12, 3072),
    "vit_pe_core_large_patch14_336": (1024, 24, 4096),
    "vit_pe_core_gigantic_patch14_448": (1536, 50, 8960),
    "eva02_base_patch16_clip_224": (768, 12, 2048),
    "eva02_large_patch14_clip_224": (1024, 24, 2730),
    "eva02_large_patch14_clip_336": (1024, 24, 2730),
    "eva02_enormous_patch14_clip_224": (1792, 64, 15360),
    "eva_giant_patch14_224": (1408, 40, 6144),
    "vit_base_patch16_clip_224": (768, 12, 3072),
    "vit_large_patch14_clip_224": (1024, 24, 4096),
    "vit_base_mci_224": (768, 12, 3072),
    "vit_medium_patch16_gap_256": (512, 12, 2048),
    "vit_relpos_medium_patch16_cls_224": (512, 12, 2048),
    **{f"vitamin_small_{r}": (384, 14, 768) for r in (224,)},
    **{f"vitamin_base_{r}": (768, 14, 1536) for r in (224,)},
    **{f"vitamin_large_{r}": (1024, 31, 2048) for r in (224, 256, 336, 384)},
    **{f"vitamin_large2_{r}": (1024, 31, 2048) for r in (224, 256, 336, 384)},
    **{f"vitamin_xlarge_{r}": (1152, 32, 2304) for r in (256, 336, 384)},
}


def parse_timm_eva_name(name):
    """(family, size word, patch size, resolution) of a timm EVA-family
    name, or None for any other name."""
    for family, facts in TIMM_EVA_FAMILIES.items():
        match = re.match(facts["pattern"], name or "")
        if match and match["size"] in facts["heads"]:
            patch = int(match.groupdict().get("patch") or facts["patch"])
            return family, match["size"], patch, int(match["resolution"])
    return None


def is_open_clip_eva(config):
    """Whether an open_clip model config has a timm EVA-family image tower
    (in the layout its family uses: CustomTextCLIP, or CLIP for "vit_gap"
    and "vit_relpos")."""
    parsed = parse_timm_eva_name((config.get("vision_cfg") or {}).get("timm_model_name"))
    if parsed is None:
        return False
    return bool(config.get("custom_text")) == TIMM_EVA_FAMILIES[parsed[0]].get("custom_text", True)


def eva_tower_options(timm_model_name):
    """`EVAVisionTransformer` arguments set by a timm name (heads, blocks,
    rotary embeddings, pooling); the sizes come from the shape."""
    family, size, patch, resolution = parse_timm_eva_name(timm_model_name)
    options = dict(TIMM_EVA_FAMILIES[family]["options"])
    if family == "pe_core":  # PE's rotary grid is its own, columns first
        offset = 0.0 if size == "gigantic" else 1.0
        options["rotary"] = {
            "reference_grid": resolution // patch,
            "offset": offset,
            "indexing": "xy",
        }
    if family == "vitamin":
        stem_width, stage_widths = VITAMIN_STEMS[size]
        options["vitamin_stem"] = {
            "stem_width": stem_width,
            "stage_widths": list(stage_widths),
            "stage_depths": list(VITAMIN_STAGE_DEPTHS),
        }
    options.update(_SIZE_OPTIONS.get((family, size), {}))
    return dict(options, num_heads=TIMM_EVA_FAMILIES[family]["heads"][size])


def _size_free(timm_model_name):
    """Whether a tower computes the same at any input size: no position
    embeddings, absolute, rotary or relative (ViTamin-XL). open_clip builds
    the timm tower at its name's resolution and feeds it images of the
    config's `image_size`; for such a tower that is the config's size."""
    options = eva_tower_options(timm_model_name)
    return not options.get("absolute_positions", True) and not (
        options.get("rotary") or options.get("relative_position_hidden")
    )


def check_open_clip_eva_options(config):
    """Checks every key of an EVA-family open_clip config; returns the shape
    fields of its text tower (and joint width, logit bias).

    Raises:
        ValueError: naming the first option keras-clip cannot build exactly.
    """
    name = (config.get("vision_cfg") or {})["timm_model_name"]
    family, _, _, resolution = parse_timm_eva_name(name)
    facts = TIMM_EVA_FAMILIES[family]
    vision = check_timm_config(
        config, "timm ViT-family", pools=(facts["pool"],), projections=(facts.get("projection"),)
    )
    if facts.get("projection") and vision.get("timm_proj_bias"):
        refuse_timm_option("timm ViT-family", "vision_cfg.timm_proj_bias", True, "no head bias")
    if vision.get("image_size", 224) != resolution and not _size_free(name):
        refuse_timm_option(
            "timm ViT-family", "vision_cfg.image_size", vision.get("image_size", 224),
            f"{name} at {resolution}",
        )  # fmt: skip
    return clip_text_shape(config)


def from_open_clip_eva_config(config, vision_sizes=None):
    """Shape fields of an EVA-family open_clip config.

    Args:
        config: the model config.
        vision_sizes: (width, layers, MLP hidden) of the image tower, as a
            checkpoint's tensors give them; None: the full-size tower of the
            timm name (`TIMM_EVA_SHAPES`).
    """
    text = check_open_clip_eva_options(config)
    name = config["vision_cfg"]["timm_model_name"]
    if vision_sizes is None:
        if name not in TIMM_EVA_SHAPES:
            raise ValueError(f"No full-size shape is known for timm's {name!r}; load a checkpoint.")
        vision_sizes = TIMM_EVA_SHAPES[name]
    width, layers, mlp_hidden = vision_sizes
    _, _, patch, resolution = parse_timm_eva_name(name)
    return dict(
        vision="eva",
        timm_model_name=name,
        image_size=config["vision_cfg"].get("image_size", 224) if _size_free(name) else resolution,
        patch_size=patch,
        vision_width=width,
        vision_layers=layers,
        vision_mlp_hidden=mlp_hidden,
        **text,
    )
