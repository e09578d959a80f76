"""open_clip's Hugging Face text towers (`text_cfg.hf_model_name`): which
keras-clip builds, and their shapes.

open_clip wraps a transformers encoder (`HFTextEncoder`), pools it and
projects it; the image tower is open_clip's own. keras-clip builds
XLM-RoBERTa and RoBERTa (`encoders.RobertaTextEncoder`), mT5's encoder
(`encoders.T5TextEncoder`) and NLLB's (`encoders.M2M100TextEncoder`, its
first token pooled: open_clip's "cls_pooler"), with their tokenizers
(XLM-R's, mT5's and NLLB's SentencePiece, RoBERTa's byte-level BPE). The
encoder's shape is Hugging Face's config of `hf_model_name`: a local
directory's `config.json`, or, for the names open_clip's built-in configs
use, `HF_TEXT_SHAPES` (their published configs; no download).

Example:

```python
from keras_clip.models.architectures import open_clip_architectures

shape = from_open_clip_hf_text_config(open_clip_architectures()["xlm-roberta-base-ViT-B-32"])
shape["roberta"]["width"], shape["roberta"]["vocabulary_size"]  # 768, 250002
```
"""

import json
import os

from keras_clip.models.open_clip_options import from_open_clip_config
from keras_clip.models.timm_siglip import is_timm_siglip_vision
from keras_clip.models.timm_siglip import timm_siglip_vision_shape

# The fields of Hugging Face's config.json that the towers use, as published.
_ROBERTA = dict(
    hidden_act="gelu", layer_norm_eps=1e-5, max_position_embeddings=514, pad_token_id=1,
    type_vocab_size=1,
)  # fmt: skip
_MT5 = dict(
    model_type="mt5", vocab_size=250112, d_kv=64, feed_forward_proj="gated-gelu",
    relative_attention_num_buckets=32, relative_attention_max_distance=128,
    layer_norm_epsilon=1e-6, pad_token_id=0,
)  # fmt: skip
_NLLB = dict(
    model_type="m2m_100", vocab_size=256206, d_model=1024, encoder_attention_heads=16,
    activation_function="relu", scale_embedding=True, max_position_embeddings=1024,
    pad_token_id=1,
)  # fmt: skip
HF_TEXT_SHAPES = {
    "xlm-roberta-base": dict(
        _ROBERTA, model_type="xlm-roberta", vocab_size=250002, hidden_size=768,
        num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
    ),
    "xlm-roberta-large": dict(
        _ROBERTA, model_type="xlm-roberta", vocab_size=250002, hidden_size=1024,
        num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
    ),
    "roberta-base": dict(
        _ROBERTA, model_type="roberta", vocab_size=50265, hidden_size=768,
        num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
    ),
    "google/mt5-base": dict(
        _MT5, d_model=768, d_ff=2048, num_heads=12, num_layers=12,
    ),
    "google/mt5-xl": dict(
        _MT5, d_model=2048, d_ff=5120, num_heads=32, num_layers=24,
    ),
    "facebook/nllb-200-distilled-600M": dict(
        _NLLB, encoder_layers=12, encoder_ffn_dim=4096,
    ),
    "facebook/nllb-200-distilled-1.3B": dict(
        _NLLB, encoder_layers=24, encoder_ffn_dim=8192,
    ),
}  # fmt: skip
MODEL_TYPES = ("xlm-roberta", "roberta", "mt5", "m2m_100")
# Each model type's pooling when text_cfg names none (open_clip's arch_dict).
DEFAULT_POOLERS = {
    "xlm-roberta": "mean_pooler",
    "roberta": "mean_pooler",
    "mt5": "mean_pooler",
    "m2m_100": "cls_pooler",
}
# text_cfg keys of a Hugging Face tower, and the values keras-clip builds.
_TEXT_KEYS = {
    "hf_model_name": None,
    "hf_tokenizer_name": None,
    "hf_model_pretrained": None,
    "hf_pooler_type": ("mean_pooler", "cls_pooler", None),
    "hf_proj_type": ("mlp", "linear", None),
    "context_length": None,
    "tokenizer_kwargs": None,
    "output_tokens": (False,),
}


