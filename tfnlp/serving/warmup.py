"""TF Serving warm-up requests: ``assets.extra/tf_serving_warmup_requests`` in each exported version.

When TF Serving loads a version it replays the `PredictionLog` records of this
TFRecord file before it marks the version available, so the first real
requests do not pay for lazy initialization (graph optimization,
tensorflow-text's tokenizer models, memory pools). A request that fails, or
more than 1,000 records, make the load fail
(``tensorflow_serving/servables/tensorflow/saved_model_warmup_util.cc``). See
https://www.tensorflow.org/tfx/serving/saved_model_warmup.

The requests are built from the export's signatures: every string ``[None]``
input gets `WARMUP_TEXTS` (one text alone, then all of them as one batch);
integer ``[None, None]`` inputs (token ids) get those texts tokenized by the
export's own `tfnlp.text.BertTokenizer` when it holds one, else a small fixed
batch of ids; other inputs get zeros. Each request is run on the in-memory
signature before it is written, so a warm-up file never holds a request its
signature rejects.
"""

import os
import tempfile

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

ASSETS_EXTRA = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TF Serving refuses a file with more.

# Representative inputs: news (the classifiers), a sentence full of entities (NER), an empty string,
# non-Latin scripts and a text longer than any model's sequence length (truncation).
WARMUP_TEXTS = (
    "Stocks fell sharply on Wall Street as oil prices rose to a record high.",
    "Angela Merkel met Emmanuel Macron in Paris to discuss the European Union budget.",
    "",
    "Ученые представили новый процессор. 東京株式市場で株価が上昇した。",
    " ".join(["Shares of Apple and Microsoft rallied after strong quarterly earnings reports."] * 30),
)


def signature_inputs(function):
    """The inputs of a concrete function (a signature) as a dict of name to `tf.TensorSpec`.

    Reloaded signatures take keyword arguments; the concrete functions of a
    `tf.function` with an ``input_signature`` take positional ones, named by their specs.
    """
    args, kwargs = function.structured_input_signature
    specs = dict(kwargs)
    for spec in tf.nest.flatten(args):
        if spec.name is None:
            raise ValueError(f"{function.name}: a positional input has no name; name its TensorSpec")
        specs[spec.name] = spec
    return specs


def default_warmup_inputs(signatures, module=None, texts=WARMUP_TEXTS):
    """Warm-up inputs for each signature: a batch of one, then a batch of all ``texts``.

    String inputs get the texts; integer ``[batch, length]`` inputs get token ids
    (``input_ids``, ``attention_mask``, ``token_type_ids`` by name, else ``input_ids``);
    other numeric inputs get zeros, unknown dimensions other than the batch set to 1.

    Args:
        signatures: dict of signature name to concrete function.
        module: tf.Module or None. The exported object, searched for a `tfnlp.text.BertTokenizer` to
            turn ``texts`` into token ids (else a fixed batch of small ids, below its ``vocab_size``).
        texts: sequence of str. The texts of string inputs (and of token ids).

    Returns:
        dict of signature name to a list of input dicts (name to NumPy array).

    Raises:
        ValueError: an input of unknown rank (pass explicit ``warmup_inputs`` for it).
    """
    tokenizer = _find_tokenizer(module)
    warmup = {}
    for name, function in sorted(signatures.items()):
        specs = signature_inputs(function)
        requests = []
        for batch in (list(texts[:1]), list(texts)):
            ids = None
            inputs = {}
            for key, spec in sorted(specs.items()):
                if spec.shape.rank is None:
                    raise ValueError(f"signature {name!r}: input {key!r} has an unknown rank; pass warmup_inputs")
                dims = [len(batch) if i == 0 and size is None else (1 if size is None else size)
                        for i, size in enumerate(spec.shape.as_list())]
                if spec.dtype == tf.string:
                    if spec.shape.rank == 1 and dims[0] == len(batch):
                        inputs[key] = np.array([text.encode("utf-8") for text in batch], dtype=object)
                    else:
                        inputs[key] = np.full(dims, batch[0].encode("utf-8"), dtype=object)
                elif spec.dtype.is_integer and spec.shape.rank == 2 and dims[0] == len(batch):
                    ids = _token_ids(batch, tokenizer, module) if ids is None else ids
                    inputs[key] = ids.get(key, ids["input_ids"]).astype(spec.dtype.as_numpy_dtype)
                else:
                    inputs[key] = np.zeros(dims, dtype=spec.dtype.as_numpy_dtype)
            requests.append(inputs)
        warmup[name] = requests
    return warmup


def _find_tokenizer(module):
    from tfnlp.text import BertTokenizer  # Here, not at module level: reading warm-up files needs no tensorflow_text.

    if module is None:
        return None
    candidates = [module] + list(module.submodules) if isinstance(module, tf.Module) else []
    for candidate in candidates:
        if isinstance(candidate, BertTokenizer) and not candidate.is_split_into_words:
            return candidate
    return None


