"""Run as `python -m tests.distributed_data_check FOLDER` (TensorFlow backend).

Fits a tiny CLIP for two epochs under MirroredStrategy over 2 logical CPUs
from `image_text_dataset` on FOLDER and prints one JSON line: the losses
and the per-epoch skip counts from `DataReportCallback`.
"""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras_clip  # noqa: E402
from keras_clip import data  # noqa: E402


def main(folder):
    captions = [c for cs in data.read_source(folder).captions for c in cs]
    tokenizer = keras_clip.Tokenizer.from_corpus(captions, 100, context_length=16)
    train = data.image_text_dataset(folder, tokenizer, 32, 8, seed=0)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = keras_clip.CLIP.from_architecture(
            "tiny-vit", vocabulary_size=tokenizer.vocabulary_size, context_length=16
        )
        model.compile()
    report = data.DataReportCallback(train, log=lambda line: None)
    history = model.fit(train, epochs=2, callbacks=[report], verbose=0)
    print(
        json.dumps(
            {
                "loss": history.history["loss"],
                "counts": report.history,
                "replicas": strategy.num_replicas_in_sync,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
