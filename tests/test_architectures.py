"""One table of architecture names: `CLIP.from_architecture(name)` and
`CLIP.from_pretrained(path, architecture=name)` build the same towers for
every name, and open_clip's names mean what open_clip builds."""

import glob
import json
import os

import numpy as np
import pytest

import keras_clip
from keras_clip.models import architectures
from keras_clip.models import open_clip_coca
from keras_clip.models import timm_swin
from keras_clip.models.hf_text import from_open_clip_hf_text_config
from keras_clip.models.open_clip_options import from_open_clip_config
from keras_clip.models.open_clip_options import is_open_clip_hf_text
from keras_clip.models.open_clip_options import is_open_clip_siglip
from keras_clip.models.timm_convnext import from_open_clip_convnext_config
from keras_clip.models.timm_convnext import is_open_clip_convnext
from keras_clip.models.timm_eva import from_open_clip_eva_config
from keras_clip.models.timm_eva import is_open_clip_eva
from keras_clip.models.timm_fastvit import from_open_clip_fastvit_config
from keras_clip.models.timm_fastvit import is_open_clip_fastvit
from tests.helpers import import_open_clip

# Resolving names does not depend on the backend: once, on torch (open_clip's).
pytestmark = pytest.mark.backend("torch")


class _Built(Exception):
    """Raised in place of building: carries the shape an entry point asked for."""


def _shape_asked_for(monkeypatch, build, *args, **kwargs):
    """The shape fields `build(*args, **kwargs)` hands to the tower builder,
    without building."""

    def capture(model_class, config, **model_kwargs):
        raise _Built(dict(config))

    monkeypatch.setattr(architectures, "_build", lambda c, config, k: capture(c, config))
    with pytest.raises(_Built) as built:
        build(*args, **kwargs)
    return built.value.args[0]


def _open_clip_configs():
    """open_clip's own model_configs/*.json, as the installed package ships them."""
    open_clip = import_open_clip()
    folder = os.path.join(os.path.dirname(open_clip.__file__), "model_configs")
    configs = {}
    for path in glob.glob(os.path.join(folder, "*.json")):
        with open(path) as f:
            configs[os.path.basename(path)[:-5]] = json.load(f)
    return configs


def test_both_entry_points_resolve_every_name_alike(monkeypatch, tmp_path):
    import safetensors.numpy

    state_dict = str(tmp_path / "weights.safetensors")
    safetensors.numpy.save_file({"unused": np.zeros(1, "float32")}, state_dict)
    names = architectures.architecture_names()
    assert len(names) == 4 + 144
    compared = 0
    for name in names:
        config = architectures.open_clip_architectures().get(name)
        if config is not None and is_open_clip_siglip(config):
            with pytest.raises(ValueError, match="from_pretrained"):
                keras_clip.CLIP.from_architecture(name)
            continue
        direct = _shape_asked_for(monkeypatch, keras_clip.CLIP.from_architecture, name)
        loaded = _shape_asked_for(
            monkeypatch, keras_clip.CLIP.from_pretrained, state_dict, architecture=name
        )
        assert direct == loaded, name
        compared += 1
    # keras-clip's, open_clip's own (CLIPA too), EVA / PE / timm ViTs, MobileCLIP,
    # ConvNeXt, HF text towers (NLLB-SigLIP too), Swin, CoCa.
    assert compared == 4 + 55 + 32 + 11 + 6 + 9 + 1 + 4


def test_the_table_holds_every_open_clip_config_that_loads_exactly():
    """All 144 of open_clip 3.3: 55 with open_clip's own towers (CLIPA's and ViT-M-16-alt's
    options in tests/test_open_clip_options.py), 26 SigLIP (tests/test_open_clip_siglip.py), 12
    EVA-01 / EVA-02 / PE-Core, 3 MobileCLIP ViTs, ViT-M/16 GAP and RelPos, 15 ViTamin
    (tests/test_open_clip_eva.py),
    11 ConvNeXt (tests/test_open_clip_convnext.py), 6 MobileCLIP FastViTs
    (tests/test_open_clip_fastvit.py), 9 with RoBERTa, XLM-RoBERTa, mT5 or NLLB text towers
    (NLLB-SigLIP's 2 with timm's SigLIP ViT; tests/test_open_clip_hf_text.py), 1 Swin (tests/test_open_clip_swin.py), 4 CoCa
    (tests/test_open_clip_coca.py)."""
    from keras_clip.pretrained.configs import is_supported_open_clip_config

    supported = {
        name: config
        for name, config in _open_clip_configs().items()
        if is_supported_open_clip_config(config)
    }
    assert architectures.open_clip_architectures() == supported
    assert len(supported) == 144


