"""Predict with an exported model, as TF Serving would: texts in, one JSON line per text out.

    python -m pipelines.serving.predict --model saved_models/agnews_transformer "Stocks rallied on Wall Street."
    python -m pipelines.serving.predict --model saved_models/conll_ner/3 --file sentences.txt
    cat texts.txt | python -m pipelines.serving.predict --model saved_models/agnews_hf_bert
    python -m pipelines.serving.predict --model saved_models/agnews_hf_bert --request body.json

The newest version of saved_models/<name> is loaded unless a version folder
(or --version) is given. Texts come from the command line, else --file (one
text per line), else standard input; they are run through the signature in
batches of --batch-size. Classifiers print {"text", "label", "label_id",
"score", "probabilities", "truncated"}; NER models {"text", "entities":
[{"entity_group", "score", "word", "start", "end"}], "truncated"} with offsets
in characters of the text (the fields of Hugging Face's token-classification
pipeline); "truncated" is true for a text the model read only the beginning of
(exports older than that output leave it out). The kind of model is read from
the signature's outputs.

--request takes a TF Serving REST predict body ({"instances": [...]} or
{"inputs": {...}}, optional "signature_name"; "-" for standard input) and
prints what POST /v1/models/<name>:predict would answer, or {"error": ...}
with exit status 1 where the server answers HTTP 400.
"""

import dataclasses
import os
import sys

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf

from tfnlp.errors import ConfigurationError
from tfnlp.serving import rest
from tfnlp.serving.served_model import ServedModel, op_error_message
from tfnlp.training import cli, field, parse_arguments


def read_lines(stream):
    """Yields the lines of a binary stream as bytes, without their line ends (blank lines included)."""
    for line in stream:
        yield line.rstrip(b"\n").rstrip(b"\r")


def texts_from(args):
    """The texts to predict: the command line's, --file's lines, or standard input's lines."""
    if args.texts:
        # Command-line arguments that were not valid UTF-8 come back as their original bytes.
        return [os.fsencode(text) for text in args.texts]
    if args.file and args.file != "-":
        try:
            with open(args.file, "rb") as f:
                return list(read_lines(f))
        except OSError as e:
            raise ConfigurationError(f"{args.file}: cannot read: {e.strerror}") from None
    return read_lines(sys.stdin.buffer)


def read_request(path):
    """The REST request body in ``path`` ("-" for standard input), as bytes."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ConfigurationError(f"{path}: cannot read: {e.strerror}") from None


@dataclasses.dataclass
class PredictArguments:
    """Which model, which texts (or REST body), and how to run them."""

    texts: tuple[str, ...] = field((), "Texts to predict (else --file or standard input).", nargs="*",
                                   positional=True)
    model: str = field("", "saved_models/<name> (newest version) or a version folder (required).")
    version: int | None = field(None, "A version of --model (None: the newest).")
    file: str | None = field(None, "A file of texts, one per line ('-': standard input).")
    batch_size: int = field(64, "Texts per signature call.")
    signature: str = field(rest.DEFAULT_SIGNATURE, "The signature to run on texts.")
    request: str | None = field(None, "A TF Serving REST predict body (JSON file, '-': standard input); prints the "
                                      "REST response.")

    def __post_init__(self):
        if not self.model:
            raise ValueError("--model is required (saved_models/<name> or a version folder)")
        if self.batch_size < 1:
            raise ValueError("--batch-size must be at least 1")
        if self.request and (self.texts or self.file):
            raise ValueError("--request takes no texts and no --file")
        if self.texts and self.file:
            raise ValueError("give texts on the command line or --file, not both")


def main(argv=None):
    """Prints the predictions; returns the exit status (1: a REST body the server would refuse with HTTP 400)."""
    (args,) = parse_arguments(__doc__, PredictArguments, argv=argv)
    model = ServedModel.load(args.model, args.version)
    try:
        if args.request:
            body = read_request(args.request)
            try:
                print(rest.to_json(model.rest_predict(body), indent=4))
            except rest.RestError as e:
                print(rest.to_json({"error": str(e)}, indent=4))
                return 1
            return 0
        for record in model.predict_texts(texts_from(args), batch_size=args.batch_size,
                                          signature_name=args.signature):
            print(rest.to_json(record), flush=True)
    except rest.RestError as e:  # --signature names no signature, or one that does not take texts.
        raise ConfigurationError(cli.one_line(e)) from e
    except tf.errors.OpError as e:
        raise ConfigurationError(f"{args.model}: the signature failed: {op_error_message(e)}") from e
    return 0


if __name__ == "__main__":
    cli.run(main)
