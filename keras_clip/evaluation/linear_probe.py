"""Linear-probe evaluation: logistic regression on frozen image features."""

import keras
import numpy as np


def fit_linear_probe(
    train_features,
    train_labels,
    num_classes=None,
    l2=1e-4,
    epochs=200,
    learning_rate=1e-2,
    batch_size=512,
    seed=0,
):
    """Trains softmax regression (L2-regularised) on fixed features.

    Args:
        train_features: float (N, D).
        train_labels: int (N,).
        num_classes: int; default max(label) + 1.
        l2: float. L2 penalty on the weights.
        epochs, learning_rate, batch_size: Adam optimisation settings.
        seed: int.

    Returns:
        A `keras.Sequential` mapping features to class logits.

    Example:

    ```python
    probe = fit_linear_probe(features, labels)
    predictions = probe.predict(test_features).argmax(-1)
    ```
    """
    features = np.asarray(train_features, "float32")
    labels = np.asarray(train_labels)
    if features.ndim != 2 or labels.shape != (len(features),):
        raise ValueError(
            f"Expected features (N, D) and labels (N,); got {features.shape} and {labels.shape}."
        )
    num_classes = num_classes or int(labels.max()) + 1
    keras.utils.set_random_seed(seed)
    probe = keras.Sequential(
        [
            keras.Input((features.shape[1],)),
            keras.layers.Dense(num_classes, kernel_regularizer=keras.regularizers.L2(l2)),
        ]
    )
    probe.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    probe.fit(features, labels, epochs=epochs, batch_size=batch_size, verbose=0)
    return probe


def linear_probe(
    model,
    train_images,
    train_labels,
    test_images,
    test_labels,
    num_classes=None,
    batch_size=256,
    **probe_kwargs,
):
    """Linear-probe accuracy of a CLIP model's image embeddings.

    The image tower and projection stay frozen; a softmax regression learns
    the classes from the training images' embeddings and is scored on the
    test images.

    Args:
        model: a `keras_clip.CLIP`.
        train_images, test_images: float (N, H, W, 3), preprocessed.
        train_labels, test_labels: int (N,).
        num_classes: int; default from the labels.
        batch_size: encoding batch size.
        **probe_kwargs: passed to `fit_linear_probe`.

    Returns:
        dict: "train_accuracy", "test_accuracy", "num_classes".

    Example:

    ```python
    linear_probe(model, x_train, y_train, x_test, y_test)["test_accuracy"]
    ```
    """

    def embed(images):
        return model.predict({"images": images}, batch_size=batch_size, verbose=0)[
            "image_embeddings"
        ]

    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    num_classes = num_classes or int(max(train_labels.max(), test_labels.max())) + 1
    train_features = embed(train_images)
    probe = fit_linear_probe(train_features, train_labels, num_classes, **probe_kwargs)

    def accuracy(features, labels):
        predictions = probe.predict(features, verbose=0).argmax(axis=-1)
        return float(np.mean(predictions == labels))

    return {
        "train_accuracy": accuracy(train_features, train_labels),
        "test_accuracy": accuracy(embed(test_images), test_labels),
        "num_classes": num_classes,
    }
