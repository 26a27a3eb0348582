"""Training speed: the lesson notebook's Transformer vs this package's defaults, on the same AG News data.

    python -m pipelines.bench.agnews_transformer --data-dir ../shared/data

The lesson's model is rebuilt here exactly as its notebook writes it (keras.io
layers without get_config or masking, TextVectorization(20,000) inside the
model padding every text to 256, embedding 32, 2 heads with key_dim 32,
feed-forward 32, GlobalAveragePooling1D, Dense(20), batch 128, Adam). The
package's defaults are the fit script's (`tfnlp.tasks.agnews_transformer`: WordPiece ids
computed once in tf.data, batches bucketed by length; trained with the
sentence-embedding distillation loss, whose teacher embeddings are computed
before timing starts and cached in --output-dir). After a warm-up of
--warmup-steps steps each (graph tracing is not timed), the two models train
--epochs epochs taking turns, epoch by epoch, so that both see the same changes
in machine load; the table shows each model's median epoch, in training
examples per second, each epoch timed from its start to its end as Keras
reports them (the fit scripts' `Throughput` callback).
"""

import dataclasses

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
import tf_keras

from tfnlp.tasks import ag_news, agnews_transformer as recipe
from tfnlp.training import Runtime, RuntimeArguments, cli, field, parse_arguments
from tfnlp.training.benchmark import interleaved_rates


class LessonTokenAndPositionEmbedding(tf_keras.layers.Layer):
    """The notebook's layer, verbatim apart from tf_keras."""

    def __init__(self, maxlen, vocab_size, embed_dim):
        super().__init__()
        self.token_emb = tf_keras.layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.pos_emb = tf_keras.layers.Embedding(input_dim=maxlen, output_dim=embed_dim)
        self.maxlen = maxlen

    def call(self, x):
        positions = tf.range(start=0, limit=self.maxlen, delta=1)
        return self.token_emb(x) + self.pos_emb(positions)


class LessonTransformerBlock(tf_keras.layers.Layer):
    """The notebook's layer, verbatim apart from tf_keras."""

    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1):
        super().__init__()
        self.att = tf_keras.layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim, name="attn")
        self.ffn = tf_keras.Sequential([tf_keras.layers.Dense(ff_dim, activation="relu"),
                                        tf_keras.layers.Dense(embed_dim)])
        self.layernorm1 = tf_keras.layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = tf_keras.layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = tf_keras.layers.Dropout(rate)
        self.dropout2 = tf_keras.layers.Dropout(rate)

    def call(self, inputs, training=None):
        attn_output = self.dropout1(self.att(inputs, inputs), training=training)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.dropout2(self.ffn(out1), training=training)
        return self.layernorm2(out1 + ffn_output)


def lesson_model(train_texts):
    """The notebook's model (cell "In [4]"), adapted and compiled as in cell "In [5]"."""
    embed_dim, num_heads, ff_dim, maxlen, vocab_size = 32, 2, 32, 256, 20000
    vectorizer = tf_keras.layers.TextVectorization(max_tokens=vocab_size, output_sequence_length=maxlen)
    vectorizer.adapt(train_texts.batch(1024))
    model = tf_keras.Sequential([
        tf_keras.Input(shape=(), dtype=tf.string),
        vectorizer,
        LessonTokenAndPositionEmbedding(maxlen, vocab_size, embed_dim),
        LessonTransformerBlock(embed_dim, num_heads, ff_dim),
        tf_keras.layers.GlobalAveragePooling1D(),
        tf_keras.layers.Dropout(0.1),
        tf_keras.layers.Dense(20, activation="relu"),
        tf_keras.layers.Dropout(0.1),
        tf_keras.layers.Dense(4, activation="softmax"),
    ])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["acc"], optimizer="adam")
    return model


def lesson_setup(splits):
    """The lesson's model and its batches (texts padded to 256 inside the model, batch 128)."""
    model = lesson_model(splits["train"].map(lambda text, label: text))
    return model, splits["train"].batch(128).prefetch(tf.data.AUTOTUNE)


