"""Train the lesson's TF-Hub BERT classifier on AG News: frozen encoder first, then AdamW fine-tuning.

    python -m pipelines.agnews_hub_bert --output-dir runs/agnews_hub_bert

The model is the lesson's: ``hub.KerasLayer(preprocess)`` + ``hub.KerasLayer(encoder)``
+ dropout + dense, on the mean of ``sequence_output`` over the real tokens
(``--pooling mean``, all-MiniLM-L6-v2's sentence vector) or on ``pooled_output``
(``--pooling pooled_output``, the lesson's choice). By default the two TF-Hub SavedModels
are built offline from the packaged all-MiniLM-L6-v2 (``pipelines.export_hub_bert``,
written once to --hub-dir); online, the lesson's handles work as they are:

    --preprocess https://tfhub.dev/tensorflow/bert_en_uncased_preprocess/3 \\
    --encoder https://tfhub.dev/tensorflow/small_bert/bert_en_uncased_L-4_H-128_A-2/1

Stage 1 (frozen encoder) computes the pooled text vectors once, caches
them in <output-dir>/frozen/features/, and trains the dropout + dense head on
them, so every head epoch after the first skips the encoder. Stage 2 fine-tunes
everything with AdamW (tf-models-official), linear warm-up and decay, weight
decay off LayerNorm and biases; the best epoch on validation is kept, or, with
``--average-snapshots N``, the average of N weight snapshots over the end of the
training if it scores higher on validation. Texts are batched by length, each
batch padded to its longest text. Each stage writes its checkpoints, logs, history.csv and
metrics.json under <output-dir>/<stage>/; config.json and the run's summary
metrics.json go to <output-dir>. The exported SavedModel takes raw text; serving it
needs ``import tensorflow_text`` (the preprocessor's ops), not tfnlp.
"""

import dataclasses
import logging
import os
import time

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

from tfnlp.data.batching import encode_splits
from tfnlp.hub import DEFAULT_HUB_DIR
from tfnlp.models import build_encoder_classifier
from tfnlp.models.hub_bert_classifier import POOLINGS
from tfnlp.tasks.ag_news import (DataArguments, FrozenArguments, check_stages, count_examples, fine_tune_arguments,
                                  load_splits)
from tfnlp.tasks.bert_classifier import run_two_stages
from tfnlp.tasks.hub_bert_classifier import resolve_handles, token_ids_encoder, two_stage_model
from tfnlp.training import Runtime, RuntimeArguments, cli, field, parse_arguments
from tfnlp.training.arguments import check_local_folder_or_hub_name, check_saved_model_or_url

logger = logging.getLogger("agnews_hub_bert")



@dataclasses.dataclass
class ModelArguments:
    """The TF-Hub preprocessor and encoder, and the classifier head."""

    encoder: str = field("", "TF-Hub BERT encoder: URL (tfhub.dev, Kaggle) or local SavedModel folder. '' = "
                             "--pretrained exported to --hub-dir (built on first use).")
    preprocess: str = field("", "Its TF-Hub preprocessor: URL or local folder. '' = the one exported beside "
                                "the default encoder (required when --encoder is given).")
    pretrained: str = field("", "BERT for the default artifacts: '' = packaged all-MiniLM-L6-v2, or a local HF "
                                "BERT folder.")
    hub_dir: str = field(DEFAULT_HUB_DIR, "Folder of the default artifacts (see pipelines.export_hub_bert).")
    sequence_length: int = field(128, "Maximum WordPiece tokens per text; batches are padded only to their longest.")
    pooling: str = field("mean", "Text vector for the head: mean (of sequence_output over the real tokens: "
                                 "all-MiniLM-L6-v2's sentence embedding) or pooled_output (the encoder's, as the "
                                 "lesson).",
                         choices=POOLINGS)
    dropout: float = field(0.1, "Dropout on the pooled output, in [0, 1).")

    def __post_init__(self):
        if self.encoder and not self.preprocess:
            raise ValueError("--encoder needs its --preprocess (the preprocessor matching its vocabulary)")
        if self.preprocess and not self.encoder:
            raise ValueError("--preprocess needs its --encoder")
        if self.encoder and self.pretrained:
            raise ValueError("--pretrained builds the default artifacts; with --encoder and --preprocess it is unused")
        check_saved_model_or_url("--encoder", self.encoder)
        check_saved_model_or_url("--preprocess", self.preprocess)
        check_local_folder_or_hub_name("--pretrained", self.pretrained)
        if self.sequence_length < 3:
            raise ValueError("--sequence-length must be at least 3 ([CLS], a token, [SEP])")
        if not 0 <= self.dropout < 1:
            raise ValueError("--dropout must lie in [0, 1)")


FineTuneArguments = fine_tune_arguments(epochs=5, learning_rate=3e-5, export_dir="saved_models/agnews_hub_bert")


def main(argv=None):
    data_args, model_args, frozen_args, tune_args, runtime_args = parse_arguments(
        __doc__, DataArguments, ModelArguments, FrozenArguments, FineTuneArguments, RuntimeArguments, argv=argv,
        validate=check_stages)
    runtime = Runtime(runtime_args)
    splits, class_names = load_splits(data_args)  # First: a missing data set fails before the artifacts are built.
    preprocess, encoder = resolve_handles(model_args, runtime)
    runtime.write_config(data=data_args, model=model_args, frozen=frozen_args, fine_tune=tune_args,
                         runtime=runtime_args, handles={"preprocess": preprocess, "encoder": encoder})

    with runtime.scope():
        classifier = build_encoder_classifier(encoder, len(class_names), trainable=False, dropout=model_args.dropout,
                                              pooling=model_args.pooling)
    cli.describe_model(classifier, logger)

    # Tokenized once, batched at each stage's batch size.
    start = time.perf_counter()
    encoded = encode_splits(splits, token_ids_encoder(preprocess, model_args.sequence_length),
                            max_length=model_args.sequence_length)
    model = two_stage_model(classifier, preprocess, class_names, model_args, frozen_args)
    cache_key = "|".join(map(str, (os.path.abspath(encoder) if os.path.exists(encoder) else encoder,
                                   model_args.sequence_length, model_args.pooling, data_args)))
    return run_two_stages(model, runtime, encoded, class_names, sequence_length=model_args.sequence_length,
                          frozen_args=frozen_args, tune_args=tune_args, cache_key=cache_key,
                          num_train=count_examples(splits["train"]),
                          metrics={"handles": {"preprocess": preprocess, "encoder": encoder}}, start=start,
                          log=logger)


if __name__ == "__main__":
    cli.run(main)