def test_open_clip_names_mean_what_open_clip_builds():
    shipped = _open_clip_configs()
    compared = 0
    for name in architectures.architecture_names():
        if name in architectures.KERAS_CLIP_ARCHITECTURES:
            continue
        config = shipped[name]
        assert config == architectures.open_clip_architectures()[name], name
        if is_open_clip_siglip(config):
            continue
        shape = architectures.architecture_config(name)
        read = from_open_clip_config
        if open_clip_coca.is_open_clip_coca(config):  # coca_roberta has an HF text tower too
            read = open_clip_coca.from_open_clip_coca_config
        elif is_open_clip_eva(config):
            read = from_open_clip_eva_config
        elif is_open_clip_convnext(config):
            read = from_open_clip_convnext_config
        elif is_open_clip_fastvit(config):
            read = from_open_clip_fastvit_config
        elif is_open_clip_hf_text(config):
            read = from_open_clip_hf_text_config
        elif timm_swin.is_open_clip_swin(config):
            read = timm_swin.from_open_clip_swin_config
        assert shape == read(config), name
        # open_clip's naming: "-quickgelu" is OpenAI's activation, else GELU
        # (roberta-ViT-B-32's config asks for QuickGELU without the suffix).
        quick = name.endswith("-quickgelu") or name == "roberta-ViT-B-32"
        expected = "quick_gelu" if quick else "gelu"
        assert shape["activation"] == expected, name
        compared += 1
    assert compared == 55 + 32 + 11 + 6 + 9 + 1 + 4
    assert architectures.architecture_config("ViT-bigG-14")["vision_width"] == 1664
    assert architectures.architecture_config("ViT-B-16-plus-240")["image_size"] == 240
    # open_clip feeds ViTamin-XL-384's position-free timm tower 256-pixel images.
    assert architectures.architecture_config("ViTamin-XL-384")["image_size"] == 256


@pytest.mark.parametrize("name", ["ViT-B-32-quickgelu", "RN50"])
def test_a_published_name_builds_open_clips_model(name, tmp_path):
    """Built for real through both entry points: the towers' configs are
    equal, the parameters count as open_clip's (OpenAI's published totals),
    and open_clip's weights load into the name's towers."""
    import safetensors.torch
    import torch

    open_clip = import_open_clip()
    torch.manual_seed(0)
    reference = open_clip.create_model(name)
    path = str(tmp_path / "open_clip.safetensors")
    safetensors.torch.save_file(
        {k: v.contiguous() for k, v in reference.state_dict().items()}, path
    )
    direct = keras_clip.CLIP.from_architecture(name)
    loaded = keras_clip.CLIP.from_pretrained(path, architecture=name)
    for tower in ("image_encoder", "text_encoder"):
        assert getattr(direct, tower).get_config() == getattr(loaded, tower).get_config()
    expected = {"ViT-B-32-quickgelu": 151_277_313, "RN50": 102_007_137}[name]
    assert sum(p.numel() for p in reference.parameters()) == expected
    for model in (direct, loaded):
        assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == expected


def test_keras_clip_names_keep_their_activation_and_unknown_names_are_refused():
    assert architectures.architecture_config("shapes-vit")["activation"] == "quick_gelu"
    gelu = architectures.architecture_config("tiny-vit", activation="gelu")
    assert gelu["activation"] == "gelu"
    for name in ("ViT-Z-99", "shapes-vit-quickgelu"):
        with pytest.raises(ValueError, match=f"Unknown architecture '{name}'"):
            keras_clip.CLIP.from_architecture(name)
