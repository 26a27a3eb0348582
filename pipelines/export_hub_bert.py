"""Write a local BERT as TF-Hub SavedModels: a preprocessor and an encoder, usable by ``hub.KerasLayer``.

    python -m pipelines.export_hub_bert                      # packaged all-MiniLM-L6-v2
    python -m pipelines.export_hub_bert --pretrained path/to/hf_bert_folder --hub-dir saved_models/hub

Writes <hub-dir>/<model>_preprocess (like bert_en_uncased_preprocess/3: strings
to input_word_ids / input_mask / input_type_ids, plus tokenize and
bert_pack_inputs, the vocabulary as an asset) and <hub-dir>/<model>_encoder
(tf-models-official's BertEncoderV2 with the BERT's weights: pooled_output,
sequence_output, encoder_outputs). Each is written to a temporary folder and
renamed. Then both are reloaded with hub.KerasLayer and checked against the
Hugging Face tokenizer and model on a few sentences.
"""

import dataclasses
import json
import logging

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_text  # noqa: F401  (the preprocessor's ops)

from tfnlp import pretrained
from tfnlp.hub import DEFAULT_HUB_DIR, export_hub_bert
from tfnlp.training import cli, field, parse_arguments

logger = logging.getLogger("export_hub_bert")

CHECK_SENTENCES = ["I love transformers.", "Stocks fell sharply on Wall Street as oil prices hit a record.",
                   "Café déjà vu: naïve façade!", ""]


@dataclasses.dataclass
class ExportArguments:
    """Which BERT, where, and the preprocessor's default length."""

    pretrained: str = field("", "'' = packaged all-MiniLM-L6-v2, a local HF BERT folder, or a hub name.")
    hub_dir: str = field(DEFAULT_HUB_DIR, "Base folder of the two SavedModels.")
    seq_length: int = field(128, "The preprocessor's default sequence length.")
    overwrite: bool = field(False, "Rebuild artifacts that already exist.")
    check: bool = field(True, "Reload both with hub.KerasLayer and compare with the HF tokenizer and model.")

    def __post_init__(self):
        if self.seq_length < 2:
            raise ValueError("--seq-length must be at least 2 ([CLS] and [SEP])")


def parity_check(artifacts, name_or_path, sentences=CHECK_SENTENCES):
    """Reloads the artifacts with ``hub.KerasLayer`` and compares them with HF's tokenizer and ``TFBertModel``.

    Returns:
        dict: ``ids_match`` (bool), ``max_abs_diff_sequence_output`` and ``max_abs_diff_pooled_output``.
    """
    from transformers import BertTokenizerFast

    preprocess = hub.KerasLayer(artifacts.preprocess)
    encoder = hub.KerasLayer(artifacts.encoder)
    inputs = preprocess(tf.constant(sentences))
    vocab_file, do_lower_case = pretrained.tokenizer_files(name_or_path)
    expected = BertTokenizerFast(vocab_file, do_lower_case=do_lower_case)(
        sentences, padding="max_length", truncation=True, max_length=int(inputs["input_word_ids"].shape[1]),
        return_tensors="np")
    ids_match = bool(np.array_equal(inputs["input_word_ids"].numpy(), expected["input_ids"])
                     and np.array_equal(inputs["input_mask"].numpy(), expected["attention_mask"]))
    outputs = encoder(inputs)
    reference = pretrained.load_bert_model(name_or_path)(
        input_ids=inputs["input_word_ids"], attention_mask=inputs["input_mask"],
        token_type_ids=inputs["input_type_ids"])
    mask = inputs["input_mask"].numpy()[..., np.newaxis]
    return {
        "ids_match": ids_match,
        "max_abs_diff_sequence_output": float(np.max(np.abs(
            outputs["sequence_output"].numpy() - reference.last_hidden_state.numpy()) * mask)),
        "max_abs_diff_pooled_output": float(np.max(np.abs(
            outputs["pooled_output"].numpy() - reference.pooler_output.numpy()))),
    }


def main(argv=None):
    (args,) = parse_arguments(__doc__, ExportArguments, argv=argv)
    name_or_path = args.pretrained or None
    artifacts = export_hub_bert(name_or_path, args.hub_dir, seq_length=args.seq_length, overwrite=args.overwrite)
    result = {"preprocess": artifacts.preprocess, "encoder": artifacts.encoder}
    if args.check:
        result["check"] = parity_check(artifacts, name_or_path)
        if not result["check"]["ids_match"] or result["check"]["max_abs_diff_sequence_output"] > 1e-4:
            raise SystemExit(f"the exported artifacts do not match the Hugging Face model: {result['check']}")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    cli.run(main)
