"""Loading a checkpoint with a large token table (MetaCLIP 2's XLM-V: 901,629
x 1024) holds the model and one tensor, not a second copy of the
checkpoint, and draws no random table that the checkpoint overwrites.

`benchmarks/load_memory.py` gives the full-size figures; these tests keep
the mechanisms: tensors read one at a time and only after every shape is
checked, assignments without transient copies on each backend, and a peak
(measured in a fresh process) below two tables' worth of memory.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_clip
from keras_clip.layers.initialization import loading_weights
from keras_clip.pretrained import SafetensorsTensors
from keras_clip.pretrained import weight_map
from keras_clip.pretrained import write_safetensors

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _CountingTensors(SafetensorsTensors):
    def __init__(self, paths):
        super().__init__(paths)
        self.reads = []

    def __getitem__(self, name):
        self.reads.append(name)
        return super().__getitem__(name)


def _dense_checkpoint(path, shape=(6, 4)):
    layer = keras.layers.Dense(shape[0])
    layer.build((None, shape[1]))
    rng = np.random.default_rng(0)
    tensors = {
        "fc.weight": rng.normal(size=shape).astype("float32"),
        "fc.bias": rng.normal(size=shape[:1]).astype("float32"),
    }
    write_safetensors(path, tensors)
    return layer, tensors


def test_tensors_are_read_once_and_only_after_every_shape_is_checked(tmp_path):
    path = str(tmp_path / "w.safetensors")
    layer, tensors = _dense_checkpoint(path)
    lazy = _CountingTensors(path)
    assert lazy.shape("fc.weight") == (6, 4) and lazy.reads == []
    weight_map.load_weight_map(weight_map.dense(layer, "fc"), lazy, path)
    assert sorted(lazy.reads) == ["fc.bias", "fc.weight"]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel), tensors["fc.weight"].T)

    wrong = keras.layers.Dense(5)
    wrong.build((None, 4))
    before = keras.ops.convert_to_numpy(wrong.bias)
    lazy = _CountingTensors(path)
    with pytest.raises(ValueError, match="'fc.weight' has the wrong shape"):
        weight_map.load_weight_map(weight_map.dense(wrong, "fc"), lazy, path)
    assert lazy.reads == []  # nothing read, nothing assigned
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(wrong.bias), before)


def test_shards_are_one_mapping_and_a_tensor_in_two_is_refused(tmp_path):
    write_safetensors(str(tmp_path / "a.safetensors"), {"x": np.ones(2, "float32")})
    write_safetensors(str(tmp_path / "b.safetensors"), {"y": np.zeros((1, 3), "float16")})
    both = SafetensorsTensors([str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")])
    assert sorted(both) == ["x", "y"] and both["y"].dtype == np.float16
    write_safetensors(str(tmp_path / "c.safetensors"), {"x": np.ones(2, "float32")})
    with pytest.raises(ValueError, match="'x' is in both"):
        SafetensorsTensors([str(tmp_path / "a.safetensors"), str(tmp_path / "c.safetensors")])


@pytest.mark.backend("tensorflow", "jax", "torch")
def test_assign_array_is_exact_in_blocks_and_whole(monkeypatch):
    """The TensorFlow row blocks (made small here, a ragged last block)
    and the PyTorch shared-memory path give the array exactly, transposed
    views and read-only arrays included."""
    monkeypatch.setattr(weight_map, "_BLOCK_BYTES", 1000)
    rng = np.random.default_rng(1)
    for shape in [(101, 7), (3, 5, 17), (4,)]:
        variable = keras.Variable(np.zeros(shape, "float32"))
        array = rng.normal(size=shape).astype("float32")
        weight_map.assign_array(variable, array)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), array)
    variable = keras.Variable(np.zeros((7, 101), "float32"))
    source = rng.normal(size=(101, 7)).astype("float32")
    source.flags.writeable = False
    weight_map.assign_array(variable, source.T)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), source.T)


def test_token_tables_start_as_zeros_only_while_loading():
    with loading_weights():
        loading = keras_clip.encoders.TextTransformer(50, 8, 16, 1, 2)
        loading.build((None, 8))
    fresh = keras_clip.encoders.TextTransformer(50, 8, 16, 1, 2)
    fresh.build((None, 8))
    assert not np.any(keras.ops.convert_to_numpy(loading.token_embedding.embeddings))
    assert np.std(keras.ops.convert_to_numpy(fresh.token_embedding.embeddings)) > 0.01


_PEAK = """
import json, sys
sys.path.insert(0, {repository!r})
import keras_clip
from keras_clip.pretrained import weight_map
weight_map._BLOCK_BYTES = 2**20  # both runs take TensorFlow's block path
def status(key):
    return int(dict(l.split(":", 1) for l in open("/proc/self/status"))[key].split()[0]) * 1024
base = status("VmRSS")
keras_clip.CLIP.from_pretrained({path!r})
print(json.dumps({{"peak": max(status("VmHWM"), status("VmRSS")) - base}}))
"""


def _metaclip2_peak(directory, vocabulary, width=64):
    """The peak memory of `from_pretrained` of a MetaClip2Model directory
    with this vocabulary, in a fresh process on this backend (bytes)."""
    transformers = pytest.importorskip("transformers")
    config = transformers.MetaClip2Config(
        text_config=dict(vocab_size=vocabulary, hidden_size=width, intermediate_size=width,
                         num_hidden_layers=1, num_attention_heads=1, max_position_embeddings=8,
                         bos_token_id=0, pad_token_id=1, eos_token_id=2),
        vision_config=dict(hidden_size=width, intermediate_size=width, num_hidden_layers=1,
                           num_attention_heads=1, image_size=16, patch_size=8),
        projection_dim=width,
    )  # fmt: skip
    transformers.MetaClip2Model(config).save_pretrained(directory)
    result = subprocess.run(
        [sys.executable, "-c", _PEAK.format(repository=REPOSITORY, path=directory)],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": keras.backend.backend()},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])["peak"]


@pytest.mark.backend("tensorflow", "torch")
def test_peak_memory_of_a_large_vocabulary_checkpoint(tmp_path):
    """600,000 pieces (a 154 MB table) add less than two tables' worth of
    rows to the peak of `from_pretrained` (the variable and the tensor read
    for it) over 20,000, in fresh processes (the same code paths, so fixed
    costs cancel). Before: a copy of the checkpoint, Keras' conversion
    copies and a random draw on top, 4-5 tables."""
    small_vocabulary, vocabulary, width = 20_000, 600_000, 64
    small = _metaclip2_peak(str(tmp_path / "small"), small_vocabulary, width)
    large = _metaclip2_peak(str(tmp_path / "large"), vocabulary, width)
    tables = (large - small) / ((vocabulary - small_vocabulary) * width * 4)
    assert tables < 2.2, tables
