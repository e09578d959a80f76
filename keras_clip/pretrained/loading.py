"""`CLIP.from_pretrained` and `CLIP.save_pretrained`: the formats on disk.

Recognised forms of a local path:

- a Hugging Face `CLIPModel` or `MetaClip2Model` directory: config.json
  with model.safetensors or pytorch_model.bin, whole or sharded (with
  NAME.index.json);
- a Hugging Face `SiglipModel` directory (SigLIP, SigLIP 2 at fixed
  resolution; see `keras_clip.pretrained.siglip`);
- an open_clip directory: open_clip_config.json with
  open_clip_model.safetensors or open_clip_pytorch_model.bin (open_clip's
  own SigLIP models too: `keras_clip.pretrained.open_clip_siglip`);
- a keras-hub CLIP or SigLIP preset directory (a `CLIPBackbone` or
  `SigLIPBackbone` in Keras format);
- a keras-clip `.keras` file;
- a state-dict file in OpenAI's / open_clip's layout (.safetensors, .bin,
  .pt, .pth), including OpenAI's original TorchScript files. The shape is
  read off the tensors for OpenAI's files; for other files pass
  `architecture` (an open_clip name such as "ViT-B-32" or
  "ViT-B-32-quickgelu", an open_clip model config dict, or its JSON file).
"""

import json
import os

from keras_clip.layers.initialization import loading_weights
from keras_clip.models.architectures import architecture_config
from keras_clip.models.architectures import build_from_shape
from keras_clip.models.architectures import dtype_policy_scope
from keras_clip.models.architectures import open_clip_architectures
from keras_clip.models.hf_text import from_open_clip_hf_text_config
from keras_clip.models.open_clip_coca import from_open_clip_coca_config
from keras_clip.models.open_clip_coca import is_open_clip_coca
from keras_clip.models.open_clip_options import from_open_clip_config
from keras_clip.models.open_clip_options import is_open_clip_hf_text
from keras_clip.models.open_clip_options import is_open_clip_siglip
from keras_clip.models.preprocessing import OPENAI_MEAN
from keras_clip.models.preprocessing import OPENAI_STD
from keras_clip.models.preprocessing import ImagePreprocessing
from keras_clip.models.timm_convnext import is_open_clip_convnext
from keras_clip.models.timm_eva import is_open_clip_eva
from keras_clip.models.timm_fastvit import is_open_clip_fastvit
from keras_clip.models.timm_swin import is_open_clip_swin
from keras_clip.pretrained import configs
from keras_clip.pretrained import layouts
from keras_clip.pretrained import open_clip_coca
from keras_clip.pretrained import open_clip_convnext
from keras_clip.pretrained import open_clip_eva
from keras_clip.pretrained import open_clip_fastvit
from keras_clip.pretrained import open_clip_hf_text
from keras_clip.pretrained import open_clip_swin
from keras_clip.pretrained import siglip
from keras_clip.pretrained.files import is_torchscript
from keras_clip.pretrained.files import read_json
from keras_clip.pretrained.files import read_state_dict
from keras_clip.pretrained.keras_hub_preset import is_keras_hub_preset
from keras_clip.pretrained.keras_hub_preset import keras_hub_weight_map
from keras_clip.pretrained.keras_hub_preset import read_keras_hub_preset
from keras_clip.pretrained.keras_hub_siglip import is_keras_hub_siglip
from keras_clip.pretrained.keras_hub_siglip import read_keras_hub_siglip
from keras_clip.pretrained.open_clip_siglip import huggingface_siglip_config
from keras_clip.pretrained.open_clip_siglip import huggingface_siglip_tensors
from keras_clip.pretrained.open_clip_writers import open_clip_writer
from keras_clip.pretrained.processor_config import processor_config
from keras_clip.pretrained.processor_config import read_processor
from keras_clip.pretrained.safetensors_io import SafetensorsTensors
from keras_clip.pretrained.safetensors_io import write_safetensors
from keras_clip.pretrained.weight_map import export_weight_map
from keras_clip.pretrained.weight_map import load_weight_map

FORMATS = ("huggingface", "open_clip")


def _read_weights(directory, names):
    """The first of `names` found in `directory`, whole or sharded (NAME.index.json
    lists each tensor's shard, as Hugging Face writes large checkpoints)."""
    for name in names:
        index = os.path.join(directory, name + ".index.json")
        if os.path.exists(index):
            shards = sorted(set(read_json(index)["weight_map"].values()))
            paths = [os.path.join(directory, shard) for shard in shards]
            if name.endswith(".safetensors"):
                return SafetensorsTensors(paths)
            tensors = {}
            for path in paths:
                tensors.update(read_state_dict(path))
            return tensors
        if os.path.exists(os.path.join(directory, name)):
            return read_state_dict(os.path.join(directory, name))
    raise FileNotFoundError(
        f"{directory} has none of the weight files {names} (whole, "
        "or sharded with NAME.index.json)."
    )


