"""open_clip's EVA-01, EVA-02 and PE-Core models (timm `Eva` image tower,
CustomTextCLIP text tower) load with open_clip's outputs on every backend,
write back so that open_clip reloads them bit for bit, train, and refuse
what they cannot build by name (keras_clip.models.timm_eva,
keras_clip.pretrained.open_clip_eva)."""

import copy
import functools
import json

import keras
import numpy as np
import pytest

import keras_clip
from keras_clip.models import timm_eva
from tests.helpers import assert_serves_the_embeddings
from tests.helpers import import_open_clip
from tests.helpers import random_open_clip_model

# Shrunken timm towers, registered under names of each family's pattern:
# the size word gives the heads (as in the real names), the widths are tiny.
_PE = dict(
    mlp_ratio=4.0,
    global_pool="map",
    attn_type="rope",
    use_pre_transformer_norm=True,
    use_rot_pos_emb=True,
    rope_grid_offset=1.0,
    rope_grid_indexing="xy",
    attn_pool_num_heads=8,
    attn_pool_mlp_ratio=4.0,
    ref_feat_shape=(4, 4),  # PE's reference grid is its own: 32 / 8
)
_EVA02 = dict(
    qkv_fused=False,
    mlp_ratio=4 * 2 / 3,
    swiglu_mlp=True,
    scale_mlp=True,
    scale_attn_inner=True,
    use_rot_pos_emb=True,
    ref_feat_shape=(16, 16),
)
TINY_TOWERS = {
    "vit_pe_core_tiny_patch8_32": dict(_PE, embed_dim=48, depth=2, num_heads=3),
    "vit_pe_core_gigantic_patch8_32": dict(
        _PE,
        embed_dim=64,
        depth=2,
        num_heads=16,
        class_token=False,
        mlp_ratio=8960 / 1536,
        rope_grid_offset=0.0,
    ),
    "eva02_base_patch8_clip_32": dict(_EVA02, embed_dim=96, depth=2, num_heads=12),
    "eva02_enormous_patch8_clip_32": dict(
        embed_dim=64, depth=2, num_heads=16, mlp_ratio=15360 / 1792, use_post_norm=True
    ),
    "eva_giant_patch8_32": dict(embed_dim=64, depth=2, num_heads=16, mlp_ratio=6144 / 1408),
    # timm's plain VisionTransformer: MobileCLIP2-L-14's and MobileCLIP-B's towers.
    "vit_large_patch8_clip_32": dict(embed_dim=64, depth=2, num_heads=16, pre_norm=True),
    "vit_base_mci_32": dict(embed_dim=96, depth=2, num_heads=12, no_embed_class=True),
    # open_clip's vit_relpos_medium_patch16_cls_224 and vit_medium_patch16_gap_256
    # (plain CLIPs, TimmModel "linear" heads).
    "vit_relpos_medium_patch8_cls_32": dict(
        embed_dim=64,
        depth=2,
        num_heads=8,
        qkv_bias=False,
        fc_norm=False,
        rel_pos_dim=16,
        class_token=True,
        global_pool="token",
        init_values=0.3,
    ),  # fmt: skip
    "vit_medium_patch8_gap_32": dict(
        embed_dim=64,
        depth=2,
        num_heads=8,
        class_token=False,
        global_pool="avg",
        qkv_bias=False,
        init_values=0.3,
        fc_norm=False,
    ),  # fmt: skip
    # ViTamin (stems of 8 / 16 channels, stages of 2 and 3 blocks); XL has no positions.
    "vitamin_small_32": dict(embed_dim=48, depth=2, num_heads=6),
    "vitamin_xlarge_32": dict(embed_dim=64, depth=2, num_heads=16, pos_embed="none"),
}


