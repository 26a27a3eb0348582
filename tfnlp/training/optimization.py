"""The optimizer every pipeline uses: AdamW with linear warm-up and linear decay (tf-models-official)."""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import functools

import tensorflow as tf
import tf_keras
from official.nlp import optimization


class _LazySparseRows:
    """Mixin for a legacy Keras AdamW: a sparse gradient updates only its rows (LazyAdam).

    Dense gradients are applied exactly as by the AdamW it is mixed into. A
    sparse gradient (`tf.IndexedSlices`, from an embedding lookup) updates the
    Adam moments, the weight decay and the weights of its rows only, as TF
    Addons' `LazyAdam` does, instead of decaying the moments of the whole table
    at every step. For a large table of which a batch touches a few rows (hashed
    n-gram buckets, a 30,522-token vocabulary), a step then costs the rows it
    uses, not the table. Rows that a batch does not use keep their moments, so
    this is not the same optimizer as dense Adam for them. Works for every AdamW
    whose ``apply_state`` holds ``weight_decay_rate`` (tf-models-official's and
    transformers'); duplicate indices are summed by Keras before this is called.
    """

    def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
        if self.amsgrad:
            return super()._resource_apply_sparse(grad, var, indices, apply_state=apply_state)
        var_device, var_dtype = var.device, var.dtype.base_dtype
        coefficients = ((apply_state or {}).get((var_device, var_dtype))
                        or self._fallback_apply_state(var_device, var_dtype))
        m, v = self.get_slot(var, "m"), self.get_slot(var, "v")
        m_rows = coefficients["beta_1_t"] * tf.gather(m, indices) + coefficients["one_minus_beta_1_t"] * grad
        v_rows = coefficients["beta_2_t"] * tf.gather(v, indices) + coefficients["one_minus_beta_2_t"] * grad * grad
        step = coefficients["lr"] * m_rows / (tf.sqrt(v_rows) + coefficients["epsilon"])
        if self._do_use_weight_decay(var.name):
            # Decoupled decay of the rows, from their values before this step (as AdamWeightDecay does).
            step += coefficients["lr_t"] * coefficients["weight_decay_rate"] * tf.gather(var, indices)
        return tf.group(
            self._resource_scatter_update(m, indices, m_rows),
            self._resource_scatter_update(v, indices, v_rows),
            self._resource_scatter_add(var, indices, -step),
        )


@tf_keras.utils.register_keras_serializable(package="tfnlp")
class LazyAdamWeightDecay(_LazySparseRows, optimization.AdamWeightDecay):
    """tf-models-official's AdamW that updates only the embedding rows a batch uses (LazyAdam).

    See `_LazySparseRows`: dense gradients as `AdamWeightDecay`; a sparse
    gradient updates its rows' moments, decay and weights only.

    Args:
        Those of `official.nlp.optimization.AdamWeightDecay` (`amsgrad` is not
        supported for sparse gradients).
    """


@functools.lru_cache(maxsize=None)
def lazy_transformers_adamw_class():
    """``LazyTransformersAdamWeightDecay``: transformers' ``AdamWeightDecay`` with `_LazySparseRows`.

    Built on first use, so that importing this module does not import transformers.
    """
    from transformers import AdamWeightDecay

    class LazyTransformersAdamWeightDecay(_LazySparseRows, AdamWeightDecay):
        """transformers' AdamW (its schedule and decay rules) that updates only the embedding rows a batch uses."""

    return tf_keras.utils.register_keras_serializable(package="tfnlp")(LazyTransformersAdamWeightDecay)


IMPLEMENTATIONS = ("official", "transformers")


