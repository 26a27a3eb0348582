"""The optimizer every pipeline uses: AdamW with linear warm-up and linear decay (tf-models-official)."""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

from official.nlp import optimization


def create_optimizer(learning_rate, num_train_steps, *, warmup_ratio=0.1, weight_decay=0.01,
                     end_learning_rate=0.0):
    """AdamW with linear warm-up then linear decay, via ``official.nlp.optimization.create_optimizer``.

    LayerNorm and bias weights are excluded from weight decay (names containing
    ``LayerNorm``, ``layer_norm`` or ``bias``), as in BERT.

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
    return optimizer
