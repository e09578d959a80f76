"""Published checkpoint formats in and out, against the reference PyTorch model.

The reference is transformers' `CLIPModel` with a tiny random config
(widths 64 with one 64-wide head, so OpenAI's width / 64 head rule holds
for the OpenAI-layout files too). Its tensors are also written in OpenAI's
and open_clip's layout by this file's own renaming (independent of the
package's), as safetensors, a pickled state dict and a TorchScript archive
like OpenAI's. Every form must give the reference's embeddings and logits.
"""

import json
import os

import numpy as np
import pytest

import keras_clip
from keras_clip.pretrained import read_safetensors
from keras_clip.pretrained import write_safetensors
from tests.helpers import to_numpy

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

END = 99
TOLERANCE = 1e-4


def _clip_config(
    width=64,
    intermediate=128,
    heads=1,
    layers=2,
    vocabulary=100,
    context=16,
    image_size=32,
    patch_size=8,
    activation="quick_gelu",
    end=END,
    projection=16,
    **extra,
):
    """A tiny transformers CLIPConfig, the same shape for both towers."""
    tower = dict(
        hidden_size=width,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        hidden_act=activation,
    )
    return transformers.CLIPConfig(
        text_config=dict(
            vocab_size=vocabulary, max_position_embeddings=context, eos_token_id=end, **tower
        ),
        vision_config=dict(image_size=image_size, patch_size=patch_size, **tower),
        projection_dim=projection,
        **extra,
    )


def _reference_model(activation="quick_gelu"):
    torch.manual_seed(0)
    config = _clip_config(activation=activation, logit_scale_init_value=3.0)
    model = transformers.CLIPModel(config).eval()
    with torch.no_grad():  # move the LayerNorms and biases off their 1 / 0 init
        for name, parameter in model.named_parameters():
            if "norm" in name or "layrnorm" in name or name.endswith("bias"):
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def _inputs():
    rng = np.random.default_rng(1)
    images = rng.normal(size=(4, 32, 32, 3)).astype("float32")
    token_ids = np.zeros((4, 16), "int32")
    for row, length in enumerate((3, 7, 15, 1)):
        token_ids[row, 0] = 98
        token_ids[row, 1:length] = rng.integers(2, 90, size=length - 1)
        token_ids[row, length] = END
    return images, token_ids


def _reference_outputs(model, images, token_ids):
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(token_ids, dtype=torch.long),
            pixel_values=torch.tensor(images.transpose(0, 3, 1, 2)),
        )
    return {
        "image": out.image_embeds.numpy(),
        "text": out.text_embeds.numpy(),
        "logits": out.logits_per_image.numpy(),
    }


def _keras_outputs(model, images, token_ids):
    image = to_numpy(model.encode_image(images))
    text = to_numpy(model.encode_text(token_ids))
    scale = float(to_numpy(model.logit_scale))
    return {"image": image, "text": text, "logits": scale * image @ text.T}


def _assert_match(actual, expected, tolerance=TOLERANCE):
    for key in ("image", "text", "logits"):
        np.testing.assert_allclose(actual[key], expected[key], atol=tolerance, rtol=0, err_msg=key)


def _openai_names(state):
    """The reference's tensors renamed to OpenAI's layout (q, k, v fused)."""
    out = {}
    towers = {"vision_model": "visual.transformer", "text_model": "transformer"}
    for name, value in state.items():
        value = value.numpy()
        if ".self_attn.q_proj." in name:
            kind = name.rsplit(".", 1)[1]
            parts = [
                state[name.replace("q_proj", p)].numpy() for p in ("q_proj", "k_proj", "v_proj")
            ]
            tower, rest = name.split(".encoder.layers.")
            index = rest.split(".")[0]
            out[f"{towers[tower]}.resblocks.{index}.attn.in_proj_{kind}"] = np.concatenate(parts)
            continue
        if ".self_attn.k_proj." in name or ".self_attn.v_proj." in name or "position_ids" in name:
            continue
        renamed = {
            "vision_model.embeddings.patch_embedding.weight": "visual.conv1.weight",
            "vision_model.embeddings.class_embedding": "visual.class_embedding",
            "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
            "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
            "text_model.embeddings.position_embedding.weight": "positional_embedding",
            "logit_scale": "logit_scale",
        }.get(name)
        if renamed is None and name.startswith(("visual_projection", "text_projection")):
            renamed, value = (
                {
                    "visual_projection.weight": "visual.proj",
                    "text_projection.weight": "text_projection",
                }[name],
                value.T,
            )
        if renamed is None:
            renamed = name
            for old, new in (
                ("vision_model.pre_layrnorm", "visual.ln_pre"),
                ("vision_model.post_layernorm", "visual.ln_post"),
                ("text_model.final_layer_norm", "ln_final"),
                ("vision_model.encoder.layers", "visual.transformer.resblocks"),
                ("text_model.encoder.layers", "transformer.resblocks"),
                ("self_attn.out_proj", "attn.out_proj"),
                ("layer_norm1", "ln_1"),
                ("layer_norm2", "ln_2"),
                ("mlp.fc1", "mlp.c_fc"),
                ("mlp.fc2", "mlp.c_proj"),
            ):
                renamed = renamed.replace(old, new)
        out[renamed] = value
    return out