def create_optimizer(learning_rate, num_train_steps, *, warmup_ratio=0.1, weight_decay=0.01,
                     end_learning_rate=0.0, lazy_sparse_updates=False, global_clipnorm=None,
                     implementation="official"):
    """AdamW with linear warm-up then linear decay: one function for every pipeline.

    Two implementations of the same recipe, chosen by ``implementation``:
    ``"official"`` calls ``official.nlp.optimization.create_optimizer`` (the
    TF-Hub/tf-models-official world); ``"transformers"`` calls
    ``transformers.create_optimizer`` (what HuggingFace's TF examples and the
    lesson use for ``TFBertFor*`` models). Both exclude LayerNorm and bias
    weights from weight decay (names containing ``LayerNorm``, ``layer_norm``
    or ``bias``), as in BERT. They differ only in the warm-up's peak: see
    ``learning_rate``. With several replicas, sparse gradients (embedding
    lookups) are summed as dense ones (see `_dense_before_all_reduce`), so
    ``lazy_sparse_updates`` then has no effect. Gradient clipping: tf-models-official
    clips the global norm to 1.0 (BERT's recipe, as HF's PyTorch ``Trainer``);
    ``transformers.create_optimizer`` does not clip unless ``global_clipnorm`` is set.

    Args:
        learning_rate: float. Peak learning rate. ``"transformers"``: warm-up ramps linearly from 0 to it, then
            it decays linearly to ``end_learning_rate``. ``"official"``: it is the initial value of the linear
            decay, and warm-up ramps to the decayed value at its last step, ``learning_rate * (1 -
            warmup_ratio)`` (as in BERT's original code).
        num_train_steps: int. Total optimizer steps (epochs x steps per epoch).
        warmup_ratio: float. Fraction of the steps spent warming up linearly from 0, in [0, 1).
        weight_decay: float. Decoupled weight decay rate.
        end_learning_rate: float. Learning rate at the last step.
        lazy_sparse_updates: bool. Update only the embedding rows each batch uses
            (`LazyAdamWeightDecay`, or ``LazyTransformersAdamWeightDecay`` for
            ``"transformers"``): much faster for large embedding tables (hashed
            n-grams trained from scratch; BERT's 30,522-row vocabulary costs about
            0.4 s per dense AdamW step on 2 CPU cores). Defaults to `False` (dense AdamW).
        global_clipnorm: float or None. ``"transformers"`` only: clip the gradient's global norm
            (``adam_global_clipnorm``); None = no clipping, as transformers' default.
        implementation: str. ``"official"`` (tf-models-official) or ``"transformers"`` (HuggingFace).

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
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
    if global_clipnorm is not None and not global_clipnorm > 0:
        raise ValueError(f"global_clipnorm must be positive or None, got {global_clipnorm}")
    if implementation == "transformers":
        return _transformers_optimizer(learning_rate, num_train_steps, warmup_ratio, weight_decay,
                                       end_learning_rate, global_clipnorm, lazy_sparse_updates)
    if global_clipnorm is not None:
        raise ValueError("global_clipnorm is for implementation='transformers' (tf-models-official clips at 1.0)")
    optimizer = optimization.create_optimizer(
        init_lr=learning_rate,
        num_train_steps=int(num_train_steps),
        num_warmup_steps=int(round(num_train_steps * warmup_ratio)),
        end_lr=end_learning_rate,
        optimizer_type="adamw",
    )
    optimizer.weight_decay_rate = weight_decay
    if lazy_sparse_updates:
        config = optimizer.get_config()
        optimizer = LazyAdamWeightDecay(
            learning_rate=optimizer._get_hyper("learning_rate"), beta_1=config["beta_1"], beta_2=config["beta_2"],
            epsilon=config["epsilon"], weight_decay_rate=weight_decay,
            exclude_from_weight_decay=optimizer._exclude_from_weight_decay,
            gradient_clip_norm=optimizer.gradient_clip_norm, name="LazyAdamWeightDecay")
    optimizer.gradient_aggregator = _dense_before_all_reduce(optimizer.gradient_aggregator)
    return _clip_after_all_reduce(optimizer)


def _clip_after_all_reduce(optimizer):
    """Clips the global batch's gradient to tf-models-official's norm (1.0) after the replicas' gradients are summed.

    tf-models-official's `AdamWeightDecay` clips each replica's share of the
    gradient before the all-reduce (as BERT's TF1 code did), so several
    replicas took other steps than one device with the same global batch.
    Keras' ``global_clipnorm`` clips after it: the same step on any number of
    replicas, and the same as before on one.
    """
    clip_norm = optimizer.gradient_clip_norm
    optimizer.gradient_clip_norm = 0.0
    optimizer.global_clipnorm = clip_norm if clip_norm > 0 else None
    return optimizer


def _transformers_optimizer(learning_rate, num_train_steps, warmup_ratio, weight_decay, end_learning_rate,
                            global_clipnorm=None, lazy_sparse_updates=False):
    """``transformers.create_optimizer``'s AdamWeightDecay (or Adam without decay), warm-up then linear decay.

    With ``lazy_sparse_updates``, the same optimizer (schedule, decay rules, clipping) rebuilt from its
    config as ``LazyTransformersAdamWeightDecay``.
    """
    import transformers

    optimizer, _ = transformers.create_optimizer(
        init_lr=learning_rate, num_train_steps=int(num_train_steps),
        num_warmup_steps=int(round(num_train_steps * warmup_ratio)),
        min_lr_ratio=end_learning_rate / learning_rate, weight_decay_rate=weight_decay,
        adam_global_clipnorm=global_clipnorm)
    if lazy_sparse_updates:
        config = optimizer.get_config()
        config["weight_decay_rate"] = weight_decay  # Plain Adam (no decay) has no such entry.
        if isinstance(optimizer, transformers.AdamWeightDecay):
            config["include_in_weight_decay"] = optimizer._include_in_weight_decay
            config["exclude_from_weight_decay"] = optimizer._exclude_from_weight_decay
        config["name"] = "LazyTransformersAdamWeightDecay"
        config["learning_rate"] = optimizer._get_hyper("learning_rate")  # The schedule object itself.
        optimizer = lazy_transformers_adamw_class()(**config)
    if hasattr(optimizer, "gradient_aggregator"):  # Legacy Keras optimizers (AdamWeightDecay) have one.
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