def _preprocessing(mean, std, resize_mode="shortest", interpolation="bicubic"):
    """The model argument that says how the checkpoint's images are prepared."""
    return {"image_preprocessing": ImagePreprocessing(None, mean, std, resize_mode, interpolation)}


def _processor_preprocessing(directory, mean, std, resize_mode, interpolation, *naflex):
    """From a Hugging Face preprocessor_config.json, else the defaults given
    (for NaFlex, also patch_size and max_num_patches)."""
    default = ImagePreprocessing(None, mean, std, resize_mode, interpolation, *naflex)
    return {"image_preprocessing": read_processor(directory, default)}


def _open_clip_config(architecture):
    """The open_clip model config of `architecture` (a dict, its JSON file
    or a built-in open_clip name), or None for keras-clip's own names."""
    if isinstance(architecture, dict):
        return architecture.get("model_cfg", architecture)
    if isinstance(architecture, str) and architecture.endswith(".json"):
        return _open_clip_config(read_json(architecture))
    return open_clip_architectures().get(architecture)


def _open_clip_checkpoint(architecture, tensors, preprocess):
    """read_checkpoint's answer for open_clip tensors of `architecture`;
    SigLIP configs are read as Hugging Face SigLIP (`open_clip_siglip`)."""
    config = _open_clip_config(architecture)
    interpolation = "bicubic"
    if config is not None and is_open_clip_coca(config):
        mean, std, resize_mode = OPENAI_MEAN, OPENAI_STD, "shortest"
        shape = from_open_clip_coca_config(config)
        tensors, layout = open_clip_coca.split_attention(tensors), "open_clip_coca"
    elif config is not None and is_open_clip_siglip(config):
        mean, std, resize_mode = siglip.SIGLIP_MEAN, siglip.SIGLIP_STD, "squash"
        shape = huggingface_siglip_config(config, tensors)
        tensors, layout = huggingface_siglip_tensors(tensors), "huggingface_siglip"
    elif config is not None and is_open_clip_eva(config):
        name = config["vision_cfg"]["timm_model_name"]
        mean, std, resize_mode, interpolation = open_clip_eva.eva_preprocessing(name)
        shape = open_clip_eva.eva_shape(config, tensors)
        tensors, layout = open_clip_eva.split_attention(tensors), "open_clip_eva"
    elif config is not None and is_open_clip_fastvit(config):
        name = config["vision_cfg"]["timm_model_name"]
        mean, std, resize_mode, interpolation = open_clip_fastvit.fastvit_preprocessing(name)
        shape, layout = open_clip_fastvit.fastvit_shape(config, tensors), "open_clip_fastvit"
    elif config is not None and is_open_clip_convnext(config):
        mean, std, resize_mode = OPENAI_MEAN, OPENAI_STD, "shortest"
        shape, layout = open_clip_convnext.convnext_shape(config, tensors), "open_clip_convnext"
    elif config is not None and is_open_clip_swin(config):
        mean, std, resize_mode = OPENAI_MEAN, OPENAI_STD, "shortest"
        shape, layout = open_clip_swin.swin_shape(config, tensors), "open_clip_swin"
    elif config is not None and is_open_clip_hf_text(config):
        shape, layout = from_open_clip_hf_text_config(config, tensors), "open_clip_hf_text"
        mean, std, resize_mode = OPENAI_MEAN, OPENAI_STD, "shortest"
        if shape["vision"] == "siglip":  # NLLB-SigLIP: open_clip's SigLIP defaults
            mean, std, resize_mode = siglip.SIGLIP_MEAN, siglip.SIGLIP_STD, "squash"
    else:
        mean, std, resize_mode = OPENAI_MEAN, OPENAI_STD, "shortest"
        if config is None:
            shape = architecture_config(architecture)
        else:
            shape = from_open_clip_config(config)
        layout = "open_clip"
    preprocessing = _preprocessing(
        preprocess.get("mean", mean),
        preprocess.get("std", std),
        preprocess.get("resize_mode", resize_mode),
        preprocess.get("interpolation", interpolation),
    )
    return shape, tensors, layout, preprocessing