class _Holder(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _save_torchscript(tensors, path):
    """A TorchScript archive holding `tensors` under their dotted names."""
    root = _Holder()
    for name, value in tensors.items():
        *modules, leaf = name.split(".")
        module = root
        for part in modules:
            if not hasattr(module, part):
                module.add_module(part, _Holder())
            module = getattr(module, part)
        module.register_parameter(leaf, torch.nn.Parameter(torch.tensor(value)))
    torch.jit.script(root).save(path)


def _save_pickled_shards(model, directory):
    """pytorch_model.bin in two shards with their index, as older transformers
    wrote large checkpoints (transformers 5 writes only safetensors)."""
    directory.mkdir()
    (directory / "config.json").write_text(model.config.to_json_string())
    state = model.state_dict()
    names = sorted(state)
    weight_map = {}
    for number, part in enumerate((names[::2], names[1::2]), start=1):
        shard = f"pytorch_model-0000{number}-of-00002.bin"
        torch.save({name: state[name] for name in part}, directory / shard)
        weight_map.update({name: shard for name in part})
    index = {"metadata": {}, "weight_map": weight_map}
    (directory / "pytorch_model.bin.index.json").write_text(json.dumps(index))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrained")
    model = _reference_model()
    images, token_ids = _inputs()
    model.save_pretrained(root / "hf")
    model.save_pretrained(root / "hf_sharded", max_shard_size="100KB")
    _save_pickled_shards(model, root / "hf_bin")
    openai = _openai_names(model.state_dict())
    write_safetensors(str(root / "open_clip.safetensors"), openai)
    torch.save({name: torch.tensor(v) for name, v in openai.items()}, root / "open_clip.bin")
    _save_torchscript(openai, str(root / "ViT-tiny.pt"))
    return {
        "root": root,
        "model": model,
        "images": images,
        "token_ids": token_ids,
        "expected": _reference_outputs(model, images, token_ids),
        "openai": openai,
    }


OPEN_CLIP_CONFIG = {
    "embed_dim": 16,
    "quick_gelu": True,
    "vision_cfg": {
        "image_size": 32,
        "layers": 2,
        "width": 64,
        "patch_size": 8,
        "head_width": 64,
        "mlp_ratio": 2.0,
    },
    "text_cfg": {
        "context_length": 16,
        "vocab_size": 100,
        "width": 64,
        "heads": 1,
        "layers": 2,
        "mlp_ratio": 2.0,
    },
}


@pytest.mark.parametrize(
    "form", ["hf", "hf_sharded", "hf_bin", "open_clip.safetensors", "open_clip.bin", "ViT-tiny.pt"]
)
def test_every_form_matches_the_reference(reference, form):
    architecture = OPEN_CLIP_CONFIG if form.startswith("open_clip") else None
    model = keras_clip.CLIP.from_pretrained(
        str(reference["root"] / form), architecture=architecture
    )
    assert model.image_encoder.activation == "quick_gelu"
    _assert_match(
        _keras_outputs(model, reference["images"], reference["token_ids"]), reference["expected"]
    )


def test_gelu_checkpoints_build_gelu_towers(tmp_path):
    """The activation is the checkpoint's: exact GELU here, not QuickGELU."""
    reference_model = _reference_model("gelu")
    reference_model.save_pretrained(tmp_path / "gelu")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "gelu"))
    assert model.text_encoder.activation == "gelu"
    images, token_ids = _inputs()
    _assert_match(
        _keras_outputs(model, images, token_ids),
        _reference_outputs(reference_model, images, token_ids),
    )


