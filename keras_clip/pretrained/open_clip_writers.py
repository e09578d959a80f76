"""Which writer turns a model with open_clip's own layout into its files.

Models whose towers transformers' `CLIPModel` cannot hold (a CoCa, a timm
image tower: EVA, PE-Core, MobileCLIP, ConvNeXt, Swin; a Hugging Face text
tower) are written only as open_clip directories; each family's module
gives the model config and the tensors (`CLIP.save_pretrained`).
"""

import functools

from keras_clip.pretrained import open_clip_coca
from keras_clip.pretrained import open_clip_convnext
from keras_clip.pretrained import open_clip_eva
from keras_clip.pretrained import open_clip_fastvit
from keras_clip.pretrained import open_clip_hf_text
from keras_clip.pretrained import open_clip_swin
from keras_clip.pretrained.weight_map import export_weight_map

# Per family: (whether a model is of it, its open_clip model config, its
# weight map, what turns the exported tensors into open_clip's form).
_FAMILIES = (
    (
        open_clip_coca.is_coca_model,
        open_clip_coca.to_open_clip_coca_config,
        open_clip_coca.coca_weight_map,
        lambda tensors, model: open_clip_coca.join_attention(tensors),
    ),
    (
        open_clip_eva.is_eva_model,
        open_clip_eva.to_open_clip_eva_config,
        open_clip_eva.eva_weight_map,
        lambda tensors, model: open_clip_eva.join_attention(
            tensors, model.image_encoder.timm_model_name
        ),
    ),
    (
        open_clip_fastvit.is_fastvit_model,
        open_clip_fastvit.to_open_clip_fastvit_config,
        open_clip_fastvit.fastvit_weight_map,
        None,
    ),
    (
        open_clip_convnext.is_convnext_model,
        open_clip_convnext.to_open_clip_convnext_config,
        open_clip_convnext.convnext_weight_map,
        None,
    ),
    (
        open_clip_swin.is_swin_model,
        open_clip_swin.to_open_clip_swin_config,
        open_clip_swin.swin_weight_map,
        None,
    ),
    (
        open_clip_hf_text.is_hf_text_model,
        open_clip_hf_text.to_open_clip_hf_text_config,
        open_clip_hf_text.hf_text_weight_map,
        None,
    ),
)


def open_clip_writer(model):
    """For a CoCa, a model with a timm image tower or one with a Hugging Face
    text tower, a function model -> (open_clip model config, tensors); None
    for any other.

    Example:

    ```python
    open_clip_writer(model) is None  # True: CLIP's own towers write either format
    ```
    """
    for is_family, to_config, weight_map, to_open_clip in _FAMILIES:
        if is_family(model):
            return functools.partial(_write, to_config, weight_map, to_open_clip)
    return None


def _write(to_config, weight_map, to_open_clip, model):
    tensors = export_weight_map(weight_map(model))
    if to_open_clip is not None:
        tensors = to_open_clip(tensors, model)
    return to_config(model), tensors