def read_checkpoint(path, architecture=None):
    """(shape fields, tensors, layout, preprocessing) of a checkpoint path;
    preprocessing holds the model argument image_preprocessing."""
    path = os.fspath(path)
    if os.path.isdir(path):
        config_path = os.path.join(path, "config.json")
        config = read_json(config_path) if os.path.exists(config_path) else {}
        if is_keras_hub_siglip(config):
            shape, tensors, mean_and_std = read_keras_hub_siglip(path)
            mean, std = mean_and_std or (siglip.SIGLIP_MEAN, siglip.SIGLIP_STD)
            preprocessing = _preprocessing(mean, std, "squash", "bilinear")
            return shape, tensors, "huggingface_siglip", preprocessing
        if is_keras_hub_preset(config):
            shape, tensors, mean_and_std = read_keras_hub_preset(path)
            mean, std = mean_and_std or (OPENAI_MEAN, OPENAI_STD)
            return shape, tensors, "keras_hub", _preprocessing(mean, std)
        if os.path.exists(os.path.join(path, "open_clip_config.json")):
            config = read_json(os.path.join(path, "open_clip_config.json"))
            tensors = _read_weights(
                path, ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
            )
            preprocess = config.get("preprocess_cfg", {})
            return _open_clip_checkpoint(architecture or config, tensors, preprocess)
        if siglip.is_siglip_config(config):
            tensors = _read_weights(path, ["model.safetensors", "pytorch_model.bin"])
            fitting = ("squash", "bilinear")
            if siglip.is_naflex_config(config):
                patch_size = config.get("vision_config", {}).get("patch_size", 16)
                fitting = ("naflex", "bilinear", patch_size, siglip.NAFLEX_PATCH_BUDGET)
            mean_and_std = (siglip.SIGLIP_MEAN, siglip.SIGLIP_STD)
            preprocessing = _processor_preprocessing(path, *mean_and_std, *fitting)
            return config, tensors, "huggingface_siglip", preprocessing
        if "vision_config" in config:
            shape = configs.from_huggingface_config(config)
            tensors = _read_weights(path, ["model.safetensors", "pytorch_model.bin"])
            preprocessing = _processor_preprocessing(
                path, OPENAI_MEAN, OPENAI_STD, "shortest", "bicubic"
            )
            return shape, tensors, "huggingface", preprocessing
        raise ValueError(
            f"{path} is not a Hugging Face CLIPModel directory (config.json with "
            "vision_config), an open_clip one (open_clip_config.json) or a keras-hub "
            "CLIP preset."
        )
    tensors = read_state_dict(path)
    if architecture is None:
        if not is_torchscript(path):
            raise ValueError(
                f"{path} is a state dict without its architecture: pass "
                "architecture='ViT-B-32' (open_clip's name; '-quickgelu' for OpenAI's "
                "weights), or its open_clip model config."
            )
        shape = configs.from_openai_state(tensors)
        return shape, tensors, "open_clip", _preprocessing(OPENAI_MEAN, OPENAI_STD)
    return _open_clip_checkpoint(architecture, tensors, {})


def _from_keras_file(path, model_kwargs):
    """A saved keras-clip model; with model arguments (micro_batches, a new
    objective, ...), a copy built with them that has the saved weights (the
    objective's own only when it is kept; the optimizer state is not)."""
    import keras

    from keras_clip import objectives

    model = keras.saving.load_model(path)
    if not model_kwargs:
        return model
    config = model.get_config()
    unknown = sorted(set(model_kwargs) - set(config))
    if unknown:
        raise ValueError(
            f"Unknown model arguments {unknown} for {path}; expected some of {sorted(config)}."
        )
    if "objective" in model_kwargs:
        model_kwargs["objective"] = keras.saving.serialize_keras_object(
            objectives.get(model_kwargs["objective"])
        )
    rebuilt = type(model).from_config({**config, **model_kwargs})
    keep_objective = "objective" not in model_kwargs

    def weights(m):
        skip = set() if keep_objective else {id(v) for v in m.objective.weights}
        return [v for v in m.weights if id(v) not in skip]

    for target, source in zip(weights(rebuilt), weights(model), strict=True):
        target.assign(source)
    return rebuilt