def test_pickled_files_without_pytorch_say_what_to_do(reference, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "torch", None)  # import fails
    with pytest.raises(ImportError, match="needs PyTorch.*safetensors"):
        keras_clip.CLIP.from_pretrained(
            str(reference["root"] / "open_clip.bin"), architecture=OPEN_CLIP_CONFIG
        )


def test_save_pretrained_reloads_in_transformers(reference, tmp_path):
    model = keras_clip.CLIP.from_pretrained(str(reference["root"] / "hf"))
    model.save_pretrained(str(tmp_path / "out"), format="huggingface")
    reloaded = transformers.CLIPModel.from_pretrained(str(tmp_path / "out")).eval()
    images, token_ids = reference["images"], reference["token_ids"]
    _assert_match(
        _reference_outputs(reloaded, images, token_ids), reference["expected"], tolerance=1e-6
    )
    # Every tensor written back is the reference's, bit for bit.
    written = read_safetensors(str(tmp_path / "out" / "model.safetensors"))
    for name, value in reference["model"].state_dict().items():
        if "position_ids" not in name:
            np.testing.assert_array_equal(written[name], value.numpy(), err_msg=name)
    processor = json.loads((tmp_path / "out" / "preprocessor_config.json").read_text())
    assert processor["image_mean"] == list(keras_clip.models.preprocessing.OPENAI_MEAN)


def test_open_clip_directory_round_trip(reference, tmp_path):
    model = keras_clip.CLIP.from_pretrained(
        str(reference["root"] / "open_clip.safetensors"),
        architecture=OPEN_CLIP_CONFIG,
        image_preprocessing=keras_clip.ImagePreprocessing(mean=(0.5,) * 3, std=(0.25,) * 3),
    )
    model.save_pretrained(str(tmp_path / "oc"), format="open_clip")
    written = read_safetensors(str(tmp_path / "oc" / "open_clip_model.safetensors"))
    assert sorted(written) == sorted(reference["openai"])
    for name, value in reference["openai"].items():
        np.testing.assert_array_equal(written[name], value, err_msg=name)
    reloaded = keras_clip.CLIP.from_pretrained(str(tmp_path / "oc"))
    assert reloaded.image_preprocessing == model.image_preprocessing  # travels along
    assert reloaded.image_preprocessing.std == (0.25, 0.25, 0.25)
    _assert_match(
        _keras_outputs(reloaded, reference["images"], reference["token_ids"]), reference["expected"]
    )


def _corrupt(reference, tmp_path, change):
    tensors = dict(reference["openai"])
    change(tensors)
    path = str(tmp_path / "bad.safetensors")
    write_safetensors(path, tensors)
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.pop("visual.ln_post.bias"), "tensor 'visual.ln_post.bias' is missing"),
        (
            lambda t: t.update({"visual.ln_post.offset": t.pop("visual.ln_post.bias")}),
            "tensor 'visual.ln_post.bias' is missing",
        ),
        (
            lambda t: t.update({"visual.extra.weight": np.zeros(3, "float32")}),
            "unexpected tensor 'visual.extra.weight'",
        ),
        (
            lambda t: t.update({"ln_final.weight": np.zeros(32, "float32")}),
            r"tensor 'ln_final.weight' has the wrong shape \(ln_final.weight \(32,\)\)",
        ),
    ],
)
def test_a_bad_checkpoint_names_the_tensor_and_changes_nothing(
    reference, tmp_path, change, message
):
    path = _corrupt(reference, tmp_path, change)
    with pytest.raises(ValueError, match=message):
        keras_clip.CLIP.from_pretrained(path, architecture=OPEN_CLIP_CONFIG)


def test_unsafe_pickles_are_refused(tmp_path):
    path = str(tmp_path / "evil.bin")
    torch.save({"visual.proj": torch.zeros(2), "hook": os.system}, path)
    with pytest.raises(ValueError, match="weights_only=True"):
        keras_clip.CLIP.from_pretrained(path, architecture=OPEN_CLIP_CONFIG)


def test_a_state_dict_without_architecture_is_refused(reference):
    with pytest.raises(ValueError, match="without its architecture"):
        keras_clip.CLIP.from_pretrained(str(reference["root"] / "open_clip.safetensors"))


