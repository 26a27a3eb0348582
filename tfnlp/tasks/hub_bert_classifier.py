"""The TF-Hub BERT classifier's parts for the two-stage run (`tfnlp.tasks.bert_classifier`): its handles, token
ids from the TF-Hub preprocessor, the encoder's inputs, and the stages' models and export.

`pipelines.agnews_hub_bert` is its command line.
"""

import dataclasses

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf
import tensorflow_hub as hub

from tfnlp.hub import export_hub_bert, hub_artifact_dirs, is_saved_model
from tfnlp.models import build_hub_bert_classifier, classifier_head, pooled_output_model
from tfnlp.serving import export_text_classifier
from tfnlp.tasks.bert_classifier import TwoStageModel


def resolve_handles(args, runtime):
    """The (preprocess, encoder) handles: the given ones, or the default artifacts (exported if missing).

    Multi-worker, the chief exports missing artifacts while the others wait; a worker that cannot see the
    chief's --hub-dir (another machine) builds its own copy in its temporary folder.
    """
    if args.encoder:
        return args.preprocess, args.encoder
    artifacts = export_hub_bert(args.pretrained or None, args.hub_dir) if runtime.is_chief else None
    runtime.barrier()
    if artifacts is None:
        artifacts = hub_artifact_dirs(args.pretrained or None, args.hub_dir)
        if not (is_saved_model(artifacts.preprocess) and is_saved_model(artifacts.encoder)):
            artifacts = export_hub_bert(args.pretrained or None, runtime.worker_path(args.hub_dir))
    return tuple(artifacts)


def token_ids_encoder(preprocess, sequence_length):
    """A texts -> ``input_word_ids`` function from a TF-Hub preprocessor's ``tokenize`` and ``bert_pack_inputs``.

    The ids are packed to ``sequence_length``; `bucketed_splits` then drops the
    padding, which must be id 0 (as in every BERT vocabulary).
    """
    preprocessor = hub.load(preprocess)
    padding_id = int(preprocessor.tokenize.get_special_tokens_dict()["padding_id"])
    if padding_id != 0:
        raise ValueError(f"{preprocess}: padding id is {padding_id}; batching by length needs 0")

    def encode(texts):
        tokens = preprocessor.tokenize(texts)
        return preprocessor.bert_pack_inputs([tokens], seq_length=sequence_length)["input_word_ids"]

    return encode


def encoder_inputs(ids):
    """``input_word_ids`` (padded with 0) -> the encoder's input dict."""
    return {"input_word_ids": ids, "input_mask": tf.cast(ids != 0, tf.int32), "input_type_ids": tf.zeros_like(ids)}


def two_stage_model(classifier, preprocess, class_names, model_args, frozen_args):
    """The `TwoStageModel` of the encoder classifier ``classifier`` (`tfnlp.models.build_encoder_classifier`).

    Stage 1 trains the dropout + dense head on the pooled vectors; stage 2 makes the encoder trainable and
    fine-tunes ``classifier`` itself with tf-models-official's AdamW; the export puts ``preprocess`` in front
    (raw text in; ``truncated`` says which texts were cut).

    Args:
        classifier: tf_keras.Model. Encoder inputs -> logits, its encoder layer named ``encoder``.
        preprocess: str. The TF-Hub preprocessor's handle.
        class_names: list of str.
        model_args: the script's model arguments (``sequence_length``).
        frozen_args: the ``FrozenArguments`` of `tfnlp.tasks.ag_news` (stage 1's settings).
    """
    def frozen_parts(runtime):
        with runtime.scope():
            head = classifier_head(classifier)
        return pooled_output_model(classifier), head

    def fine_tune_model():
        classifier.get_layer("encoder").trainable = True
        return classifier

    def export(export_dir):
        serving_model = build_hub_bert_classifier(preprocess, classifier, len(class_names),
                                                  seq_length=model_args.sequence_length, return_truncated=True)
        return export_text_classifier(serving_model, class_names, export_dir)

    return TwoStageModel(model_inputs=encoder_inputs, frozen_parts=frozen_parts,
                         frozen_settings=dataclasses.asdict(frozen_args), fine_tune_model=fine_tune_model,
                         export=export)