def from_pretrained(model_class, path, architecture=None, **model_kwargs):
    """Builds the checkpoint's architecture and loads every tensor, strictly.

    See `CLIP.from_pretrained`.
    """

    if os.fspath(path).endswith(".keras"):
        return _from_keras_file(path, model_kwargs)
    shape, tensors, layout, preprocessing = read_checkpoint(path, architecture)
    for name, value in preprocessing.items():
        model_kwargs.setdefault(name, value)
    with loading_weights():  # no random token tables: every weight is assigned below
        if layout == "huggingface_siglip":
            with dtype_policy_scope(model_kwargs.get("dtype")):
                model = siglip.build_siglip(model_class, shape, **model_kwargs)
        else:
            model = build_from_shape(model_class, shape, **model_kwargs)
    entries = {
        "huggingface_siglip": siglip.huggingface_siglip_weight_map,
        "huggingface": layouts.huggingface_weight_map,
        "keras_hub": keras_hub_weight_map,
        "open_clip": layouts.openai_weight_map,
        "open_clip_eva": open_clip_eva.eva_weight_map,
        "open_clip_convnext": open_clip_convnext.convnext_weight_map,
        "open_clip_swin": open_clip_swin.swin_weight_map,
        "open_clip_coca": open_clip_coca.coca_weight_map,
        "open_clip_fastvit": open_clip_fastvit.fastvit_weight_map,
        "open_clip_hf_text": open_clip_hf_text.hf_text_weight_map,
    }[layout](model)
    load_weight_map(entries, tensors, str(path), ignored=layouts.is_non_weight)
    return model


def save_pretrained(model, path, format="huggingface"):
    """Writes `model` as a Hugging Face or open_clip directory.

    See `CLIP.save_pretrained`.
    """
    if format not in FORMATS:
        raise ValueError(f"Unknown format {format!r}; expected one of {FORMATS}.")
    if siglip.is_siglip_model(model):
        if format != "huggingface":
            raise ValueError("A SigLIP model saves as format='huggingface' (SiglipModel).")
        return _write_directory(
            path,
            {
                "config.json": siglip.to_huggingface_siglip_config(model),
                "preprocessor_config.json": processor_config(
                    model.image_preprocessing,
                    "Siglip2ImageProcessor"
                    if siglip.is_naflex_model(model)
                    else "SiglipImageProcessor",
                ),
            },
            "model.safetensors",
            {
                **export_weight_map(siglip.huggingface_siglip_weight_map(model)),
                **siglip.identity_text_head(model),  # SiglipModel always has a head
            },
        )
    timm_tower = open_clip_writer(model)
    if timm_tower is not None:
        if format != "open_clip":
            raise ValueError(
                "A CoCa, a model with a timm image tower (EVA, PE-Core, MobileCLIP, ConvNeXt, "
                "Swin) or a RoBERTa text tower saves as format='open_clip' (transformers has no such "
                "CLIPModel)."
            )
        model_cfg, tensors = timm_tower(model)
        return _write_directory(
            path,
            {"open_clip_config.json": _open_clip_json(model_cfg, model.image_preprocessing)},
            "open_clip_model.safetensors",
            tensors,
        )
    try:
        shape = configs.model_shape(model)
    except AttributeError:
        raise ValueError(
            "save_pretrained needs keras-clip's own towers (ViT or "
            "modified ResNet and TextTransformer)."
        ) from None
    preprocessing = model.image_preprocessing
    if format == "huggingface":
        config = configs.to_huggingface_config(shape)  # refuses what CLIPModel cannot hold
        tensors = export_weight_map(layouts.huggingface_weight_map(model))
        files = {
            "config.json": config,
            "preprocessor_config.json": processor_config(preprocessing, "CLIPImageProcessor"),
        }
        weights = "model.safetensors"
    else:
        tensors = export_weight_map(layouts.openai_weight_map(model))
        model_cfg = configs.to_open_clip_config(shape)
        files = {"open_clip_config.json": _open_clip_json(model_cfg, preprocessing)}
        weights = "open_clip_model.safetensors"
    _write_directory(path, files, weights, tensors)


def _open_clip_json(model_cfg, preprocessing):
    """open_clip_config.json: the model config and how images are prepared."""
    return {
        "model_cfg": model_cfg,
        "preprocess_cfg": {
            "mean": list(preprocessing.mean),
            "std": list(preprocessing.std),
            "resize_mode": preprocessing.resize_mode,
            "interpolation": preprocessing.interpolation,
        },
    }


def _write_directory(path, files, weights, tensors):
    """JSON `files` (name -> content) and the safetensors `weights` file."""
    os.makedirs(path, exist_ok=True)
    for name, content in files.items():
        with open(os.path.join(path, name), "w") as f:
            json.dump(content, f, indent=2)
    write_safetensors(os.path.join(path, weights), tensors, metadata={"format": "pt"})