def hf_model_config(name):
    """Hugging Face's config of `name`: a directory's config.json, or the
    published one of a name in `HF_TEXT_SHAPES`."""
    path = os.path.join(os.fspath(name), "config.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    if name in HF_TEXT_SHAPES:
        return dict(HF_TEXT_SHAPES[name])
    raise ValueError(
        f"open_clip's text tower hf_model_name={name!r} is neither a local Hugging Face "
        f"directory nor one of {sorted(HF_TEXT_SHAPES)}: its shape is unknown offline."
    )


def _pooler(text, model_type):
    """open_clip's pooler of a text_cfg: its own, or the model type's default."""
    return text.get("hf_pooler_type") or DEFAULT_POOLERS[model_type]


def check_hf_text_options(text):
    """Checks a Hugging Face `text_cfg`; returns its Hugging Face config."""
    for key, value in text.items():
        if key not in _TEXT_KEYS:
            raise ValueError(f"Unknown open_clip option text_cfg.{key}={value!r}.")
        if _TEXT_KEYS[key] is not None and value not in _TEXT_KEYS[key]:
            raise ValueError(
                f"open_clip option text_cfg.{key}={value!r} is not supported (keras-clip "
                f"builds {[v for v in _TEXT_KEYS[key] if v is not None]})."
            )
    hf = hf_model_config(text["hf_model_name"])
    model_type = hf.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"open_clip's Hugging Face text tower of model_type {model_type!r} "
            f"({text['hf_model_name']}) is not built yet; keras-clip builds {MODEL_TYPES}."
        )
    if _pooler(text, model_type) == "cls_pooler" and model_type != "m2m_100":
        # XLM-R's and mT5's "cls_pooler" would be transformers' pooler_output.
        raise ValueError(
            f"open_clip option text_cfg.hf_pooler_type='cls_pooler' is not supported for "
            f"{model_type} (keras-clip builds mean_pooler there)."
        )
    if model_type == "m2m_100":
        if hf.get("activation_function", "relu") not in ("relu", "gelu"):
            raise ValueError(
                f"{text['hf_model_name']}: activation_function="
                f"{hf.get('activation_function')!r} is not built (relu and gelu are)."
            )
        return hf
    if hf.get("hidden_act", "gelu") != "gelu":
        raise ValueError(
            f"{text['hf_model_name']}: hidden_act={hf.get('hidden_act')!r} is not built (gelu is)."
        )
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{text['hf_model_name']}: only absolute position embeddings are built.")
    return hf


def from_open_clip_hf_text_config(config, tensors=None):
    """Shape fields of an open_clip config with a Hugging Face text tower:
    the image tower's as `from_open_clip_config` reads them (a timm SigLIP
    ViT's as `timm_siglip.timm_siglip_vision_shape` does, from `tensors`
    when given), and "text": "roberta", "t5" or "m2m100" with the encoder's
    arguments under that key."""
    text = config["text_cfg"]
    hf = check_hf_text_options(text)
    if is_timm_siglip_vision(config):  # NLLB-SigLIP
        shape = timm_siglip_vision_shape(config, tensors)
        shape["activation"] = "gelu"  # quick_gelu is inert: no open_clip tower here
    else:
        # The top-level and vision keys are checked there, with CLIP's text tower at its defaults.
        image = from_open_clip_config({**config, "text_cfg": {}})
        shape = {k: v for k, v in image.items() if not _is_text_field(k)}
    context_length = text.get("context_length", 77)
    projection = text.get("hf_proj_type", "mlp")
    name = text["hf_model_name"]
    if hf["model_type"] == "m2m_100":
        shape["text"] = "m2m100"
        shape["m2m100"] = {
            "vocabulary_size": hf["vocab_size"],
            "width": hf["d_model"],
            "num_layers": hf["encoder_layers"],
            "num_heads": hf["encoder_attention_heads"],
            "intermediate_size": hf["encoder_ffn_dim"],
            "context_length": context_length,
            "pad_token_id": hf.get("pad_token_id", 1),
            "scale_embedding": hf.get("scale_embedding", True),
            "activation": hf.get("activation_function", "relu"),
            "pooling": "cls" if _pooler(text, "m2m_100") == "cls_pooler" else "mean",
            "projection": projection,
            "layer_norm_epsilon": 1e-5,
            "hf_model_name": name,
        }
        return shape
    if hf["model_type"] == "mt5":
        shape["text"] = "t5"
        shape["t5"] = {
            "vocabulary_size": hf["vocab_size"],
            "width": hf["d_model"],
            "num_layers": hf["num_layers"],
            "num_heads": hf["num_heads"],
            "head_dim": hf["d_kv"],
            "intermediate_size": hf["d_ff"],
            "context_length": context_length,
            "num_buckets": hf.get("relative_attention_num_buckets", 32),
            "max_distance": hf.get("relative_attention_max_distance", 128),
            "pad_token_id": hf.get("pad_token_id", 0),
            "projection": projection,
            "layer_norm_epsilon": hf.get("layer_norm_epsilon", 1e-6),
            "hf_model_name": name,
        }
        return shape
    shape["text"] = "roberta"
    shape["roberta"] = {
        "vocabulary_size": hf["vocab_size"],
        "width": hf["hidden_size"],
        "num_layers": hf["num_hidden_layers"],
        "num_heads": hf["num_attention_heads"],
        "intermediate_size": hf["intermediate_size"],
        "context_length": context_length,
        "max_positions": hf["max_position_embeddings"],
        "pad_token_id": hf.get("pad_token_id", 1),
        "type_vocabulary_size": hf.get("type_vocab_size", 1),
        "projection": projection,
        "layer_norm_epsilon": hf.get("layer_norm_eps", 1e-5),
        "hf_model_name": name,
    }
    return shape


def _is_text_field(name):
    return name.startswith("text_") or name in ("context_length", "vocabulary_size", "end_token_id")
