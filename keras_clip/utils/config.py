"""Config helpers shared by the subclassed models."""

import keras


def keep_config(owner, arguments, names=None):
    """Keeps the constructor arguments that `owner.CONFIG_ATTRIBUTES` names
    as attributes of the same names, for `config_attributes` to return.

    Args:
        owner: the layer or model being constructed.
        arguments: a dict holding at least those names, usually the
            constructor's `locals()` once its arguments are validated.
        names: the names to keep, where a subclass's constructor adds
            some of its own (None: all of `owner.CONFIG_ATTRIBUTES`).

    Example:
    ```python
    class Tower(keras.Model):
        CONFIG_ATTRIBUTES = ("width", "num_layers")

        def __init__(self, width, num_layers, **kwargs):
            super().__init__(**kwargs)
            keep_config(self, locals())

        def get_config(self):
            return base_model_config(self)
    ```
    """
    for name in owner.CONFIG_ATTRIBUTES if names is None else names:
        setattr(owner, name, arguments[name])


def config_attributes(owner):
    """`{name: value}` of the attributes `owner.CONFIG_ATTRIBUTES` names
    (none when the class lists none)."""
    return {name: getattr(owner, name) for name in getattr(owner, "CONFIG_ATTRIBUTES", ())}


def base_model_config(model):
    """A model's config: the constructor arguments every keras.Model takes
    (name, trainable, dtype), then its `config_attributes`."""
    return {
        "name": model.name,
        "trainable": model.trainable,
        "dtype": keras.dtype_policies.serialize(model.dtype_policy),
        **config_attributes(model),
    }