def test_safetensors_files_agree_with_the_safetensors_package(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tensors = {
        "a": np.arange(6, dtype="float32").reshape(2, 3),
        "b": np.array([1, -2], "int64"),
        "c": np.ones((), "float16"),
    }
    write_safetensors(str(tmp_path / "ours.safetensors"), tensors, metadata={"format": "pt"})
    theirs = safetensors_numpy.load_file(str(tmp_path / "ours.safetensors"))
    safetensors_numpy.save_file(tensors, str(tmp_path / "theirs.safetensors"))
    ours = read_safetensors(str(tmp_path / "theirs.safetensors"))
    for name, value in tensors.items():
        np.testing.assert_array_equal(theirs[name], value)
        np.testing.assert_array_equal(ours[name], value)
        assert ours[name].dtype == value.dtype


def test_bfloat16_tensors_are_read_as_float32_and_bad_files_are_named(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    values = torch.randn(3, 4).to(torch.bfloat16)
    path = tmp_path / "bf16.safetensors"
    safetensors_torch.save_file({"w": values, "b": torch.ones(2)}, str(path))
    ours = read_safetensors(str(path))
    assert ours["w"].dtype == np.float32 and ours["b"].dtype == np.float32
    np.testing.assert_array_equal(ours["w"], values.float().numpy())
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ValueError, match=f"{path} is not a readable safetensors file"):
        read_safetensors(str(path))


def test_modified_resnet_matches_open_clip(reference, tmp_path):
    """A tiny OpenAI-layout ResNet CLIP (image tower: open_clip's own
    `ModifiedResNet`; text tower from the reference CLIPModel) loads with its
    embeddings and logits, and is written back tensor for tensor."""
    from tests.helpers import import_open_clip
    from tests.helpers import randomise_batch_norms

    open_clip = import_open_clip()
    torch.manual_seed(2)
    # Stages (1, 2, 1, 1): a stride-1 projection shortcut, plain blocks and
    # strided ones; 4 attention-pool heads of 64 channels.
    resnet = open_clip.modified_resnet.ModifiedResNet(
        [1, 2, 1, 1], output_dim=16, heads=4, image_size=64, width=8
    )
    visual = randomise_batch_norms(resnet, torch.Generator().manual_seed(3))
    tensors = {f"visual.{k}": v.numpy() for k, v in visual.state_dict().items()}
    tensors.update({k: v for k, v in reference["openai"].items() if not k.startswith("visual.")})
    path = str(tmp_path / "rn.safetensors")
    write_safetensors(path, tensors)
    config = {
        "embed_dim": 16,
        "quick_gelu": True,
        "text_cfg": OPEN_CLIP_CONFIG["text_cfg"],
        "vision_cfg": {"image_size": 64, "layers": [1, 2, 1, 1], "width": 8, "head_width": 64},
    }
    model = keras_clip.CLIP.from_pretrained(path, architecture=config)

    images = np.random.default_rng(4).normal(size=(3, 64, 64, 3)).astype("float32")
    with torch.no_grad():
        image = visual(torch.tensor(images.transpose(0, 3, 1, 2))).numpy()
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    text = reference["expected"]["text"]
    expected = {
        "image": image,
        "text": text,
        "logits": float(np.exp(reference["openai"]["logit_scale"])) * image @ text.T,
    }
    _assert_match(_keras_outputs(model, images, reference["token_ids"]), expected)

    model.save_pretrained(str(tmp_path / "rn_out"), format="open_clip")
    written = read_safetensors(str(tmp_path / "rn_out" / "open_clip_model.safetensors"))
    weights = {k: v for k, v in tensors.items() if not k.endswith("num_batches_tracked")}
    assert sorted(written) == sorted(weights)
    for name, value in weights.items():
        np.testing.assert_array_equal(written[name], value, err_msg=name)
    with pytest.raises(ValueError, match="no ResNet image tower"):
        model.save_pretrained(str(tmp_path / "rn_hf"), format="huggingface")


def test_keras_hub_preset_matches_keras_hub(tmp_path):
    """A keras-hub CLIPBackbone saved as a preset gives keras-hub's own
    embeddings (its text pooling at the largest id is end_token_id=None)."""
    import keras_hub

    vision = keras_hub.models.CLIPVisionEncoder(
        patch_size=8,
        hidden_dim=32,
        num_layers=2,
        num_heads=2,
        intermediate_dim=64,
        image_shape=(32, 32, 3),
    )
    text = keras_hub.models.CLIPTextEncoder(
        vocabulary_size=100,
        embedding_dim=32,
        hidden_dim=32,
        num_layers=2,
        num_heads=2,
        intermediate_dim=64,
        max_sequence_length=16,
    )
    backbone = keras_hub.models.CLIPBackbone(vision, text, projection_dim=16)
    rng = np.random.default_rng(5)
    for variable in backbone.weights:  # off the 1 / 0 initialisations
        if variable.trainable:
            variable.assign(variable.numpy() + 0.1 * rng.normal(size=variable.shape))
    position_ids = backbone.vision_encoder.embedding.position_ids  # as in converted presets
    position_ids.assign(np.arange(17).reshape(1, 17).astype(position_ids.dtype))
    backbone.save_to_preset(str(tmp_path / "preset"))
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "preset"))
    images, token_ids = _inputs()
    image = to_numpy(backbone.get_vision_embeddings(images))
    text_features = to_numpy(backbone.get_text_embeddings(token_ids))
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    text_features /= np.linalg.norm(text_features, axis=1, keepdims=True)
    scale = float(np.exp(to_numpy(backbone.clip_head.logit_scale)))
    expected = {"image": image, "text": text_features, "logits": scale * image @ text_features.T}
    _assert_match(_keras_outputs(model, images, token_ids), expected)


