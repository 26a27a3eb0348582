"""The custom Transformer AG News classifier's recipe: its argument groups, batches, model, trainer, optimizer, export.

`pipelines.agnews_transformer` (the fit script) and `pipelines.bench.agnews_transformer` (its speed benchmark)
both build from here, so that the benchmark times exactly what the fit script trains.
"""

import dataclasses

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
import tf_keras

from tfnlp import pretrained
from tfnlp.data.batching import bucketed_splits
from tfnlp.models import SentenceEmbeddingDistiller, build_text_vectorizer, build_transformer_classifier
from tfnlp.text import BertTokenizer
from tfnlp.training import field
from tfnlp.training.arguments import check_local_folder_or_hub_name, check_optimization_arguments
from tfnlp.training.distillation import sentence_embeddings
from tfnlp.training.losses import SparseCategoricalCrossentropyWithSmoothing
from tfnlp.training.optimization import create_optimizer
from tfnlp.utils.progress import Progress


@dataclasses.dataclass
class ModelArguments:
    """The tokenizer and the Transformer classifier."""

    tokenizer: str = field("wordpiece", "wordpiece: the pretrained BERT's vocabulary, in-graph; "
                                        "text_vectorization: TextVectorization adapted on train (the lesson).",
                           choices=("wordpiece", "text_vectorization"))
    pretrained: str = field("", "BERT for the WordPiece vocabulary and embeddings: '' = packaged "
                                "all-MiniLM-L6-v2, a local HF folder, or a hub name.")
    pretrained_embeddings: bool = field(True, "Use the pretrained BERT's WordPiece vectors (wordpiece only), "
                                              "projected to --embedding-dim; else learn embeddings from scratch.")
    freeze_pretrained_embeddings: bool = field(True, "Keep the pretrained vectors fixed while training.")
    pool_pretrained_embeddings: bool = field(True, "Concatenate the mean of the pretrained vectors to the "
                                                   "pooled Transformer output.")
    pretrained_components: int = field(0, "Keep only the top principal components of the frozen pretrained "
                                          "vectors (computed once; less to gather per token, a smaller export); "
                                          "0 = the full width.")
    learn_token_embeddings: bool = field(True, "Also learn task-specific token embeddings from scratch, added "
                                               "to the projected pretrained vectors.")
    vocabulary_size: int = field(20000, "TextVectorization vocabulary size (text_vectorization only).")
    sequence_length: int = field(128, "Maximum tokens per text; batches are padded only to their longest text.")
    pad_to_sequence_length: bool = field(False, "Pad every text to --sequence-length, as the lesson does "
                                                "(slower; for comparison).")
    embedding_dim: int = field(32, "Width of the Transformer (token vectors).")
    num_layers: int = field(1, "Transformer blocks.")
    num_heads: int = field(2, "Attention heads per block (must divide --embedding-dim).")
    intermediate_dim: int = field(64, "Feed-forward hidden size.")
    dropout: float = field(0.1, "Dropout rate in [0, 1).")
    activation: str = field("gelu", "Feed-forward activation.", choices=("relu", "gelu"))
    ngram_buckets: int = field(100000, "Hash buckets of the bag of token n-grams concatenated to the pooled "
                                       "Transformer output (fastText's); 0 = no n-gram bag (the lesson).")
    ngram_orders: str = field("2", "Comma-separated n-gram lengths of the bag, e.g. '2' or '2,3'.")

    def __post_init__(self):
        if self.sequence_length < 2:
            raise ValueError("--sequence-length must be at least 2")
        for name in ("embedding_dim", "num_layers", "num_heads", "intermediate_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if self.embedding_dim % self.num_heads:
            raise ValueError(f"--num-heads ({self.num_heads}) must divide --embedding-dim ({self.embedding_dim}): "
                             f"each head attends over embedding-dim / num-heads dimensions")
        if self.tokenizer == "text_vectorization" and self.vocabulary_size < 3:
            raise ValueError("--vocabulary-size must be at least 3 (padding, out-of-vocabulary and one token)")
        if not 0 <= self.dropout < 1:
            raise ValueError("--dropout must lie in [0, 1)")
        check_local_folder_or_hub_name("--pretrained", self.pretrained)
        if self.pretrained_components < 0:
            raise ValueError("--pretrained-components must be 0 (the full width) or positive")
        if self.pretrained_components and self.pretrained_embeddings and not self.freeze_pretrained_embeddings:
            raise ValueError("--pretrained-components reduces frozen pretrained vectors only: it cannot be "
                             "combined with --no-freeze-pretrained-embeddings")
        if self.ngram_buckets < 0:
            raise ValueError("--ngram-buckets must be 0 (no n-gram bag) or positive")
        self.ngram_order_list()  # Validates --ngram-orders.

    def ngram_order_list(self):
        """--ngram-orders as a tuple of ints (a ValueError naming the option if it is not such a list)."""
        try:
            orders = tuple(int(part) for part in self.ngram_orders.split(","))
        except ValueError:
            orders = ()
        if not orders or min(orders) < 1 or len(set(orders)) != len(orders):
            raise ValueError(f"--ngram-orders must be distinct positive integers separated by commas, "
                             f"received {self.ngram_orders!r}")
        return orders


@dataclasses.dataclass
class TrainingArguments:
    """Optimization, and where the export goes."""

    epochs: int = field(16, "Training epochs.")
    batch_size: int = field(256, "Global batch size (split across replicas).")
    learning_rate: float = field(4e-3, "AdamW learning rate (linear warm-up, then linear decay to 0).")
    warmup_ratio: float = field(0.1, "Fraction of steps with linear warm-up.")
    weight_decay: float = field(0.01, "AdamW weight decay (not on LayerNorm and biases).")
    label_smoothing: float = field(0.1, "Label smoothing of the cross-entropy, in [0, 1).")
    lazy_embedding_updates: bool = field(True, "Update only the embedding rows each batch uses (LazyAdam): the "
                                               "bigram and token tables cost what a batch touches, not their size.")
    distillation_weight: float = field(3.0, "Weight of the sentence-embedding distillation loss: the classifier's "
                                            "pooled text vector also predicts (through a dense head used only in "
                                            "training) the frozen teacher BERT's unit-length mean-pooled embedding "
                                            "of each training text, computed once before training and cached in "
                                            "<output-dir>/teacher; the loss adds this weight times the cosine "
                                            "distance. 0 = no teacher.")
    distillation_teacher: str = field("", "The teacher BERT: '' = the --pretrained one (packaged all-MiniLM-L6-v2 "
                                          "by default), a local HF folder, or a hub name.")
    restore_best_epoch: bool = field(False, "Test and export the epoch with the best validation accuracy; else "
                                            "the last epoch (the learning rate has decayed to 0 there).")
    export_dir: str = field("saved_models/agnews_transformer", "Export base folder; the SavedModel goes to "
                                                               "<export-dir>/<next version>/. '' = no export.")

    def __post_init__(self):
        check_optimization_arguments(self)
        if not 0 <= self.label_smoothing < 1:
            raise ValueError("--label-smoothing must lie in [0, 1)")
        if self.distillation_weight < 0:
            raise ValueError("--distillation-weight must be >= 0 (0 = no teacher)")
        check_local_folder_or_hub_name("--distillation-teacher", self.distillation_teacher)


def attach_teacher_embeddings(train, model_args, train_args, runtime):
    """``(text, label)`` -> ``(text, (label, teacher embedding))``, the embeddings computed once and cached.

    Returns:
        (dataset, teacher width, seconds spent encoding; 0.0 when read from ``<output-dir>/teacher/train.npz``).
    """
    texts = list(train.map(lambda text, label: text).as_numpy_iterator())
    teacher = train_args.distillation_teacher or model_args.pretrained or None
    embeddings, seconds = sentence_embeddings(texts, teacher,
                                              cache_path=runtime.worker_path(runtime.folder.teacher_file),
                                              sequence_length=model_args.sequence_length)
    pairs = tf.data.Dataset.zip((train, tf.data.Dataset.from_tensor_slices(embeddings)))
    return pairs.map(lambda example, vector: (example[0], (example[1], vector))), embeddings.shape[1], seconds


def build_vectorizer(args, train, num_train=None):
    """The text -> ids layer: the pretrained WordPiece tokenizer, or a TextVectorization adapted on train."""
    if args.tokenizer == "wordpiece":
        return BertTokenizer.from_pretrained(args.pretrained or None, sequence_length=args.sequence_length,
                                             name="tokenizer")
    with Progress("adapting the TextVectorization vocabulary", total=num_train, unit="texts") as progress:
        vectorizer = build_text_vectorizer(train.map(lambda text, label: text), vocabulary_size=args.vocabulary_size,
                                           name="tokenizer")
        progress.update(num_train or 0)
    return vectorizer


def make_batches(splits, vectorizer, model_args, train_args, runtime):
    """Encodes every split once (cached) and batches it by length (or to a fixed length, as the lesson)."""
    return bucketed_splits(splits, vectorizer, max_length=model_args.sequence_length,
                           batch_size=train_args.batch_size, seed=runtime.args.seed,
                           pad_to_boundary=runtime.args.jit_compile,
                           fixed_length=model_args.pad_to_sequence_length)


def build_model(model_args, vectorizer, num_classes):
    """The classifier on token ids (tokenization runs in tf.data; see `export_model` for raw text)."""
    options = dict(num_classes=num_classes, sequence_length=model_args.sequence_length,
                   embedding_dim=model_args.embedding_dim, num_layers=model_args.num_layers,
                   num_heads=model_args.num_heads, intermediate_dim=model_args.intermediate_dim,
                   dropout=model_args.dropout, activation=model_args.activation,
                   ngram_buckets=model_args.ngram_buckets, ngram_orders=model_args.ngram_order_list())
    if model_args.tokenizer == "wordpiece":
        options["vocabulary_size"] = vectorizer.vocabulary_size
        if model_args.pretrained_embeddings:
            options.update(
                pretrained_embeddings=pretrained.load_embedding_matrices(model_args.pretrained or None),
                freeze_pretrained_embeddings=model_args.freeze_pretrained_embeddings,
                pool_pretrained_embeddings=model_args.pool_pretrained_embeddings,
                pretrained_components=model_args.pretrained_components or None,
                learn_token_embeddings=model_args.learn_token_embeddings)
    else:
        options["vocabulary_size"] = vectorizer.vocabulary_size()
    return build_transformer_classifier(None, **options)


def build_trainer(model, train_args, teacher_dim):
    """The model that is fitted: ``model`` itself, or a `SentenceEmbeddingDistiller` around it (teacher_dim set)."""
    if not teacher_dim:
        return model
    return SentenceEmbeddingDistiller(model, "dropout", teacher_dim, train_args.distillation_weight,
                                      name="distiller")


def compile_model(model, train_args, runtime, num_train_steps, num_classes):
    """AdamW with warm-up and decay over ``num_train_steps``, smoothed cross-entropy, accuracy."""
    model.compile(
        optimizer=create_optimizer(train_args.learning_rate, num_train_steps, warmup_ratio=train_args.warmup_ratio,
                                   weight_decay=train_args.weight_decay,
                                   lazy_sparse_updates=train_args.lazy_embedding_updates),
        loss=SparseCategoricalCrossentropyWithSmoothing(num_classes, train_args.label_smoothing),
        metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        **runtime.compile_options())


def export_model(model, vectorizer, sequence_length):
    """Raw text -> ``{"logits", "truncated"}``: the tokenizer in front of the trained classifier.

    ``truncated`` is True for a text with more tokens than the classifier reads (``sequence_length``,
    ``[CLS]`` and ``[SEP]`` included for the WordPiece tokenizer, which cuts its own output; the
    TextVectorization ids, padded with 0, are cut here).
    """
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    if isinstance(vectorizer, BertTokenizer):  # The same tokenizer, also counting the pieces it cuts.
        features = BertTokenizer.from_config({**vectorizer.get_config(), "return_num_truncated_tokens": True})(text)
        ids, truncated = features["input_ids"], features["num_truncated_tokens"] > 0
    else:
        ids = vectorizer(text)
        truncated = tf.math.count_nonzero(ids, axis=1) > sequence_length
    return tf_keras.Model(text, {"logits": model(ids[:, :sequence_length]), "truncated": truncated},
                          name="agnews_transformer")
