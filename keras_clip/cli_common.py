"""What the keras-clip commands share: the model directory layout, image
files in, and progress settings."""

import os
import sys

DEMO_OUTPUT = os.path.join("saved_models", "shapes_clip")


def default_verbosity():
    """Keras progress bars on a terminal, one line per epoch in logs."""
    return 1 if sys.stdout.isatty() else 2


def save_model_dir(model, tokenizer, directory):
    """model.keras + tokenizer/ + saved_model/ (the layout `zero-shot` reads).

    Saves an inference copy: the same weights without the optimizer's state
    (which would more than double the files).
    """
    from keras_clip.export import export_saved_model

    os.makedirs(directory, exist_ok=True)
    copy = model.__class__.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    model = copy
    model.save(os.path.join(directory, "model.keras"))
    tokenizer.save(os.path.join(directory, "tokenizer"))
    export_saved_model(model, tokenizer, os.path.join(directory, "saved_model"))


def load_model_dir(directory):
    """Loads the model and tokenizer that `save_model_dir` wrote."""
    import keras

    import keras_clip

    model_path = os.path.join(directory, "model.keras")
    if not os.path.exists(model_path):
        raise FileNotFoundError(
            f"No model.keras in {directory!r}; run `keras-clip demo` or "
            "`keras-clip export` first."
        )
    model = keras.saving.load_model(model_path)
    return model, keras_clip.Tokenizer.load(os.path.join(directory, "tokenizer"))
