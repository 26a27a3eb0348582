"""`ServedModel`: one exported version loaded as TF Serving loads it, answering its requests."""

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizers' ops before a SavedModel that uses them is loaded)
from tensorflow_serving.apis import predict_pb2

from tfnlp.serving import rest, warmup
from tfnlp.serving.ner_predictor import text_entities
from tfnlp.utils.model_folders import ModelFolderError, resolve_model_folder

CLASSIFIER, NER, OTHER = "classifier", "ner", "other"
CLASSIFIER_OUTPUTS = frozenset({"probabilities", "label_id", "label"})
NER_OUTPUTS = frozenset({"entity_group", "score", "word", "start", "end", "num_entities"})


def op_error_message(error):
    """The line of a `tf.errors.OpError` that says what went wrong (not "Graph execution error:" or a stack)."""
    lines = [line.strip() for line in (error.message or "").splitlines() if line.strip()]
    for line in lines:
        if line != "Graph execution error:" and not line.startswith(("Detected at node", "File ", "<stack", "[[")):
            return line
    return lines[0] if lines else type(error).__name__


def signature_kind(function):
    """`CLASSIFIER`, `NER` or `OTHER`, from a signature's output names (never from a folder name)."""
    outputs = set(function.structured_outputs)
    if NER_OUTPUTS <= outputs:
        return NER
    if CLASSIFIER_OUTPUTS <= outputs:
        return CLASSIFIER
    return OTHER


