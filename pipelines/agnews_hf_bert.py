"""Train HuggingFace ``TFBertForSequenceClassification`` on AG News: frozen encoder first, then fine-tuning.

    python -m pipelines.agnews_hf_bert --output-dir runs/agnews_hf_bert

The lesson's HuggingFace model (``TFBertForSequenceClassification`` with the
AG News ``id2label``), from the packaged all-MiniLM-L6-v2 by default
(``--pretrained``: a local HF BERT folder, or a hub name such as
``bert-base-uncased`` online). Texts are tokenized once, in the graph, by
`tfnlp.text.BertTokenizer` inside ``tf.data`` (no ``py_function``), cached, and
batched by length, each batch padded to its own longest text.

Stage 1 (the lesson's ``model.layers[0].trainable = False``): the encoder's
vectors are computed once per split and cached in <output-dir>/frozen/features/,
and only the head (dropout + classifier; with ``--frozen-features cls`` also the
pooler) trains on them. Stage 2 fine-tunes everything with
``transformers.create_optimizer`` (linear warm-up, then linear decay; weight
decay not on LayerNorm and bias weights), starting from the stage-1 head; the
best epoch on validation is kept, or, with ``--average-snapshots N``, the average
of N weight snapshots over the end of the training if it scores higher on
validation. Each stage writes checkpoints, logs, history.csv and metrics.json under
<output-dir>/<stage>/; config.json and the run's metrics.json go to <output-dir>.

The export, <export-dir>/<version>/, has two signatures: ``serving_default``
(``text``) and ``serving_ids`` (``input_ids``, ``attention_mask``,
``token_type_ids``, for clients that tokenize themselves); it needs
``import tensorflow_text`` to load, not tfnlp. Beside the SavedModel,
<version>/hf_model/ holds the ``save_pretrained`` folder (config.json with the
labels, tf_model.h5, tokenizer files) that ``from_pretrained`` reloads.
"""

import dataclasses
import logging
import time

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

from tfnlp import pretrained
from tfnlp.data.batching import encode_splits
from tfnlp.models.hf_bert_classifier import build_hf_bert_classifier
from tfnlp.tasks.ag_news import (DataArguments, FrozenArguments, check_stages, count_examples, fine_tune_arguments,
                                  load_splits)
from tfnlp.tasks.bert_classifier import run_two_stages
from tfnlp.tasks.hf_bert_classifier import check_sequence_length, two_stage_model
from tfnlp.text import BertTokenizer
from tfnlp.training import Runtime, RuntimeArguments, cli, field, parse_arguments
from tfnlp.training.arguments import check_local_folder_or_hub_name

logger = logging.getLogger("agnews_hf_bert")

FROZEN_FEATURES = ("cls", "pooler_output")


@dataclasses.dataclass
class ModelArguments:
    """The pretrained BERT, its tokenizer and the classifier head."""

    pretrained: str = field("", "'' = packaged all-MiniLM-L6-v2, a local HF BERT folder (TF or safetensors "
                                "weights), or a hub name (online).")
    sequence_length: int = field(128, "Maximum WordPiece tokens per text ([CLS] and [SEP] included); batches are "
                                      "padded only to their longest text.")
    classifier_dropout: float = field(0.1, "Dropout before the classifier, in [0, 1).")
    frozen_features: str = field("cls", "What stage 1 caches: cls (the [CLS] hidden state; the pooler's dense + "
                                        "tanh then trains with the classifier) or pooler_output (all of the "
                                        "encoder frozen, pooler included, as the lesson).",
                                 choices=FROZEN_FEATURES)

    def __post_init__(self):
        check_local_folder_or_hub_name("--pretrained", self.pretrained)
        if not 3 <= self.sequence_length <= 512:
            raise ValueError("--sequence-length must lie in [3, 512] ([CLS], a token, [SEP]; BERT's positions)")
        if not 0 <= self.classifier_dropout < 1:
            raise ValueError("--classifier-dropout must lie in [0, 1)")


# Chosen on the validation slice (see the README): 4 epochs at 1e-4, the weights at the ends of the last three averaged.
FineTuneArguments = fine_tune_arguments(epochs=4, learning_rate=1e-4, export_dir="saved_models/agnews_hf_bert",
                                       optimizer="transformers.create_optimizer", max_grad_norm=0.0,
                                       average_snapshots=3, average_fraction=0.5)




def main(argv=None):
    data_args, model_args, frozen_args, tune_args, runtime_args = parse_arguments(
        __doc__, DataArguments, ModelArguments, FrozenArguments, FineTuneArguments, RuntimeArguments, argv=argv,
        validate=check_stages)
    runtime = Runtime(runtime_args)  # First: a multi-worker or TPU strategy must exist before any TensorFlow op.
    splits, class_names = load_splits(data_args)  # Next: a missing data set fails in seconds.
    folder = pretrained.resolve_pretrained(model_args.pretrained or None)  # Resolved once; used from here on.
    check_sequence_length(folder, model_args.sequence_length)
    runtime.write_config(data=data_args, model=model_args, frozen=frozen_args, fine_tune=tune_args,
                         runtime=runtime_args, pretrained={"folder": folder})

    tokenizer = BertTokenizer.from_pretrained(folder, sequence_length=model_args.sequence_length)
    with runtime.scope():
        bert_classifier = build_hf_bert_classifier(folder, class_names=class_names,
                                                   classifier_dropout=model_args.classifier_dropout)
    cli.describe_model(bert_classifier, logger)

    # Tokenized once (in the graph), batched at each stage's batch size.
    start = time.perf_counter()
    encoded = encode_splits(splits, tokenizer, max_length=model_args.sequence_length)
    model = two_stage_model(bert_classifier, folder, class_names, model_args, frozen_args)
    cache_key = "|".join(map(str, (folder, model_args.sequence_length, model_args.frozen_features, data_args)))
    return run_two_stages(model, runtime, encoded, class_names, sequence_length=model_args.sequence_length,
                          frozen_args=frozen_args, tune_args=tune_args, cache_key=cache_key,
                          num_train=count_examples(splits["train"]), metrics={"pretrained": folder}, start=start,
                          log=logger)


if __name__ == "__main__":
    cli.run(main)