def _token_ids(texts, tokenizer, module):
    """``input_ids``, ``attention_mask`` and ``token_type_ids`` for ``texts`` (int32 ``[batch, length]``)."""
    if tokenizer is not None:
        features = tokenizer(tf.constant(texts))
        ids = {key: features[key].numpy() for key in ("input_ids", "attention_mask", "token_type_ids")}
    else:
        # No tokenizer to run: a fixed batch of small ids, valid for any vocabulary of 8 tokens or more.
        vocab_size = int(getattr(module, "vocab_size", None) or 8)
        length = 8
        ids = np.array([[(3 + 5 * row + 3 * column) % min(vocab_size, 1000) for column in range(length)]
                        for row in range(len(texts))], dtype=np.int32)
        mask = np.ones_like(ids)
        mask[1:, length // 2:] = 0
        ids = {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    max_length = getattr(module, "max_length", None)
    if max_length:
        ids = {key: value[:, :max_length] for key, value in ids.items()}
    return ids


def predict_request(inputs, signature_name="serving_default", model_name="model"):
    """A `tensorflow_serving.apis.predict_pb2.PredictRequest` holding ``inputs``.

    Args:
        inputs: dict of input name to array-like (NumPy arrays keep their dtype).
        signature_name: str. The signature to run.
        model_name: str. ``model_spec.name`` (the server answers for its own name in warm-up).
    """
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def request_inputs(request):
    """The inputs of a `PredictRequest` as a dict of name to NumPy array."""
    return {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}


def run_signature(function, inputs):
    """Runs a signature on a dict of arrays, cast to its input dtypes; returns a dict of NumPy arrays."""
    specs = signature_inputs(function)
    unknown = sorted(set(inputs) - set(specs))
    missing = sorted(set(specs) - set(inputs))
    if unknown or missing:
        raise ValueError(f"inputs {sorted(inputs)} do not match the signature's {sorted(specs)}")
    feeds = {key: tf.constant(value, dtype=specs[key].dtype) for key, value in inputs.items()}
    return {key: value.numpy() for key, value in function(**feeds).items()}


def build_warmup_requests(signatures, warmup_inputs=None, module=None, model_name="model"):
    """The `PredictionLog` records of an export, each checked on its in-memory signature.

    Args:
        signatures: dict of signature name to concrete function.
        warmup_inputs: dict or None. Signature name to a list of input dicts; None for
            `default_warmup_inputs`. Signatures it leaves out get no warm-up requests.
        module: tf.Module or None. The exported object (for `default_warmup_inputs`).
        model_name: str. ``model_spec.name`` of the requests.

    Returns:
        list of `PredictionLog`.

    Raises:
        ValueError: a request names an unknown signature, or more than `MAX_WARMUP_RECORDS` requests.
        tf.errors.OpError: a request fails on its signature.
    """
    if warmup_inputs is None:
        warmup_inputs = default_warmup_inputs(signatures, module)
    logs = []
    for signature_name, batches in sorted(warmup_inputs.items()):
        if signature_name not in signatures:
            raise ValueError(f"warm-up inputs for an unknown signature {signature_name!r}")
        for inputs in batches:
            run_signature(signatures[signature_name], inputs)
            log = prediction_log_pb2.PredictionLog()
            log.predict_log.request.CopyFrom(predict_request(inputs, signature_name, model_name))
            logs.append(log)
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ValueError(f"{len(logs)} warm-up requests; TF Serving reads at most {MAX_WARMUP_RECORDS}")
    return logs


def warmup_file(version_dir):
    """``<version_dir>/assets.extra/tf_serving_warmup_requests``."""
    return os.path.join(version_dir, ASSETS_EXTRA, WARMUP_FILE)


def write_warmup_requests(version_dir, logs):
    """Writes ``logs`` as the TFRecord warm-up file of ``version_dir`` (atomically); returns its path."""
    path = warmup_file(version_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + WARMUP_FILE + ".", suffix=".tmp", dir=os.path.dirname(path))
    os.close(fd)
    try:
        with tf.io.TFRecordWriter(tmp) as writer:
            for log in logs:
                writer.write(log.SerializeToString())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def read_warmup_requests(version_dir):
    """The `PredictionLog` records of a version's warm-up file (an empty list if it has none)."""
    path = warmup_file(version_dir)
    if not os.path.exists(path):
        return []
    logs = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs


def replay_warmup_requests(version_dir, signatures):
    """Runs every warm-up request of ``version_dir`` on the signature it names, as TF Serving does on load.

    Args:
        version_dir: str. An exported version folder.
        signatures: dict of signature name to concrete function (of the reloaded SavedModel).

    Returns:
        list of (signature name, outputs) per request.

    Raises:
        ValueError: no warm-up file, a record that is not a predict request, or an unknown signature.
        tf.errors.OpError: a request fails.
    """
    logs = read_warmup_requests(version_dir)
    if not logs:
        raise ValueError(f"{warmup_file(version_dir)}: no warm-up requests")
    results = []
    for index, log in enumerate(logs):
        if log.WhichOneof("log_type") != "predict_log":
            raise ValueError(f"{warmup_file(version_dir)}, record {index + 1}: not a predict request")
        request = log.predict_log.request
        name = request.model_spec.signature_name or "serving_default"
        if name not in signatures:
            raise ValueError(f"{warmup_file(version_dir)}, record {index + 1}: unknown signature {name!r}")
        results.append((name, run_signature(signatures[name], request_inputs(request))))
    return results


def keep_warmup_requests(version_dir, signature_names):
    """Rewrites a version's warm-up file with only the requests of ``signature_names``; returns (kept, dropped).

    For servers that cannot run some signatures (a model server without
    tensorflow-text's ops runs ``serving_ids`` but not ``serving_default``): a
    warm-up request that fails makes TF Serving refuse to load the version.

    Raises:
        ValueError: no warm-up file, or no request would be left.
    """
    logs = read_warmup_requests(version_dir)
    if not logs:
        raise ValueError(f"{warmup_file(version_dir)}: no warm-up requests")
    kept = [log for log in logs if (log.predict_log.request.model_spec.signature_name or "serving_default")
            in set(signature_names)]
    if not kept:
        names = sorted({log.predict_log.request.model_spec.signature_name for log in logs})
        raise ValueError(f"{warmup_file(version_dir)}: no request for {', '.join(signature_names)} "
                         f"(the requests are for {', '.join(names)})")
    write_warmup_requests(version_dir, kept)
    return len(kept), len(logs) - len(kept)


def request_batch_size(log):
    """The batch size of a warm-up record: the first dimension of its inputs."""
    shapes = {tuple(dim.size for dim in proto.tensor_shape.dim) for proto in log.predict_log.request.inputs.values()}
    sizes = {shape[0] if shape else 1 for shape in shapes}
    if len(sizes) != 1:
        raise ValueError(f"a warm-up request with inputs of different batch sizes: {sorted(sizes)}")
    return sizes.pop()


def cover_batch_sizes(version_dir, signatures, batch_sizes):
    """Rewrites a version's warm-up file so that every signature has a request of each of ``batch_sizes``.

    With batching on, TF Serving pads each batch to an allowed batch size and replays the warm-up
    through the batching session: requests of each allowed size warm up each batch shape, and a
    request larger than the largest size would fail (and the version with it), so such a request is
    split into requests of at most that size (its texts all still warm up). A new request of ``n``
    texts repeats the rows of the signature's largest request (its texts, or the ids the export's own
    tokenizer gave them) until there are ``n``; it is run on its signature before it is written.

    Args:
        version_dir: str. An exported version folder with a warm-up file.
        signatures: dict of signature name to concrete function (of the loaded version).
        batch_sizes: sequence of int. The allowed batch sizes.

    Returns:
        (added, split): the number of requests added, and of requests split.

    Raises:
        ValueError: no warm-up file, a request for an unknown signature, or more than
            `MAX_WARMUP_RECORDS` requests would result.
        tf.errors.OpError: a new request fails on its signature.
    """
    logs = read_warmup_requests(version_dir)
    if not logs:
        raise ValueError(f"{warmup_file(version_dir)}: no warm-up requests")
    largest = max(batch_sizes)
    kept, added, split = [], [], 0
    by_signature = {}
    for log in logs:
        request = log.predict_log.request
        name = request.model_spec.signature_name or "serving_default"
        if name not in signatures:
            raise ValueError(f"{warmup_file(version_dir)}: a request for an unknown signature {name!r}")
        by_signature.setdefault(name, []).append(log)
        size = request_batch_size(log)
        if size <= largest:
            kept.append(log)
            continue
        split += 1
        inputs = request_inputs(request)
        for start in range(0, size, largest):  # Rows that already ran together: no need to run them again.
            kept.append(_log({key: value[start:start + largest] for key, value in inputs.items()}, request))
    for name, signature_logs in sorted(by_signature.items()):
        largest_log = max(signature_logs, key=request_batch_size)
        source, count = largest_log.predict_log.request, request_batch_size(largest_log)
        rows = request_inputs(source)
        present = {request_batch_size(log) for log in kept
                   if (log.predict_log.request.model_spec.signature_name or "serving_default") == name}
        for size in sorted(set(batch_sizes) - present):
            inputs = {key: np.take(value, np.arange(size) % count, axis=0) for key, value in rows.items()}
            run_signature(signatures[name], inputs)
            added.append(_log(inputs, source))
    if len(kept) + len(added) > MAX_WARMUP_RECORDS:
        raise ValueError(f"{len(kept) + len(added)} warm-up requests; TF Serving reads at most {MAX_WARMUP_RECORDS}")
    if added or split:
        write_warmup_requests(version_dir, kept + added)
    return len(added), split


def _log(inputs, like):
    """A `PredictionLog` of ``inputs`` for the signature and model of the request ``like``."""
    log = prediction_log_pb2.PredictionLog()
    log.predict_log.request.CopyFrom(predict_request(inputs, like.model_spec.signature_name or "serving_default",
                                                     like.model_spec.name))
    return log