def test_readme_five_line_zero_shot_runs(tmp_path, monkeypatch):
    """README's snippet, run as written, on OpenAI-style files of a tiny model
    (TorchScript weights, gzipped merges) and a PNG image."""
    import gzip
    import re

    import tensorflow as tf

    from tests.test_clip_bpe import MERGES

    merges = tmp_path / "bpe_simple_vocab_16e6.txt.gz"
    with gzip.open(merges, "wt", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(MERGES) + "\n")
    vocabulary = keras_clip.Tokenizer.from_pretrained(str(merges)).vocabulary_size
    torch.manual_seed(0)
    config = _clip_config(
        intermediate=256,
        layers=1,
        vocabulary=vocabulary,
        context=77,
        image_size=224,
        patch_size=32,
        end=vocabulary - 1,
    )
    _save_torchscript(
        _openai_names(transformers.CLIPModel(config).state_dict()), str(tmp_path / "ViT-B-32.pt")
    )
    pixels = np.random.default_rng(0).integers(0, 256, (300, 260, 3)).astype("uint8")
    (tmp_path / "pet.jpg").write_bytes(tf.io.encode_png(pixels).numpy())
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    section = readme.split("## Quick start: a pretrained checkpoint")[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) == 5
    printed = []
    monkeypatch.chdir(tmp_path)
    exec(code, {"print": printed.append})
    probabilities = np.asarray(printed[0])
    assert probabilities.shape == (1, 3)
    assert abs(float(probabilities.sum()) - 1.0) < 1e-5


@pytest.mark.backend("tensorflow")  # the train command is tested on one backend
def test_train_command_fine_tunes_a_huggingface_checkpoint(tmp_path, capsys):
    """`keras-clip train --pretrained DIR`: the checkpoint's weights, tokenizer
    and image constants are the starting point, and training moves them."""
    import keras

    from keras_clip import cli
    from tests import image_folders
    from tests.test_pretrained_tokenizer import _huggingface_directory

    (tmp_path / "hf").mkdir()
    checkpoint = _huggingface_directory(tmp_path / "hf")  # vocab.json + merges.txt
    vocabulary = keras_clip.Tokenizer.from_pretrained(str(checkpoint)).vocabulary_size
    torch.manual_seed(0)
    config = _clip_config(
        width=32,
        intermediate=64,
        heads=2,
        layers=1,
        vocabulary=vocabulary,
        context=77,
        end=vocabulary - 1,
    )
    transformers.CLIPModel(config).save_pretrained(checkpoint)
    processor = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.3, 0.3, 0.3]}
    (checkpoint / "preprocessor_config.json").write_text(json.dumps(processor))
    folder = tmp_path / "photos"
    image_folders.build_folder(str(folder), "jsonl")
    assert (
        cli.main(
            [
                "train",
                str(folder),
                "--pretrained",
                str(checkpoint),
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--verbose",
                "0",
                "--output",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "out" / "train_report.json").read_text())
    assert report["pretrained"] == str(checkpoint)
    start = keras_clip.CLIP.from_pretrained(str(checkpoint))
    tuned = keras.saving.load_model(str(tmp_path / "out" / "model.keras"))
    preprocessing = tuned.image_preprocessing
    assert preprocessing.mean == (0.5, 0.5, 0.5) and preprocessing.std == (0.3, 0.3, 0.3)
    moved = [
        float(np.max(np.abs(to_numpy(a) - to_numpy(b))))
        for a, b in zip(start.weights, tuned.weights)
    ]
    assert len(moved) == len(start.weights) and max(moved) > 1e-4
