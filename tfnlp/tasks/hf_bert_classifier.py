"""The HuggingFace BERT classifier's parts for the two-stage run (`tfnlp.tasks.bert_classifier`): the check of
``--sequence-length``, the stages' models, and the two-signature export with its ``save_pretrained`` folder.

`pipelines.agnews_hf_bert` is its command line.
"""

import dataclasses
import os

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

from tfnlp import pretrained
from tfnlp.errors import ConfigurationError
from tfnlp.models.hf_bert_classifier import (frozen_feature_extractor, frozen_head, hf_inputs, ids_classifier,
                                             text_classifier)
from tfnlp.serving import export_text_classifier
from tfnlp.tasks.bert_classifier import TwoStageModel
from tfnlp.text import BertTokenizer

HF_MODEL_FOLDER = "hf_model"  # In each export version: the save_pretrained folder.


def export(bert_classifier, pretrained_folder, class_names, model_args, export_dir):
    """The two-signature SavedModel in ``<export_dir>/<version>/``, with the ``save_pretrained`` folder inside."""
    tokenizer = BertTokenizer.from_pretrained(pretrained_folder, sequence_length=model_args.sequence_length,
                                              return_num_truncated_tokens=True, name="tokenizer")

    def save_hf_model(version_folder):
        pretrained.save_pretrained(bert_classifier, os.path.join(version_folder, HF_MODEL_FOLDER), pretrained_folder)

    return export_text_classifier(
        text_classifier(bert_classifier, tokenizer), class_names, export_dir,
        ids_model=ids_classifier(bert_classifier, name="hf_bert_ids_classifier"), tokenizer=tokenizer,
        max_length=bert_classifier.config.max_position_embeddings, extras=save_hf_model)


def check_sequence_length(folder, sequence_length):
    """Rejects a --sequence-length beyond the pretrained BERT's position embeddings (read from its config.json)."""
    limit = pretrained.read_config(folder).get("max_position_embeddings", 512)
    if sequence_length > limit:
        raise ConfigurationError(f"--sequence-length {sequence_length} exceeds the {limit} positions of the BERT in "
                                 f"{folder}")


def two_stage_model(bert_classifier, pretrained_folder, class_names, model_args, frozen_args):
    """The `TwoStageModel` of a ``TFBertForSequenceClassification`` (`tfnlp.models.build_hf_bert_classifier`).

    Stage 1 trains the head on the cached ``[CLS]`` states (``--frozen-features cls``: the pooler trains too)
    or pooled outputs; stage 2 makes the encoder trainable and fine-tunes the ids classifier with
    ``transformers.create_optimizer``; the export is `export`'s.

    Args:
        bert_classifier: TFBertForSequenceClassification.
        pretrained_folder: str. The pretrained BERT's folder (its tokenizer, and the ``save_pretrained`` files).
        class_names: list of str.
        model_args: the script's model arguments (``sequence_length``, ``frozen_features``).
        frozen_args: the ``FrozenArguments`` of `tfnlp.tasks.ag_news` (stage 1's settings).
    """
    train_pooler = model_args.frozen_features == "cls"

    def frozen_parts(runtime):
        with runtime.scope():
            return (frozen_feature_extractor(bert_classifier, train_pooler=train_pooler),
                    frozen_head(bert_classifier, train_pooler=train_pooler))

    def fine_tune_model():
        bert_classifier.bert.trainable = True
        return ids_classifier(bert_classifier)

    return TwoStageModel(
        model_inputs=hf_inputs, frozen_parts=frozen_parts,
        frozen_settings={**dataclasses.asdict(frozen_args), "frozen_features": model_args.frozen_features},
        fine_tune_model=fine_tune_model, optimizer="transformers",
        export=lambda export_dir: export(bert_classifier, pretrained_folder, class_names, model_args, export_dir))
