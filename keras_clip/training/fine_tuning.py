"""Fine-tuning that keeps zero-shot skill: locked towers and WiSE-FT.

`lock_tower` freezes a tower as LiT (Zhai et al. 2022) and open_clip's
`--lock-image` / `--lock-text` do, optionally leaving its last groups
trainable. A Transformer tower's groups are, in order, as open_clip numbers
them: the embeddings with the first norm, each block but the last, the last
block with the final norm, and the projection head. `unlocked_groups=1`
trains only the projection; 2 also the last block; and so on. Other towers
(the modified ResNet, keras-hub and user models) lock whole; a locked tower
also runs its batch normalisation in inference mode.

`interpolate_weights` is WiSE-FT (Wortsman et al. 2022): the weights
(1 - alpha) * zero_shot + alpha * fine_tuned, which keeps much of the
zero-shot model's robustness with most of the fine-tuned accuracy.

Lock before `compile`/`fit`: the training step collects the trainable
variables when it is first built.

Example:

```python
zero_shot = keras_clip.CLIP.from_config(model.get_config())  # e.g. from_pretrained(...)
zero_shot.set_weights(model.get_weights())  # the model before fine-tuning
lock_tower(model, "image")                  # LiT: train the text side only
model.compile()
model.fit(train, epochs=3)
robust = interpolate_weights(zero_shot, model, alpha=0.5)
```
"""

TOWERS = ("image", "text")
_FINAL_NORMS = ("post_norm", "final_norm")


def _tower_parts(model, tower):
    if tower not in TOWERS:
        raise ValueError(f"tower must be 'image' or 'text'; got {tower!r}.")
    return getattr(model, f"{tower}_encoder"), getattr(model, f"{tower}_projection", None)


def tower_groups(model, tower):
    """The tower's variables in lockable groups, first to last (see the
    module docstring); None for a tower that only locks whole."""
    encoder, head = _tower_parts(model, tower)
    blocks = getattr(encoder, "blocks", None)
    if not blocks:
        return None
    final = [getattr(encoder, name) for name in _FINAL_NORMS if hasattr(encoder, name)]
    later = {id(v) for layer in [*blocks, *final] for v in layer.weights}
    first = [v for v in encoder.weights if id(v) not in later]
    groups = [first, *[list(block.weights) for block in blocks[:-1]]]
    groups.append(list(blocks[-1].weights) + [v for layer in final for v in layer.weights])
    if head is not None:
        groups.append(list(head.weights))
    return groups


def lock_tower(model, tower, unlocked_groups=0):
    """Freezes `model`'s image or text tower (and its projection).

    Args:
        model: a built `keras_clip.CLIP`.
        tower: "image" or "text".
        unlocked_groups: int, how many of the tower's last groups stay
            trainable (Transformer towers only; see the module docstring).

    Returns:
        the number of variables frozen.
    """
    encoder, head = _tower_parts(model, tower)
    if unlocked_groups < 0:
        raise ValueError(f"unlocked_groups must be >= 0; got {unlocked_groups}.")
    if unlocked_groups == 0:
        frozen = len(encoder.trainable_weights) + (len(head.trainable_weights) if head else 0)
        for layer in (encoder, head):
            if layer is not None:
                layer.trainable = False
        return frozen
    groups = tower_groups(model, tower)
    if groups is None:
        raise ValueError(
            f"The {tower} tower ({type(encoder).__name__}) locks only whole: "
            "unlocked_groups must be 0."
        )
    if unlocked_groups >= len(groups):
        raise ValueError(
            f"unlocked_groups={unlocked_groups} would leave all {len(groups)} groups of the "
            f"{tower} tower trainable."
        )
    frozen = 0
    for group in groups[: len(groups) - unlocked_groups]:
        for variable in group:
            frozen += bool(variable.trainable)
            variable.trainable = False
    return frozen


def interpolate_weights(zero_shot, fine_tuned, alpha):
    """WiSE-FT: a new model with (1 - alpha) * zero_shot + alpha * fine_tuned.

    Args:
        zero_shot: a `keras_clip.CLIP` (the model before fine-tuning).
        fine_tuned: the same architecture after fine-tuning.
        alpha: float in [0, 1]; 0 gives zero_shot's weights and 1
            fine_tuned's, bit for bit.

    Returns:
        a new model with `fine_tuned`'s config (not compiled).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1]; got {alpha}.")
    start, end = zero_shot.get_weights(), fine_tuned.get_weights()
    shapes = ([w.shape for w in start], [w.shape for w in end])
    if shapes[0] != shapes[1]:
        raise ValueError(
            "interpolate_weights needs two models of one architecture; their weights "
            f"differ ({len(start)} arrays against {len(end)}, or in shape)."
        )
    mixed = []
    for a, b in zip(start, end):
        if "float" not in b.dtype.name:
            mixed.append(b)  # counters, seeds: the fine-tuned model's
            continue
        value = (1.0 - alpha) * a.astype("float64") + alpha * b.astype("float64")
        mixed.append(value.astype(b.dtype))
    model = type(fine_tuned).from_config(fine_tuned.get_config())
    model.set_weights(mixed)
    return model
