"""Fully sharded data parallelism on JAX (`keras_clip.models.sharding`)."""

import json
import os
import subprocess
import sys

import pytest

from keras_clip.models.sharding import fsdp_axes
from keras_clip.training.checkpoints import StepCheckpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_each_weight_is_split_along_its_largest_dimension_the_devices_divide():
    assert fsdp_axes((768, 3072), 8) == (None, "batch")
    assert fsdp_axes((3072, 768), 8) == ("batch", None)
    assert fsdp_axes((50, 768), 8, "data") == (None, "data")
    assert fsdp_axes((12, 12, 3, 64), 8, min_size=1) == (None, None, None, "batch")
    assert fsdp_axes((1000, 7), 8, min_size=1) == ("batch", None)
    assert fsdp_axes((768,), 8) == (None,)  # under min_size: replicated
    assert fsdp_axes((4097, 3), 8) == (None, None)  # no dimension divides
    assert fsdp_axes((), 8) == ()
    assert fsdp_axes((768, 768), 1) == (None, None)


@pytest.mark.backend("tensorflow", "torch")
def test_other_backends_are_told_it_needs_jax():
    from keras_clip.models.sharding import FullyShardedDataParallel

    with pytest.raises(ValueError, match="need the JAX backend.*MirroredStrategy"):
        FullyShardedDataParallel()
    with pytest.raises(ValueError, match="sharded=True. needs the JAX backend"):
        StepCheckpoint("unused", sharded=True)


@pytest.mark.backend("jax")
def test_a_sharded_state_restores_bit_for_bit_and_names_a_mismatch(tmp_path):
    import numpy as np

    from keras_clip import CLIP
    from keras_clip.training.sharded_state import restore_sharded_state
    from keras_clip.training.sharded_state import save_sharded_state

    def model(**shape):
        clip = CLIP.from_architecture("tiny-vit", **shape)
        clip.compile(optimizer="adamw")
        clip.optimizer.build(clip.trainable_variables)
        return clip

    saved = model()
    for variable in saved.variables + saved.optimizer.variables:
        variable.assign(np.random.default_rng(0).normal(size=variable.shape))
    save_sharded_state(saved, str(tmp_path / "state"))
    restored = model()
    restore_sharded_state(restored, str(tmp_path / "state"))
    for a, b in zip(
        saved.variables + saved.optimizer.variables,
        restored.variables + restored.optimizer.variables,
    ):
        np.testing.assert_array_equal(np.asarray(b.value), np.asarray(a.value), err_msg=a.path)
    with pytest.raises(ValueError, match=r"positional_embedding\) is \(65, 32\).*\(17, 32\)"):
        restore_sharded_state(model(image_size=64), str(tmp_path / "state"))
    unbuilt = CLIP.from_architecture("tiny-vit")
    unbuilt.compile(optimizer="adamw")
    with pytest.raises(ValueError, match="optimizer variables.*optimizer not built"):
        restore_sharded_state(unbuilt, str(tmp_path / "state"))


