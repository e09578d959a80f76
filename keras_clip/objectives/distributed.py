"""Where the objectives learn about tf.distribute; nothing else does.

Under a `tf.distribute` strategy each replica holds a slice of the global
batch. CLIP's objectives need every other example's embedding as a
negative, so each replica gathers the embeddings of all replicas (the
gather's gradient flows back to their owners), scores its own rows against
all columns, and averages its rows' losses. Keras does not scale a custom
`compute_loss`, and it sums over replicas both the gradients and the loss
values it reports, so `CLIP.compute_loss` returns each replica's mean
divided by the number of replicas (`replica_share`): the sums are then the
global loss and its gradient, for every objective.

On JAX, `keras.distribution.DataParallel` shards one global computation:
the logits are already global there, and no code here is involved.
TensorFlow is imported only when the TensorFlow backend is in use.
"""

import keras
from keras import ops


def replica_context():
    """The tf.distribute replica context with more than one replica, or None."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    if not tf.distribute.has_strategy():
        return None
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return context


def gather_global_batch(image_embeddings, text_embeddings):
    """Embeddings of the whole global batch, and where this replica's rows are.

    Returns:
        (all_images, all_texts, row_offset, num_replicas); outside a
        multi-replica context: the inputs, 0 and 1.
    """
    context = replica_context()
    if context is None:
        return image_embeddings, text_embeddings, 0, 1
    all_images = context.all_gather(image_embeddings, axis=0)
    all_texts = context.all_gather(text_embeddings, axis=0)
    local_batch = ops.shape(image_embeddings)[0]
    offset = context.replica_id_in_sync_group * local_batch
    return all_images, all_texts, offset, context.num_replicas_in_sync


def replica_share(loss):
    """This replica's share of the global loss: Keras sums the shares.

    Applies to every objective, whether it gathers negatives (InfoNCE,
    SigLIP) or stays within the replica (JSD, `local_negatives=True`).
    """
    context = replica_context()
    if context is None:
        return loss
    return loss / context.num_replicas_in_sync
