"""The optimizer every pipeline uses: AdamW with linear warm-up and linear decay (tf-models-official)."""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
from official.nlp import optimization


def create_optimizer(learning_rate, num_train_steps, *, warmup_ratio=0.1, weight_decay=0.01,
                     end_learning_rate=0.0):
    """AdamW with linear warm-up then linear decay, via ``official.nlp.optimization.create_optimizer``.

    LayerNorm and bias weights are excluded from weight decay (names containing
    ``LayerNorm``, ``layer_norm`` or ``bias``), as in BERT. With several
    replicas, sparse gradients (embedding lookups) are summed as dense ones
    (see `_dense_before_all_reduce`).

    Args:
        learning_rate: float. Initial learning rate of the linear decay. Warm-up ramps linearly to the
            decayed value at its last step, ``learning_rate * (1 - warmup_ratio)`` (as in BERT).
        num_train_steps: int. Total optimizer steps (epochs x steps per epoch).
        warmup_ratio: float. Fraction of the steps spent warming up linearly from 0, in [0, 1).
        weight_decay: float. Decoupled weight decay rate.
        end_learning_rate: float. Learning rate at the last step.

    Example:
    >>> optimizer = create_optimizer(3e-5, num_train_steps=1000)
    >>> type(optimizer).__name__
    'AdamWeightDecay'
    """
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}")
    if num_train_steps <= 0:
        raise ValueError(f"num_train_steps must be positive, got {num_train_steps}")
    if not 0 <= warmup_ratio < 1:
        raise ValueError(f"warmup_ratio must lie in [0, 1), got {warmup_ratio}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    optimizer = optimization.create_optimizer(
        init_lr=learning_rate,
        num_train_steps=int(num_train_steps),
        num_warmup_steps=int(round(num_train_steps * warmup_ratio)),
        end_lr=end_learning_rate,
        optimizer_type="adamw",
    )
    optimizer.weight_decay_rate = weight_decay
    optimizer.gradient_aggregator = _dense_before_all_reduce(optimizer.gradient_aggregator)
    return optimizer


def _dense_before_all_reduce(all_reduce):
    """Wraps a gradient aggregator so that replicas sum embedding gradients as dense Tensors.

    An embedding lookup's gradient is `tf.IndexedSlices` with one row per token, so its
    length changes from batch to batch when texts are batched by length. With several
    replicas, TensorFlow's collective all-reduce of such slices fails inside the loop that
    ``steps_per_execution > 1`` compiles ("Shape mismatch in the collective instance");
    a dense gradient has the variable's shape in every step.
    """
    def aggregate(grads_and_vars):
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            grads_and_vars = [(tf.convert_to_tensor(grad) if isinstance(grad, tf.IndexedSlices) else grad, var)
                              for grad, var in grads_and_vars]
        return all_reduce(grads_and_vars)
    return aggregate