# JAX in processes of their own (8 simulated devices, then 4), whatever the
# lane's backend (they share the run's JAX compilation cache, tests/run.sh):
# in the TensorFlow lane, the shorter one at stop 35 (TensorFlow 1999 s
# against 1318 s + 822 s for JAX then PyTorch).
@pytest.mark.backend("tensorflow")
def test_a_sharded_checkpoint_killed_mid_save_resumes_on_4_devices_from_8(tmp_path):
    """Each process writes its own shards (no gathering); a kill while
    step 3's shards are written leaves step 2, which restores bit for bit
    onto 4 devices, sharded there, and the run ends as the uninterrupted one."""

    def run(devices, mode):
        command = [sys.executable, "-m", "tests.sharded_checkpoint_check", str(devices)]
        return subprocess.run(
            command + [mode, str(tmp_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        )

    killed = run(8, "train")
    assert killed.returncode == -9, killed.stderr[-3000:]  # SIGKILL, inside step 3's save
    resumed = run(4, "resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (report,) = [json.loads(line) for line in resumed.stdout.splitlines() if line[:1] == "{"]
    assert report["left_by_the_kill"] == [
        ".incomplete-step-000000003",
        "step-000000001",
        "step-000000002",
    ], report
    assert report["resumed_at"] == 2 and report["restored_equal"], report
    assert report["sharded_as_planned"] and report["sharded_variables"] > 50, report
    # AdamW steps 3 and 4 on 4 devices instead of 8: sums in another order.
    assert report["final_step"] == 4 and report["final_difference_relative"] < 5e-5, report


# The check runs JAX in a process of its own (8 simulated devices), whatever
# the lane's backend: once, in the JAX lane (see above).
@pytest.mark.backend("jax")
def test_sharded_training_equals_one_device_and_shards_every_large_variable():
    done = subprocess.run(
        [sys.executable, "-m", "tests.fsdp_check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    reports = [line for line in lines if "devices" in line]
    (command,) = [line for line in lines if "command" in line]
    assert command["exit_code"] == 0 and command["fsdp_devices"] == 8, command
    assert command["reloaded_parameters"] > 0 and 0 < command["loss"][0] < 10, command
    assert command["sharded_step_checkpoints"] >= 1, command  # --fsdp writes them sharded
    assert [r["objective"] for r in reports] == ["infonce", "siglip"]
    for report in reports:
        assert report["devices"] == 8
        assert report["loss_diff"] < 1e-5 and report["weight_diff_relative"] < 1e-5, report
    # With AdamW (the InfoNCE model; the sharding does not depend on the
    # objective): every weight and moment large enough is split, nothing else.
    report = reports[0]
    assert report["sharded_as_planned"] and report["sharded"] > 0, report
    assert report["optimizer_sharded"] == 2 * report["sharded"] // 3, report
    # Device 0 holds 1/8 of the sharded bytes plus the small replicated rest.
    sharded_bytes = report["total_bytes"] - report["replicated_bytes"]
    assert report["device0_bytes"] == sharded_bytes // 8 + report["replicated_bytes"]
    assert report["replicated_bytes"] < 0.02 * report["total_bytes"]
    # XLA's compiled memory analysis of the train step agrees: per device,
    # the arguments are 1/8 of the data-parallel ones (less the batch slice
    # both hold) plus the replicated rest and the metrics' few counters.
    data_parallel = report["data_parallel_argument_bytes"] - report["batch_slice_bytes"]
    expected = (data_parallel - report["replicated_bytes"]) / 8 + report["replicated_bytes"]
    fsdp = report["fsdp_argument_bytes"] - report["batch_slice_bytes"]
    assert expected - 64 <= fsdp <= expected + 64, report
    # A step checkpoint (gathered on save) restores every weight and AdamW
    # moment bit for bit, sharded as before.
    assert report["checkpoint_step"] == 2 and report["restored_equal"], report
    assert report["restored_sharding"], report


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# JAX processes of their own, so once: in the JAX lane (the TensorFlow lane,
# which runs the FSDP check, is the longer one).
@pytest.mark.backend("jax")
def test_two_processes_on_127_0_0_1_equal_one(tmp_path):
    """Multi-host: 2 JAX processes joined by `keras.distribution.initialize`
    (CPU collectives over gloo), weights sharded over both, each feeding
    its own half of every global batch, equal one process with the whole;
    their sharded step checkpoint restores exactly."""
    import numpy as np

    environment = dict(
        os.environ, TF_CPP_MIN_LOG_LEVEL="3", JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo"
    )
    environment.pop("XLA_FLAGS", None)
    port = _free_port()

    def start(process_id, count, output):
        command = [sys.executable, "-m", "tests.multihost_check"]
        command += [str(process_id), str(count), str(port), str(output)]
        return subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )

    processes = [start(0, 1, tmp_path / "one.npz")]
    processes += [start(i, 2, tmp_path / "two.npz") for i in range(2)]
    for process in processes:
        try:
            output, _ = process.communicate(timeout=300)
        finally:
            for other in processes:  # none outlives the test
                if other.poll() is None and process.returncode is None:
                    other.kill()
        assert process.returncode == 0, output.decode()[-3000:]
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert int(two["devices"]) == 2 and int(two["sharded"]) > 0
    # A sharded step checkpoint: each process wrote its own shards, and a
    # new model restores every weight bit for bit.
    assert int(two["checkpoint_step"]) == 2 and bool(two["restored_equal"])
    assert list(two["shard_writers"]) == ["ocdbt.process_0", "ocdbt.process_1"]
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-6)
    weights = [name for name in one.files if name.startswith("w")]
    assert len(weights) > 10
    for name in weights:  # to 1e-5 of each weight's scale (float32 sums in another order)
        scale = max(1.0, float(np.max(np.abs(one[name]))))
        np.testing.assert_allclose(two[name], one[name], rtol=0, atol=1e-5 * scale, err_msg=name)
