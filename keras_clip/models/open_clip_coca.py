"""open_clip's CoCa configs (`coca_ViT-B-32`, `coca_ViT-L-14`, `coca_base`):
CLIP's towers with CoCa's options, plus a `multimodal_cfg` decoder.

open_clip builds CoCa from the same `vision_cfg` / `text_cfg` as CLIP, with
three CoCa options: `vision_cfg.attentional_pool` (an `AttentionalPooler`
of `attn_pooler_queries` (256) queries, `embed_dim` wide, ahead of ln_post),
`text_cfg.embed_cls` (a class token appended to the caption) and
`output_tokens` (inert here: keras-clip's CoCa towers always return their
tokens). The decoder (`MultimodalTransformer`) takes `width`, `heads`,
`layers` and `ls_init_value` from `multimodal_cfg`; its vocabulary is
`text_cfg.vocab_size`, its MLP ratio 4 and its activation the model's:
open_clip ignores `multimodal_cfg`'s `vocab_size`, `mlp_ratio`,
`dim_head`, `n_queries` and `attn_pooler_heads`.

Example:

```python
from keras_clip.models.architectures import open_clip_architectures

shape = from_open_clip_coca_config(open_clip_architectures()["coca_ViT-B-32"])
shape["coca"]["attention_pool_queries"], shape["coca"]["decoder_layers"]  # 256, 12
```
"""

from keras_clip.encoders.multimodal_decoder import MultimodalDecoder
from keras_clip.models.hf_text import from_open_clip_hf_text_config
from keras_clip.models.open_clip_options import from_open_clip_config

# multimodal_cfg keys open_clip's decoder reads, and those it ignores.
_DECODER_KEYS = {"width", "heads", "layers", "ls_init_value", "context_length"}
_IGNORED_KEYS = {"vocab_size", "mlp_ratio", "dim_head", "n_queries", "attn_pooler_heads"}


def is_open_clip_coca(config):
    """Whether an open_clip model config is a CoCa (it has a decoder)."""
    return bool(config.get("multimodal_cfg"))


def from_open_clip_coca_config(config):
    """Shape fields of an open_clip CoCa config; every key is checked.

    Raises:
        ValueError: naming the first option keras-clip cannot build exactly.
    """
    vision = dict(config.get("vision_cfg") or {})
    text = dict(config.get("text_cfg") or {})
    decoder = config["multimodal_cfg"]
    unknown = sorted(set(decoder) - _DECODER_KEYS - _IGNORED_KEYS)
    if unknown:
        raise ValueError(f"Unknown open_clip option multimodal_cfg.{unknown[0]}.")
    pool = vision.pop("attentional_pool", False)
    if pool not in (False, True):
        raise ValueError(
            f"open_clip option vision_cfg.attentional_pool={pool!r} (open_clip's unfinished "
            "'parallel'/'cascade' pooling) is not supported."
        )
    queries = vision.pop("attn_pooler_queries", 256)
    pool_heads = vision.pop("attn_pooler_heads", 8)
    if text.pop("correct_cls_mask", False):
        raise ValueError(
            "open_clip option text_cfg.correct_cls_mask=True (the corrected class-token "
            "mask) is not supported: keras-clip builds the mask of the released CoCa weights."
        )
    class_token = bool(text.pop("embed_cls", False))
    # CoCa keeps its text tower under text.* whatever custom_text says.
    top = {k: v for k, v in config.items() if k not in ("multimodal_cfg", "custom_text")}
    if text.get("hf_model_name"):
        shape = _hf_text_shape(top, vision, text)
    else:
        shape = from_open_clip_config({**top, "vision_cfg": vision, "text_cfg": text})
    if shape["vision"] != "vit":
        raise ValueError("A CoCa with a ResNet image tower is not supported.")
    shape["coca"] = {
        # open_clip sizes the decoder's vocabulary from text_cfg.vocab_size,
        # CLIP's 49408 unless given, whatever tokenizer the text tower has.
        "decoder_vocabulary_size": text.get("vocab_size", 49408),
        "attention_pool_queries": queries if pool else None,
        "attention_pool_heads": pool_heads,
        "text_class_token": class_token,
        "pad_token_id": text.get("pad_id", 0),
        "decoder_width": decoder.get("width", 512),
        "decoder_heads": decoder.get("heads", 8),
        "decoder_layers": decoder.get("layers", 12),
        "decoder_layer_scale": decoder.get("ls_init_value"),
    }
    return shape


def _hf_text_shape(top, vision, text):
    """A CoCa's shape with a Hugging Face text tower (coca_roberta-ViT-B-32):
    a RoBERTa tower, mean-pooled, whose every token's features go to the
    decoder (open_clip's `HFTextEncoder(output_tokens=True)`)."""
    # Not the tower's: CoCa's towers always return their tokens, open_clip's
    # HFTextEncoder reads its width from its own config, and vocab_size is the decoder's.
    tower = {k: v for k, v in text.items() if k not in ("output_tokens", "width", "vocab_size")}
    shape = from_open_clip_hf_text_config({**top, "vision_cfg": vision, "text_cfg": tower})
    if shape["text"] != "roberta" or text.get("hf_pooler_type", "mean_pooler") != "mean_pooler":
        raise ValueError(
            f"A CoCa with the Hugging Face text tower {text['hf_model_name']!r} (pooler "
            f"{text.get('hf_pooler_type')!r}) is not supported: keras-clip builds CoCa's "
            "decoder over a mean-pooled RoBERTa or XLM-RoBERTa tower."
        )
    shape["roberta"]["output_tokens"] = True
    return shape


def coca_vision_options(config):
    """The `VisionTransformer` arguments of a CoCa shape ({} for any other)."""
    coca = config.get("coca")
    if not coca:
        return {}
    return dict(
        attention_pool_queries=coca["attention_pool_queries"],
        attention_pool_width=config["embed_dim"],
        attention_pool_heads=coca["attention_pool_heads"],
        output_tokens=True,
    )


def coca_text_options(config):
    """The `TextTransformer` arguments of a CoCa shape ({} for any other)."""
    coca = config.get("coca")
    if not coca:
        return {}
    return dict(
        class_token=coca["text_class_token"], output_tokens=True, pad_token_id=coca["pad_token_id"]
    )


def build_coca(model_class, config, image_encoder, text_encoder, model_kwargs):
    """A CoCa of the shape (`CLIP` as the class asked for builds a `CoCa`)."""
    from keras_clip.models.clip import CLIP
    from keras_clip.models.coca import CoCa

    if model_class is CLIP:
        model_class = CoCa
    if not issubclass(model_class, CoCa):
        raise ValueError(f"A CoCa shape builds a CoCa model, not {model_class.__name__}.")
    coca = config["coca"]
    decoder = MultimodalDecoder(
        coca["decoder_vocabulary_size"],
        coca["decoder_width"],
        coca["decoder_layers"],
        coca["decoder_heads"],
        activation=config["activation"],
        layer_scale_init=coca["decoder_layer_scale"],
        name="text_decoder",
    )
    model_kwargs.setdefault("pad_token_id", coca["pad_token_id"])
    return model_class(image_encoder, text_encoder, decoder, config["embed_dim"], **model_kwargs)