class ServedModel:
    """A SavedModel version loaded with `tf.saved_model.load`, run through its signatures as the model server runs them.

    Requests come as input dicts (`run`), gRPC ``PredictRequest`` protos
    (`predict`), REST bodies (`rest_predict`, TF Serving's JSON formats) or
    plain texts (`predict_texts`, one JSON-ready record per text).

    Args:
        model_version: `tfnlp.utils.model_folders.ModelVersion`. What was loaded.
        loaded: the object returned by `tf.saved_model.load`.

    Example:
    >>> model = ServedModel.load("saved_models/agnews_transformer")  # doctest: +SKIP
    >>> next(model.predict_texts(["Stocks rallied."]))["label"]  # doctest: +SKIP
    'Business'
    """

    def __init__(self, model_version, loaded):
        self.model_version = model_version
        self.loaded = loaded
        self.signatures = dict(loaded.signatures)
        if not self.signatures:
            raise ModelFolderError(model_version.path, "the SavedModel has no serving signatures")

    @classmethod
    def load(cls, path, version=None):
        """Loads ``saved_models/<name>`` (newest version, or ``version``) or a version folder.

        Raises:
            ModelFolderError: no such folder, no SavedModel in it, or it does not load (the message is one line).
        """
        model_version = resolve_model_folder(path, version)
        try:
            loaded = tf.saved_model.load(model_version.path)
        except Exception as e:  # noqa: BLE001  (any load failure becomes one line naming the folder)
            first_line = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
            raise ModelFolderError(model_version.path, f"cannot load the SavedModel: {first_line.strip()}") from e
        return cls(model_version, loaded)

    @property
    def name(self):
        return self.model_version.name

    @property
    def version(self):
        return self.model_version.version

    @property
    def path(self):
        return self.model_version.path

    def signature(self, name=rest.DEFAULT_SIGNATURE):
        """The concrete function of signature ``name``.

        Raises:
            rest.RestError: no such signature (TF Serving's message, naming the signatures there are).
        """
        if name not in self.signatures:
            raise rest.RestError(f"Serving signature name: \"{name}\" not found in signature def "
                                 f"(signatures: {', '.join(sorted(self.signatures))})")
        return self.signatures[name]

    def input_specs(self, name=rest.DEFAULT_SIGNATURE):
        """The inputs of signature ``name``: a dict of name to `tf.TensorSpec`."""
        return warmup.signature_inputs(self.signature(name))

    def kind(self, name=rest.DEFAULT_SIGNATURE):
        """`CLASSIFIER`, `NER` or `OTHER`, from the signature's outputs."""
        return signature_kind(self.signature(name))

    def run(self, inputs, signature_name=rest.DEFAULT_SIGNATURE):
        """Runs a signature on a dict of arrays; returns a dict of NumPy arrays."""
        return warmup.run_signature(self.signature(signature_name), inputs)

    def predict(self, request):
        """Answers a gRPC ``PredictRequest`` with a ``PredictResponse``, as ``PredictionService.Predict`` does.

        Raises:
            rest.RestError: unknown signature, inputs or output filter (the server's INVALID_ARGUMENT).
            tf.errors.OpError: the signature fails on the inputs.
        """
        name = request.model_spec.signature_name or rest.DEFAULT_SIGNATURE
        inputs = warmup.request_inputs(request)
        specs = self.input_specs(name)
        if set(inputs) != set(specs):
            raise rest.RestError(f"input keys {sorted(inputs)} do not match the signature's {sorted(specs)}")
        outputs = self._run_checked(name, inputs)
        wanted = list(request.output_filter) or sorted(outputs)
        unknown = sorted(set(wanted) - set(outputs))
        if unknown:
            raise rest.RestError(f"output tensor alias not found in signature: {', '.join(unknown)}")
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.name
        if self.version is not None:
            response.model_spec.version.value = self.version
        response.model_spec.signature_name = name
        for key in wanted:
            response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key]))
        return response

    def rest_predict(self, body):
        """Answers a REST predict body (str, bytes or dict) with the response body TF Serving writes.

        Returns:
            dict: ``{"predictions": ...}`` or ``{"outputs": ...}`` (write it with `rest.to_json`).

        Raises:
            rest.RestError: the request is invalid or the signature fails on it (TF Serving's HTTP 400).
        """
        name, inputs, request_format = rest.parse_predict_body(body, self.input_specs)
        try:
            outputs = self._run_checked(name, inputs)
        except tf.errors.OpError as e:
            raise rest.RestError(op_error_message(e)) from None
        return rest.format_predict_response(outputs, request_format)

    def _run_checked(self, name, inputs):
        specs = self.input_specs(name)
        for key, value in inputs.items():
            if not specs[key].shape.is_compatible_with(np.shape(value)):
                raise rest.RestError(f"input {key!r} has shape {list(np.shape(value))}; the signature takes "
                                     f"{specs[key].shape}")
        return self.run(inputs, name)

    def predict_texts(self, texts, batch_size=64, signature_name=rest.DEFAULT_SIGNATURE):
        """Predicts texts in batches; yields one JSON-ready record per text, in order.

        Classifiers give ``{"text", "label", "label_id", "score", "probabilities"}``;
        NER models ``{"text", "entities": [{"entity_group", "score", "word", "start", "end"}, ...]}``
        (the fields of HF's token-classification pipeline, offsets in code points of the text);
        other models ``{"text", <output name>: value, ...}``. When the signature has a ``truncated``
        output, classifier and NER records also hold ``"truncated"`` (True: the model read only the
        beginning of the text).

        Args:
            texts: iterable of str or bytes.
            batch_size: int. Texts per signature call.
            signature_name: str. A signature with one string input.
        """
        specs = self.input_specs(signature_name)
        if len(specs) != 1 or next(iter(specs.values())).dtype != tf.string:
            raise rest.RestError(f"signature {signature_name!r} does not take texts (inputs: {sorted(specs)})")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        input_name = next(iter(specs))
        kind = self.kind(signature_name)
        batch = []
        for text in texts:
            batch.append(text)
            if len(batch) == batch_size:
                yield from self._records(batch, input_name, kind, signature_name)
                batch = []
        if batch:
            yield from self._records(batch, input_name, kind, signature_name)

    def _records(self, texts, input_name, kind, signature_name):
        encoded = np.array([text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
                            for text in texts], dtype=object)
        outputs = self.run({input_name: encoded}, signature_name)
        for i, text in enumerate(texts):
            shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else \
                text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            truncated = {"truncated": bool(outputs["truncated"][i])} if "truncated" in outputs else {}
            if kind == CLASSIFIER:
                probabilities = outputs["probabilities"][i]
                yield {"text": shown, "label": outputs["label"][i].decode("utf-8", "replace"),
                       "label_id": int(outputs["label_id"][i]),
                       "score": rest.RawNumber(rest.format_float(probabilities.max())),
                       "probabilities": [rest.RawNumber(rest.format_float(p)) for p in probabilities], **truncated}
            elif kind == NER:
                yield {"text": shown, "entities": text_entities(
                    outputs, i, score=lambda value: rest.RawNumber(rest.format_float(value))), **truncated}
            else:
                row = rest.format_predict_response({key: value[i:i + 1] for key, value in outputs.items()},
                                                   rest.ROW)["predictions"][0]
                yield {"text": shown, **(row if isinstance(row, dict) else {"output": row})}
