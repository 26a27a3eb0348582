"""Training speed of TFBertForSequenceClassification: the lesson's input path vs this package's, same model.

    python -m pipelines.bench.agnews_hf_bert --data-dir ../shared/data

Both sides train the same HF model (the packaged all-MiniLM-L6-v2, or
--pretrained) from the same initial weights on the same AG News texts, with the
same batch size and optimizer; only the input path differs:

- lesson: HF's Python ``BertTokenizer.encode`` inside ``tf.py_function``, every
  text padded to 128, ``input_ids`` alone fed to the model (the notebook's
  ``process_fn``), batched, ``model.compile('adam', ...)`` on the HF model itself;
- tfnlp: `tfnlp.text.BertTokenizer` in the graph, the ids computed once and cached,
  batches bucketed by length and padded to their own longest text, with
  ``attention_mask`` (`pipelines.agnews_hf_bert`'s input path: `tfnlp.tasks.bert_classifier.make_batches`).

``--stage fine_tune`` (default) trains every weight, as stage 2 does;
``--stage frozen`` freezes the encoder as the lesson does
(``model.layers[0].trainable = False``), both sides still running it every step
(the fit script's cache of frozen features is not used here; its own
metrics.json reports that speed-up). After --warmup-steps untimed steps each,
the two train --epochs epochs taking turns; the table shows each side's median
epoch in training examples per second, and their ratio.
"""

import dataclasses

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
import tf_keras

from tfnlp import pretrained
from tfnlp.data.batching import encode_splits
from tfnlp.models.hf_bert_classifier import build_hf_bert_classifier, hf_inputs, ids_classifier
from tfnlp.tasks import ag_news
from tfnlp.tasks.bert_classifier import make_batches
from tfnlp.text import BertTokenizer
from tfnlp.training import Runtime, RuntimeArguments, cli, field, parse_arguments
from tfnlp.training.benchmark import interleaved_rates

LESSON_LENGTH = 128


def lesson_batches(train, folder, batch_size):
    """The notebook's input path: ``py_function(tokenizer.encode)`` padded to 128, ``(input_ids, label)`` batches."""
    import transformers

    tokenizer = transformers.BertTokenizer.from_pretrained(folder)  # The lesson's (Python) tokenizer.

    def process(x):
        return tokenizer.encode(x.numpy().decode("utf-8"), return_tensors="tf", padding="max_length",
                                max_length=LESSON_LENGTH, truncation=True)[0]

    def process_fn(text, label):
        ids = tf.py_function(process, inp=[text], Tout=tf.int32)
        ids.set_shape(LESSON_LENGTH)
        return ids, label

    return train.map(process_fn).batch(batch_size)


def lesson_setup(train, folder, class_names, args):
    """The HF model compiled as the notebook compiles it, on the notebook's batches."""
    tf_keras.utils.set_random_seed(args.seed)
    model = build_hf_bert_classifier(folder, class_names=class_names)
    if args.stage == "frozen":
        model.layers[0].trainable = False  # The lesson's freezing of `bert`.
    model.compile(tf_keras.optimizers.Adam(args.learning_rate),
                  tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["acc"])
    return model, lesson_batches(train, folder, args.batch_size)


def tfnlp_setup(train, folder, class_names, args):
    """The same HF model and optimizer on the fit script's input path (cached in-graph ids, length buckets)."""
    tf_keras.utils.set_random_seed(args.seed)
    runtime = Runtime(RuntimeArguments(output_dir=args.output_dir, seed=args.seed, steps_per_execution=1))
    model = build_hf_bert_classifier(folder, class_names=class_names)
    if args.stage == "frozen":
        model.layers[0].trainable = False
    tokenizer = BertTokenizer.from_pretrained(folder, sequence_length=LESSON_LENGTH)
    encoded = encode_splits({"train": train}, tokenizer, max_length=LESSON_LENGTH)
    batches = make_batches(encoded, LESSON_LENGTH, args.batch_size, runtime, hf_inputs)
    trainer = ids_classifier(model)
    trainer.compile(tf_keras.optimizers.Adam(args.learning_rate),
                    tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["acc"])
    return trainer, batches["train"]


@dataclasses.dataclass
class BenchmarkArguments:
    """The model, the data, and the settings both sides share."""

    data_dir: str = field("", "AG News folder ('' = $TFNLP_DATA_DIR, else tfds).")
    pretrained: str = field("", "'' = packaged all-MiniLM-L6-v2, or a HF BERT folder.")
    max_train_examples: int = field(512, "Texts per epoch (the first N).")
    stage: str = field("fine_tune", "fine_tune: every weight trains; frozen: the encoder frozen, as the lesson.",
                       choices=("fine_tune", "frozen"))
    batch_size: int = field(32, "Batch size of both sides (the lesson's 32).")
    learning_rate: float = field(3e-5, "Adam learning rate of both sides.")
    epochs: int = field(3, "Timed epochs per side (the median is shown).")
    warmup_steps: int = field(3, "Untimed steps per side before timing.")
    seed: int = field(42, "Seed of both sides' initial weights.")
    output_dir: str = field("/tmp/tfnlp-bench-agnews-hf-bert", "Scratch folder.")

    def __post_init__(self):
        if self.max_train_examples < self.batch_size or self.epochs < 1 or self.warmup_steps < 1:
            raise ValueError("--max-train-examples must hold a batch; --epochs and --warmup-steps must be at least 1")


def main(argv=None):
    (args,) = parse_arguments(__doc__, BenchmarkArguments, argv=argv)

    folder = pretrained.resolve_pretrained(args.pretrained or None)
    splits, class_names = ag_news.load_splits(ag_news.DataArguments(data_dir=args.data_dir,
                                                                    max_train_examples=args.max_train_examples))
    num_train = ag_news.count_examples(splits["train"])
    setups = [lesson_setup(splits["train"], folder, class_names, args),
              tfnlp_setup(splits["train"], folder, class_names, args)]
    lesson, ours = interleaved_rates(setups, num_train, args.epochs, args.warmup_steps)
    print(f"\nTFBertForSequenceClassification ({pretrained.model_slug(args.pretrained or None)}), stage {args.stage}: "
          f"training speed on {num_train} AG News texts, batch {args.batch_size}, {args.epochs} epoch(s) "
          f"(median epoch; the two sides' epochs take turns)")
    print(f"| {'input path':<62} | {'examples/s':>10} |")
    print(f"| {'-' * 62} | {'-' * 10} |")
    print(f"| {'lesson: py_function(BertTokenizer.encode), padded to 128':<62} | {lesson:>10.1f} |")
    print(f"| {'tfnlp: in-graph BertTokenizer, cached, batches by length':<62} | {ours:>10.1f} |")
    print(f"tfnlp: {ours:.1f} examples/s = {ours / lesson:.2f} x the lesson's {lesson:.1f} examples/s")
    return {"lesson": lesson, "tfnlp": ours, "ratio": ours / lesson}


if __name__ == "__main__":
    cli.run(main)
