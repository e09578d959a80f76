"""Locked towers (LiT, open_clip's --lock-image/--lock-text) and WiSE-FT."""

import json
import os

import keras
import numpy as np
import pytest

import keras_clip
from keras_clip import cli
from keras_clip.cli.common import SHIPPED_MODEL
from keras_clip.cli.common import load_model_dir
from keras_clip.training.fine_tuning import tower_groups
from tests import evaluation_sets


def _arrays(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def _tower_variables(model, tower):
    return [v for group in tower_groups(model, tower) for v in group]


def _fine_tune(model, tokenizer, steps=3):
    images, labels = evaluation_sets.shapes_of(evaluation_sets.CLASSES[:6], 16 * steps)
    captions = [f"a drawing of a {evaluation_sets.CLASSES[i]}." for i in labels]
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    x = {
        "images": keras_clip.models.preprocessing.images_for_model(model, images),
        "token_ids": np.asarray(tokenizer(captions)),
    }
    model.fit(x, batch_size=16, epochs=1, verbose=0, shuffle=False)


@pytest.mark.parametrize(
    "unlocked",
    [
        pytest.param(0, marks=pytest.mark.backend("tensorflow")),
        pytest.param(2, marks=pytest.mark.backend("jax")),
    ],
)
def test_locked_image_tower_stays_bit_identical(unlocked):
    model, tokenizer = load_model_dir(SHIPPED_MODEL)
    groups = tower_groups(model, "image")
    assert len(groups) == 1 + 3 + 1 + 1  # embeddings, blocks 0-2, block 3 + ln_post, head
    before = [_arrays(group) for group in groups]
    text_before = _arrays(_tower_variables(model, "text"))
    keras_clip.lock_tower(model, "image", unlocked_groups=unlocked)
    _fine_tune(model, tokenizer)
    locked = len(groups) - unlocked
    for index, (group, old) in enumerate(zip(groups, before)):
        for variable, value in zip(group, old):
            new = keras.ops.convert_to_numpy(variable)
            if index < locked:
                np.testing.assert_array_equal(new, value, err_msg=variable.path)
            elif variable.trainable and variable.path.endswith("kernel"):
                assert not np.array_equal(new, value), variable.path
    text_after = _arrays(_tower_variables(model, "text"))
    assert any(not np.array_equal(a, b) for a, b in zip(text_before, text_after))


@pytest.mark.backend("torch")  # backend-neutral checks: one lane
def test_lock_errors_name_the_problem():
    model, _ = load_model_dir(SHIPPED_MODEL)
    with pytest.raises(ValueError, match="tower must be 'image' or 'text'"):
        keras_clip.lock_tower(model, "audio")
    with pytest.raises(ValueError, match="would leave all 6 groups"):
        keras_clip.lock_tower(model, "image", unlocked_groups=6)
    resnet = keras_clip.CLIP.from_architecture("tiny-rn", vocabulary_size=100, context_length=16)
    with pytest.raises(ValueError, match="locks only whole"):
        keras_clip.lock_tower(resnet, "image", unlocked_groups=1)
    assert keras_clip.lock_tower(resnet, "image") > 0
    assert not resnet.image_encoder.trainable


@pytest.mark.backend("torch")  # NumPy arithmetic: one lane
def test_interpolation_endpoints_are_exact_and_the_middle_is_the_mean():
    zero_shot, tokenizer = load_model_dir(SHIPPED_MODEL)
    fine_tuned, _ = load_model_dir(SHIPPED_MODEL)
    _fine_tune(fine_tuned, tokenizer, steps=1)
    start, end = zero_shot.get_weights(), fine_tuned.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(start, end))
    for alpha, expected in ((0.0, start), (1.0, end)):
        mixed = keras_clip.interpolate_weights(zero_shot, fine_tuned, alpha).get_weights()
        for found, wanted in zip(mixed, expected):
            np.testing.assert_array_equal(found, wanted)
    middle = keras_clip.interpolate_weights(zero_shot, fine_tuned, 0.5).get_weights()
    for found, a, b in zip(middle, start, end):
        np.testing.assert_allclose(found, (a.astype("float64") + b) / 2, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="alpha must lie in"):
        keras_clip.interpolate_weights(zero_shot, fine_tuned, 1.5)
    other = keras_clip.CLIP.from_architecture("tiny-vit", vocabulary_size=100, context_length=16)
    with pytest.raises(ValueError, match="one architecture"):
        keras_clip.interpolate_weights(other, fine_tuned, 0.5)


@pytest.mark.backend("jax")
def test_train_command_locks_and_interpolates(tmp_path, capsys):
    images, labels = evaluation_sets.shapes_of(evaluation_sets.CLASSES, 32)
    folder = tmp_path / "pairs"
    folder.mkdir()
    for index, (image, label) in enumerate(zip(images, labels)):
        (folder / f"{index:03d}.png").write_bytes(evaluation_sets._encoded(image, "PNG"))
        (folder / f"{index:03d}.txt").write_text(f"a {evaluation_sets.CLASSES[label]}.")
    shipped, _ = load_model_dir(SHIPPED_MODEL)
    common = [
        "train", str(folder), "--pretrained", os.path.join(SHIPPED_MODEL, "model.keras"),
        "--tokenizer", os.path.join(SHIPPED_MODEL, "tokenizer"), "--context-length", "16",
        "--batch-size", "16", "--epochs", "1", "--verbose", "0", "--lock-image",
    ]  # fmt: skip
    # One run: the image tower locked, then WiSE-FT at alpha 1 (the
    # fine-tuned weights exactly): the image tower is the shipped one, bit
    # for bit, the text tower has moved.
    output = str(tmp_path / "locked")
    assert cli.main([*common, "--wise-ft-alpha", "1", "--output", output]) == 0
    locked, _ = load_model_dir(output)
    for tower, same in (("image", True), ("text", False)):
        pairs = zip(_tower_variables(shipped, tower), _tower_variables(locked, tower))
        equal = [np.array_equal(*_arrays(pair)) for pair in pairs]
        assert all(equal) if same else not all(equal), tower
    report = json.loads((tmp_path / "locked" / "train_report.json").read_text())
    assert report["locked"] == ["image"] and report["wise_ft_alpha"] == 1.0
    assert cli.main(["train", str(folder), "--wise-ft-alpha", "0.5", "--output", "x"]) == 2
    assert "pass both" in capsys.readouterr().err