def defaults_setup(splits, args, pipeline_arguments):
    """The pipeline's model (with ``args.overrides``, parsed into ``pipeline_arguments``) and its length-bucketed
    batches of cached ids."""
    _, model_args, train_args, runtime_args = pipeline_arguments
    runtime = Runtime(runtime_args)
    train, teacher_dim = splits["train"], None
    if train_args.distillation_weight:  # Timed with its distillation head and loss, as the fit script trains.
        train, teacher_dim, _ = recipe.attach_teacher_embeddings(train, model_args, train_args, runtime)
        runtime.reseed()
    vectorizer = recipe.build_vectorizer(model_args, train)
    batches = recipe.make_batches({"train": train}, vectorizer, model_args, train_args, runtime)
    model = recipe.build_trainer(recipe.build_model(model_args, vectorizer, 4), train_args, teacher_dim)
    recipe.compile_model(model, train_args, runtime, int(batches["train"].cardinality()) * (args.epochs + 1), 4)
    return model, batches["train"]


@dataclasses.dataclass
class BenchmarkArguments:
    """The data, the timing, and the pipeline arguments that override its defaults."""

    data_dir: str = field("", "AG News folder ('' = $TFNLP_DATA_DIR, else tfds).")
    max_train_examples: int | None = field(None, "Train on the first N examples.")
    epochs: int = field(5, "Timed epochs per model (the median is shown).")
    warmup_steps: int = field(10, "Untimed steps before timing.")
    output_dir: str = field("/tmp/tfnlp-bench-agnews", "Scratch folder.")
    skip_lesson: bool = field(False, "Time only the pipeline's model.")
    overrides: tuple[str, ...] = field((), "After '--': pipeline arguments overriding the defaults, e.g. -- "
                                           "--batch-size 128.", nargs="*", positional=True)

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError("--epochs must be at least 1")


def parse_args(argv=None):
    """The command line, checked: the benchmark's options, and the pipeline's after '--'.

    The overrides are parsed and validated by the pipeline's own argument groups here, before any data is read.
    Returns (`BenchmarkArguments`, the pipeline's data, model, training and runtime arguments).
    """
    (args,) = parse_arguments(__doc__, BenchmarkArguments, argv=argv)
    pipeline_arguments = parse_arguments(
        "pipeline overrides", ag_news.DataArguments, recipe.ModelArguments, recipe.TrainingArguments,
        RuntimeArguments, argv=[*args.overrides, "--output-dir", args.output_dir])
    return args, pipeline_arguments


def main(argv=None):
    args, pipeline_arguments = parse_args(argv)
    splits, _ = ag_news.load_splits(ag_news.DataArguments(data_dir=args.data_dir,
                                                            max_train_examples=args.max_train_examples))
    num_train = ag_news.count_examples(splits["train"])
    setups = [] if args.skip_lesson else [lesson_setup(splits)]
    setups.append(defaults_setup(splits, args, pipeline_arguments))
    *lesson, defaults = interleaved_rates(setups, num_train, args.epochs, args.warmup_steps)
    lesson = lesson[0] if lesson else None
    print(f"\nTraining speed on {num_train} AG News examples, {args.epochs} epoch(s), "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or 'all'} threads "
          f"(median epoch; the models' epochs take turns)")
    print(f"| {'model':<55} | {'examples/s':>10} |")
    print(f"| {'-' * 55} | {'-' * 10} |")
    if lesson is not None:
        print(f"| {'lesson (TextVectorization 20k, pad 256, d32, 2 heads)':<55} | {lesson:>10.0f} |")
    label = "tfnlp defaults (WordPiece, length buckets)" + (" " + " ".join(args.overrides) if args.overrides else "")
    print(f"| {label:<55} | {defaults:>10.0f} |")
    comparison = "" if lesson is None else f" = {defaults / lesson:.1f} x the lesson's {lesson:.0f} examples/s"
    print(f"defaults: {defaults:.0f} examples/s{comparison}")


if __name__ == "__main__":
    cli.run(main)