def _create_tiny_tower(name, arguments, pretrained=False, **kwargs):
    import torch
    from timm.models import eva
    from timm.models import vision_transformer
    from timm.models import vision_transformer_hybrid as hybrid

    if name.startswith("vitamin_"):  # a small stem of ViTamin's layout
        from timm.models import vitamin

        stem = vitamin.VitCfg(
            embed_dim=(8, 16, arguments["embed_dim"]),
            depths=(2, 3, 1),
            stem_width=8,
            conv_cfg=vitamin.VitConvCfg(norm_layer="layernorm2d", norm_eps=1e-6),
            head_type="1d",
        )
        shape = dict(arguments, img_size=32, mlp_layer=vitamin.GeGluMlp, mlp_ratio=2.0)
        shape.update(class_token=False, global_pool="avg", embed_cfg=stem)
        create = vitamin._create_vitamin
    elif "_mci_" in name:  # MobileCLIP's convolutional stem, scaled to the width
        width = arguments["embed_dim"]
        kwargs["backbone"] = hybrid.ConvStem(
            channels=(width // 4, width // 4, width),
            stride=(4, 2, 2),
            kernel_size=(4, 2, 2),
            padding=0,
            act_layer=torch.nn.GELU,
        )
        shape = dict(arguments, img_size=32, embed_args=dict(proj=False))
        create = hybrid._create_vision_transformer_hybrid
    elif name.startswith("vit_relpos_"):
        from timm.models import vision_transformer_relpos as relpos

        shape = dict(arguments, img_size=32, patch_size=8)
        create = relpos._create_vision_transformer_relpos
    elif ("_clip_" in name or "_gap_" in name) and name.startswith("vit_"):
        shape = dict(arguments, img_size=32, patch_size=8)
        create = vision_transformer._create_vision_transformer
    else:
        shape = dict(arguments, img_size=32, patch_size=8)
        create = eva._create_eva
    return create(name, pretrained=pretrained, **dict(shape, **kwargs))


def _register_tiny_towers():
    import timm
    from timm.layers import LayerNorm

    for name, arguments in TINY_TOWERS.items():
        if timm.models.is_model(name):
            continue
        if name.startswith("vit_pe") or name.startswith("vit_large"):
            arguments = dict(arguments, norm_layer=functools.partial(LayerNorm, eps=1e-5))

        def create(pretrained=False, _name=name, _arguments=arguments, **kwargs):
            return _create_tiny_tower(_name, _arguments, pretrained, **kwargs)

        create.__name__ = name
        timm.models.register_model(create)


def _config(timm_name, bidirectional=False):
    text = {"context_length": 12, "vocab_size": 100, "width": 32, "heads": 4, "layers": 2}
    if bidirectional:  # MobileCLIP's text towers
        text["no_causal_mask"] = True
    if timm_name.startswith("vitamin_"):  # CustomTextCLIP, open_clip's head
        vision = {"image_size": 32, "timm_model_name": timm_name, "timm_model_pretrained": False}
        vision.update(timm_pool="", timm_proj="linear")
        return {"embed_dim": 32, "custom_text": True, "vision_cfg": vision, "text_cfg": text}
    if "_gap_" in timm_name or "_relpos_" in timm_name:  # plain CLIPs, open_clip's head
        vision = {"image_size": 32, "timm_model_name": timm_name, "timm_model_pretrained": False}
        vision.update(timm_pool="", timm_proj="linear")
        return {"embed_dim": 32, "vision_cfg": vision, "text_cfg": text}
    return {
        "embed_dim": 32,
        "custom_text": True,
        "vision_cfg": {
            "image_size": 32,
            "timm_model_name": timm_name,
            "timm_model_pretrained": False,
            "timm_pool": "map" if timm_name.startswith("vit_pe") else "token",
            "timm_proj": None,
        },
        "text_cfg": text,
    }


def _open_clip_directory(config, directory, seed=0):
    """A random open_clip CustomTextCLIP, every tensor perturbed, saved as
    an open_clip directory."""
    import_open_clip()
    _register_tiny_towers()
    directory.mkdir()
    path = directory / "open_clip_model.safetensors"
    model = random_open_clip_model(config, path, seed, batch_norms=True)
    (directory / "open_clip_config.json").write_text(json.dumps({"model_cfg": config}))
    return model


def _batch(image_size=32, context=12, vocabulary=100):
    rng = np.random.default_rng(1)
    images = rng.normal(size=(3, image_size, image_size, 3)).astype("float32")
    token_ids = rng.integers(1, vocabulary - 1, size=(3, context)).astype("int32")
    token_ids[0, 5], token_ids[0, 6:] = vocabulary - 1, 0  # argmax pooling at the end token
    return images, token_ids


def _assert_same_outputs(model, reference, images, token_ids):
    import torch

    with torch.no_grad():
        image, text, scale = reference(
            torch.from_numpy(images.transpose(0, 3, 1, 2)),
            torch.from_numpy(token_ids.astype("int64")),
        )[:3]
    found = model.predict({"images": images, "token_ids": token_ids}, verbose=0)
    np.testing.assert_allclose(found["image_embeddings"], image.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(found["text_embeddings"], text.numpy(), atol=1e-4, rtol=0)
    logits = float(keras.ops.convert_to_numpy(model.logit_scale)) * (
        found["image_embeddings"] @ found["text_embeddings"].T
    )
    expected = (scale * image @ text.T).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4 * max(1.0, float(scale)), rtol=0)


def _assert_open_clip_reloads_bit_for_bit(model, reference, directory):
    """save_pretrained's directory, read by open_clip itself."""
    open_clip = import_open_clip()
    model.save_pretrained(str(directory), format="open_clip")
    reloaded = open_clip.create_model(f"local-dir:{directory}")
    expected = reference.state_dict()
    found = reloaded.state_dict()
    assert sorted(found) == sorted(expected)
    for name, value in expected.items():
        assert found[name].dtype == value.dtype, name
        np.testing.assert_array_equal(found[name].numpy(), value.numpy(), err_msg=name)


@pytest.mark.backend("tensorflow", "jax", "torch")
@pytest.mark.parametrize("timm_name", sorted(TINY_TOWERS))
def test_eva_family_loads_with_open_clips_outputs_and_writes_back(timm_name, tmp_path):
    config = _config(timm_name, bidirectional=timm_name.startswith("vit_large"))
    reference = _open_clip_directory(config, tmp_path / "open_clip")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "open_clip"))
    assert model.image_encoder.timm_model_name == timm_name
    _assert_same_outputs(model, reference, *_batch())
    _assert_open_clip_reloads_bit_for_bit(model, reference, tmp_path / "written")


