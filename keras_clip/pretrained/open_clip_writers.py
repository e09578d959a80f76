"""Which writer turns a model with open_clip's own layout into its files.

Models whose towers transformers' `CLIPModel` cannot hold (a CoCa, a timm
image tower: EVA, PE-Core, MobileCLIP, ConvNeXt, Swin; a Hugging Face text
tower) are written only as open_clip directories; each family's module
gives the model config and the tensors (`CLIP.save_pretrained`).
"""

from keras_clip.pretrained import open_clip_coca
from keras_clip.pretrained import open_clip_convnext
from keras_clip.pretrained import open_clip_eva
from keras_clip.pretrained import open_clip_fastvit
from keras_clip.pretrained import open_clip_hf_text
from keras_clip.pretrained import open_clip_swin
from keras_clip.pretrained.weight_map import export_weight_map


def open_clip_writer(model):
    """For a CoCa, a model with a timm image tower or one with a Hugging Face
    text tower, a function model -> (open_clip model config, tensors); None
    for any other.

    Example:

    ```python
    open_clip_writer(model) is None  # True: CLIP's own towers write either format
    ```
    """
    if open_clip_coca.is_coca_model(model):
        return lambda model: (
            open_clip_coca.to_open_clip_coca_config(model),
            open_clip_coca.join_attention(export_weight_map(open_clip_coca.coca_weight_map(model))),
        )
    if open_clip_eva.is_eva_model(model):

        def write(model):
            tensors = export_weight_map(open_clip_eva.eva_weight_map(model))
            name = model.image_encoder.timm_model_name
            config = open_clip_eva.to_open_clip_eva_config(model)
            return config, open_clip_eva.join_attention(tensors, name)

        return write
    if open_clip_fastvit.is_fastvit_model(model):
        return lambda model: (
            open_clip_fastvit.to_open_clip_fastvit_config(model),
            export_weight_map(open_clip_fastvit.fastvit_weight_map(model)),
        )
    if open_clip_convnext.is_convnext_model(model):
        return lambda model: (
            open_clip_convnext.to_open_clip_convnext_config(model),
            export_weight_map(open_clip_convnext.convnext_weight_map(model)),
        )
    if open_clip_swin.is_swin_model(model):
        return lambda model: (
            open_clip_swin.to_open_clip_swin_config(model),
            export_weight_map(open_clip_swin.swin_weight_map(model)),
        )
    if open_clip_hf_text.is_hf_text_model(model):
        return lambda model: (
            open_clip_hf_text.to_open_clip_hf_text_config(model),
            export_weight_map(open_clip_hf_text.hf_text_weight_map(model)),
        )
    return None