@pytest.mark.backend("torch")
def test_preprocessing_follows_the_family_and_a_state_dict_loads_with_its_architecture(tmp_path):
    config = _config("vit_pe_core_tiny_patch8_32")
    _open_clip_directory(config, tmp_path / "pe")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "pe"))
    assert model.image_preprocessing.fitting == {
        "resize_mode": "squash",
        "interpolation": "bilinear",
    }
    assert tuple(model.image_preprocessing.mean) == (0.5, 0.5, 0.5)
    state_dict = str(tmp_path / "pe" / "open_clip_model.safetensors")
    again = keras_clip.CLIP.from_pretrained(state_dict, architecture=config)
    for a, b in zip(model.weights, again.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    eva = keras_clip.CLIP.from_architecture("EVA02-B-16")
    assert eva.image_preprocessing.fitting["resize_mode"] == "shortest"


@pytest.mark.backend("tensorflow", "jax", "torch")
@pytest.mark.parametrize("timm_name", ["eva02_base_patch8_clip_32", "vitamin_small_32"])
def test_an_eva_model_trains_round_trips_and_reloads(timm_name, tmp_path):
    """fit lowers the loss; the .keras file gives the same embeddings."""
    if timm_name.startswith("vitamin") and keras.backend.backend() != "torch":
        # ViTamin's stem trains (and its layers' configs round-trip) on one
        # backend; its outputs on all three are checked against open_clip's.
        pytest.skip("ViTamin trains on the torch lane")
    config = _config(timm_name)
    _open_clip_directory(config, tmp_path / "eva")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "eva"))
    images, token_ids = _batch()
    data = {"images": np.tile(images, (4, 1, 1, 1)), "token_ids": np.tile(token_ids, (4, 1))}
    data["token_ids"][3:6, 1] += 1  # twelve distinct captions
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(data, batch_size=12, epochs=4, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    path = str(tmp_path / "eva.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    before = model.predict(data, verbose=0)
    after = reloaded.predict(data, verbose=0)
    for key in before:
        np.testing.assert_allclose(after[key], before[key], atol=1e-6, rtol=0)


@pytest.mark.backend("torch")
@pytest.mark.parametrize(
    "section, key, value",
    [
        ("vision_cfg", "timm_pool", "avg"),
        ("vision_cfg", "timm_proj", "linear"),
        ("vision_cfg", "timm_proj", "none"),
        ("vision_cfg", "image_size", 64),
        ("vision_cfg", "patch_dropout", 0.5),
        ("text_cfg", "proj_bias", True),
        ("text_cfg", "pool_type", "first"),
        (None, "multimodal_cfg", {"width": 32}),
    ],
)
def test_eva_options_it_cannot_build_are_refused_by_name(section, key, value):
    from keras_clip.pretrained.configs import is_supported_open_clip_config

    config = _config("eva02_base_patch8_clip_32")
    (config[section] if section else config)[key] = value
    with pytest.raises(ValueError, match=key):
        timm_eva.check_open_clip_eva_options(config)
    assert not is_supported_open_clip_config(config)


def _has_key_bias(attention):
    if getattr(attention, "k_proj", None) is not None:
        return attention.k_proj.bias is not None
    if getattr(attention, "q_bias", None) is not None:
        return False  # timm's fused EVA attention: k_bias is a zero buffer
    return attention.qkv.bias is not None


@pytest.mark.backend("torch")
def test_the_tower_options_of_each_timm_name_are_timms():
    """Every full-size timm name open_clip uses, built by timm on the meta
    device: its sizes and options are the ones keras-clip builds."""
    import_open_clip()
    import timm
    import torch
    from timm.models.eva import EvaBlockPostNorm

    for name, (width, layers, mlp_hidden) in timm_eva.TIMM_EVA_SHAPES.items():
        family = timm_eva.parse_timm_eva_name(name)[0]
        # As open_clip asks: timm_pool "" with its own head keeps timm's pooling.
        pool = timm_eva.TIMM_EVA_FAMILIES[family]["pool"]
        kwargs = dict(global_pool=pool) if pool else {}
        with torch.device("meta"):
            tower = timm.create_model(name, num_classes=8, **kwargs)
        options = timm_eva.eva_tower_options(name)
        block = tower.blocks[0]
        output = getattr(block.mlp, "fc2", None) or block.mlp.w2  # ViTamin's GeGluMlp: w0, w1, w2
        sizes = (tower.embed_dim, len(tower.blocks), output.in_features)
        assert sizes == (width, layers, mlp_hidden), name
        assert block.attn.num_heads == options["num_heads"], name
        assert _has_key_bias(block.attn) == options.get("key_bias", False), name
        assert (getattr(getattr(block.attn, "norm", None), "eps", None) is not None) == options.get(
            "inner_norm", False
        ), name
        assert isinstance(block, EvaBlockPostNorm) == options.get("post_norm", False), name
        assert (tower.cls_token is not None) == options.get("class_token", True), name
        no_embed_class = getattr(tower, "no_embed_class", False)
        assert no_embed_class == (not options.get("class_position", True)), name
        pooling = getattr(tower, "attn_pool", None) is not None
        assert pooling == (options.get("pooling") == "map"), name
        assert (tower.global_pool == "avg") == (options.get("pooling") == "avg"), name
        has_positions = getattr(tower, "pos_embed", None) is not None
        assert has_positions == options.get("absolute_positions", True), name
        layer_scale = not isinstance(getattr(block, "ls1", torch.nn.Identity()), torch.nn.Identity)
        assert layer_scale == (options.get("layer_scale_init") is not None), name
        if getattr(block.attn, "qkv", None) is not None:  # fused: a bias, or EVA's q/v biases
            biased = (
                block.attn.qkv.bias is not None or getattr(block.attn, "q_bias", None) is not None
            )
            assert biased == options.get("qkv_bias", True), name
        relative = getattr(getattr(block.attn, "rel_pos", None), "mlp", None)
        hidden = None if relative is None else relative.fc1.out_features
        assert hidden == options.get("relative_position_hidden"), name
        stem = options.get("stem", "patch")
        assert isinstance(tower.patch_embed.proj, torch.nn.Identity) == (stem != "patch"), name
        if stem == "patch":
            patch_bias = tower.patch_embed.proj.bias is not None
            assert patch_bias == options.get("patch_bias", True), name
        norm_pre = getattr(tower, "norm_pre", torch.nn.Identity())
        assert not isinstance(norm_pre, torch.nn.Identity) == options.get("pre_norm", False)
        norm_after_pool = not isinstance(tower.fc_norm, torch.nn.Identity)
        assert norm_after_pool == options.get("norm_after_pool", False), name
        final_norm = tower.fc_norm if norm_after_pool else tower.norm
        assert final_norm.eps == options.get("layer_norm_epsilon", 1e-6), name
        assert hasattr(block.mlp, "fc1_g") == (options["mlp"] == "swiglu"), name
        assert hasattr(block.mlp, "w0") == (options["mlp"] == "geglu"), name
        if options["mlp"] == "geglu":  # its own LayerNorm first, as EVABlock's "geglu"
            assert block.mlp.norm.eps == options.get("layer_norm_epsilon", 1e-6), name
        else:
            mlp_norm = getattr(block.mlp, "norm", None).__class__.__name__ == "LayerNorm"
            assert mlp_norm == options.get("mlp_norm", False), name
        if stem == "vitamin":
            backbone = tower.patch_embed.backbone
            stages = [len(stage) for stage in backbone.stages]
            widths = [stage[0].conv3_1x1.out_channels for stage in backbone.stages]
            found = {
                "stem_width": backbone.stem.conv1.out_channels,
                "stage_widths": widths,
                "stage_depths": stages,
            }
            assert found == options["vitamin_stem"], name
        rotary = options.get("rotary")
        assert (getattr(tower, "rope", None) is not None) == (rotary is not None), name
        if rotary is not None:
            assert tuple(tower.rope.ref_feat_shape) == (rotary["reference_grid"],) * 2, name
            assert tower.rope.grid_offset == rotary["offset"], name
            assert tower.rope.grid_indexing == rotary["indexing"], name
        if options.get("pooling") == "map":
            assert tower.attn_pool.num_heads == options["pool_heads"], name


@pytest.mark.backend("torch")
@pytest.mark.parametrize(
    "architecture, width, image_size",
    [("PE-Core-T-16-384", 192, 384), ("EVA02-B-16", 768, 224), ("MobileCLIP-B", 768, 224)],
)
def test_the_smallest_real_configs_load_at_full_size(architecture, width, image_size, tmp_path):
    """open_clip's own smallest PE-Core, EVA-02 and MobileCLIP ViT (timm's
    full-size towers), random and perturbed: open_clip's outputs, and
    written back bit for bit."""
    open_clip = import_open_clip()
    config = copy.deepcopy(open_clip.get_model_config(architecture))
    reference = _open_clip_directory(config, tmp_path / "open_clip", seed=3)
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "open_clip"))
    assert (model.image_encoder.width, model.image_encoder.image_size) == (width, image_size)
    context = config["text_cfg"]["context_length"]
    images, token_ids = _batch(image_size, context, 49408)
    _assert_same_outputs(model, reference, images[:2], token_ids[:2])
    _assert_open_clip_reloads_bit_for_bit(model, reference, tmp_path / "written")


@pytest.mark.backend("tensorflow")
def test_an_eva_model_classifies_zero_shot_and_serves_as_a_saved_model(tmp_path):
    """PE-Core's tower (rotary embeddings, attention pooling) through the
    zero-shot classifier and the SavedModel: the served embeddings are
    Keras'."""

    from keras_clip.datasets import shapes
    from keras_clip.export import export_saved_model

    data = shapes.load(8, image_size=32, seed=5)
    tokenizer = keras_clip.Tokenizer.from_corpus(data["captions"], 60, 12)
    config = _config("vit_pe_core_tiny_patch8_32")
    config["text_cfg"]["vocab_size"] = tokenizer.vocabulary_size
    _open_clip_directory(config, tmp_path / "pe")
    model = keras_clip.CLIP.from_pretrained(str(tmp_path / "pe"))
    images = model.image_preprocessing.normalize(data["images"])
    classifier = keras_clip.ZeroShotClassifier(model, tokenizer, ["circle", "square"])
    probabilities = classifier.predict(images)
    assert probabilities.shape == (8, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)

    export_saved_model(model, tokenizer, str(tmp_path / "served"))
    assert_serves_the_embeddings(tmp_path / "served", model, tokenizer(data["captions"]), images)
