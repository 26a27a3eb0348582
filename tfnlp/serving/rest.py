"""TF Serving's REST predict API: request bodies to input arrays, output arrays to response bodies.

``POST /v1/models/<name>[/versions/<version>]:predict`` takes a JSON object with
an optional ``signature_name`` and either

- ``instances`` (row format): a list with one element per example, each a
  value (one-input signatures) or an object of input name to value; or
- ``inputs`` (columnar format): a value (one-input signatures) or an object of
  input name to a batch of values.

The answer is ``{"predictions": [...]}`` (one element per example: an object of
output name to value, or the value when there is one output) for row requests
and ``{"outputs": ...}`` for columnar ones; an error is ``{"error": "..."}``
with HTTP status 400. String values travel as JSON strings, or as
``{"b64": "<base64>"}`` objects; outputs whose name ends in ``_bytes`` are
written as ``b64`` objects. Floats are written as TF Serving writes them: six
significant digits when that round-trips, else full precision; ``NaN``,
``Infinity`` and ``-Infinity`` as bare words.

These functions follow ``tensorflow_serving/util/json_tensor.cc`` (TF Serving
2.20) so that ``python -m pipelines.serving.predict --request body.json`` answers what
the model server would. One difference: the server writes string outputs as
raw bytes, which is invalid JSON when they are not UTF-8; here such bytes are
replaced by U+FFFD.
"""

import base64
import binascii
import json
import math

import numpy as np

ROW, COLUMNAR = "row", "columnar"
DEFAULT_SIGNATURE = "serving_default"

_INT32 = (np.iinfo(np.int32).min, np.iinfo(np.int32).max)
_INT64 = (np.iinfo(np.int64).min, np.iinfo(np.int64).max)


class RestError(ValueError):
    """A request the model server answers with HTTP 400 and ``{"error": message}``."""


class RawNumber(str):
    """A JSON number already written out (e.g. ``0.25``, ``NaN``); `to_json` writes it without quotes."""


def parse_predict_body(body, input_specs):
    """Reads a predict request body into a signature name, input arrays and the request's format.

    Args:
        body: str, bytes or dict. The JSON request body (or its parsed object).
        input_specs: callable. Maps a signature name to its inputs, a dict of
            name to `tf.TensorSpec`; raises `RestError` for an unknown signature.

    Returns:
        (signature_name, inputs, format): inputs is a dict of input name to a
        NumPy array (``object`` arrays of bytes for strings); format is `ROW` or `COLUMNAR`.

    Raises:
        RestError: the body is not valid for the signature (the message says why).

    Example:
    >>> import tensorflow as tf
    >>> specs = {"serving_default": {"text": tf.TensorSpec([None], tf.string, name="text")}}
    >>> name, inputs, fmt = parse_predict_body('{"instances": ["a", {"b64": "Yg=="}]}', specs.__getitem__)
    >>> name, inputs["text"].tolist(), fmt
    ('serving_default', [b'a', b'b'], 'row')
    """
    if isinstance(body, (str, bytes, bytearray)):
        if not body.strip():
            raise RestError("JSON Parse error: The document is empty")
        try:
            body = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise RestError(f"JSON Parse error: {e}") from None
    if not isinstance(body, dict):
        raise RestError(f"JSON Value: {_debug(body)} Is not object")
    signature_name = body.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(signature_name, str):
        raise RestError(f"JSON Value: {_debug(body)} not formatted correctly. "
                        "'signature_name' key must be a string value.")
    specs = input_specs(signature_name or DEFAULT_SIGNATURE)
    if not specs:
        raise RestError(f"Failed to get input map for signature: {signature_name or 'DEFAULT'}")
    if "instances" in body and "inputs" in body:
        raise RestError(f"JSON Value: {_debug(body)} Not formatted correctly expecting only one of 'inputs' or "
                        "'instances' keys to exist ")
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise RestError(f"JSON Value: {_debug(body)} Expecting 'instances' to be an list/array")
        if not instances:
            raise RestError(f"JSON Value: {_debug(body)} No values in 'instances' array")
        return signature_name or DEFAULT_SIGNATURE, _from_instances(instances, specs), ROW
    if "inputs" in body:
        return signature_name or DEFAULT_SIGNATURE, _from_inputs(body["inputs"], specs), COLUMNAR
    raise RestError("Missing 'inputs' or 'instances' key")


def format_predict_response(outputs, request_format):
    """The response body TF Serving writes for a signature's outputs.

    Args:
        outputs: dict of output name to NumPy array.
        request_format: `ROW` (``{"predictions": [...]}``) or `COLUMNAR` (``{"outputs": ...}``).

    Returns:
        dict: the body, ready for `to_json` (floats are `RawNumber` strings).

    Raises:
        RestError: row format with outputs of different batch sizes (or a scalar output).
    """
    if not outputs:
        raise RestError("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    arrays = {name: np.asarray(outputs[name]) for name in names}
    if request_format == COLUMNAR:
        values = {name: _to_values(arrays[name], name) for name in names}
        return {"outputs": values if len(names) > 1 else values[names[0]]}
    if request_format != ROW:
        raise RestError("Invalid request format")
    batch_size = None
    for name in names:
        if arrays[name].ndim == 0:
            raise RestError(f"Tensor name: {name} has no shape information ")
        if batch_size is not None and arrays[name].shape[0] != batch_size:
            raise RestError(f"Tensor name: {name} has inconsistent batch size: {arrays[name].shape[0]} "
                            f"expecting: {batch_size}")
        batch_size = arrays[name].shape[0]
    predictions = []
    for i in range(batch_size):
        row = {name: _to_values(arrays[name][i], name) for name in names}
        predictions.append(row if len(names) > 1 else row[names[0]])
    return {"predictions": predictions}


def to_json(value, indent=None):
    """Writes a response body (or any JSON-like value) as JSON text, floats in TF Serving's notation.

    Args:
        value: dict, list, str, int, float, bool, None, NumPy scalars or `RawNumber`.
        indent: int or None. Pretty-print with this indent (lists of plain values stay on one line).

    Example:
    >>> to_json({"outputs": [RawNumber("0.25"), float("nan"), np.float32(0.1)]})
    '{"outputs": [0.25, NaN, 0.1]}'
    """
    return _write(value, indent, 0)


def format_float(value, float32=True):
    """A float as TF Serving writes it: ``%g`` (six digits) if it round-trips, else full precision.

    Example:
    >>> format_float(np.float32(0.1)), format_float(np.float32(1 / 3)), format_float(2.0), format_float(1e-5)
    ('0.1', '0.333333343', '2.0', '1e-05')
    """
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    cast = np.float32 if float32 else float
    text = f"{value:.6g}"
    if cast(float(text)) != cast(value):
        text = f"{value:.9g}" if float32 else f"{value:.17g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


# Requests.

def _is_object(value):
    return isinstance(value, dict) and not _is_base64(value)


def _is_base64(value):
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _from_instances(instances, specs):
    if not _is_object(instances[0]) and len(specs) > 1:
        raise RestError("instances is a plain list, but expecting list of objects as multiple input tensors "
                        "required as per tensorinfo_map")
    as_objects = _is_object(instances[0])
    names = sorted(specs)
    columns = {name: [] for name in names}
    for index, element in enumerate(instances):
        if as_objects:
            if not _is_object(element):
                raise RestError(f"Expecting object but got list at item {index} of input list")
            for key, item in element.items():
                if key not in specs:
                    raise RestError(f"Failed to process element: {index} key: {key} of 'instances' list. Error: "
                                    f"JSON object: does not have named input: {key}")
                columns[key].append(_element(item, specs[key], f"Failed to process element: {index} key: {key} "
                                                                f"of 'instances' list. Error: ", columns[key]))
            if set(element) != set(names):
                raise RestError(f"Failed to process element: {index} of 'instances' list. JSON object: "
                                f"{_debug(element)} keys must be equal to: {','.join(names)}")
        else:
            if _is_object(element):
                raise RestError(f"Expecting value/list but got object at item {index} of input list")
            name = names[0]
            columns[name].append(_element(element, specs[name], f"Failed to process element: {index} of "
                                                                "'instances' list. Error: ", columns[name]))
    return {name: _stack(values, specs[name]) for name, values in columns.items()}


def _element(value, spec, context, previous):
    try:
        array = _dense(value, spec.dtype)
    except RestError as e:
        raise RestError(context + str(e)) from None
    if previous and previous[0].shape != array.shape:
        expected = ",".join(map(str, previous[0].shape))
        raise RestError(f"{context}Expecting shape [{expected}] but got: [{','.join(map(str, array.shape))}]")
    return array


def _stack(values, spec):
    dtype = _numpy_dtype(spec.dtype)
    if not values:
        return np.zeros([0], dtype)
    return np.stack(values).astype(dtype, copy=False)


def _from_inputs(inputs, specs):
    if not _is_object(inputs):
        if len(specs) > 1:
            raise RestError("inputs is a plain value/list, but expecting an object as multiple input tensors "
                            "required as per tensorinfo_map")
        name = next(iter(specs))
        return {name: _dense(inputs, specs[name].dtype)}
    arrays = {}
    for name in sorted(specs):
        if name not in inputs:
            raise RestError(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = _dense(inputs[name], specs[name].dtype)
    return arrays


def _dense(value, dtype):
    """A JSON value (nested lists of leaves) as a NumPy array of ``dtype``, checked as TF Serving checks it."""
    shape = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    leaves = []
    _fill(value, 0, shape, dtype, leaves)
    return np.array(leaves, dtype=_numpy_dtype(dtype)).reshape(shape)


def _fill(value, level, shape, dtype, leaves):
    if not isinstance(value, list):
        if level != len(shape):
            raise RestError(f"JSON Value: {_debug(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                            f"Expected at level: {len(shape)}")
        leaves.append(_leaf(value, dtype))
        return
    if level >= len(shape):
        raise RestError(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(value) != shape[level]:
        raise RestError(f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: "
                        f"{shape[level]}")
    for item in value:
        _fill(item, level + 1, shape, dtype, leaves)


def _leaf(value, dtype):
    name = dtype.name
    if name == "string":
        if isinstance(value, str):
            return value.encode("utf-8", "surrogatepass")
        if _is_base64(value):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise RestError("Unable to base64 decode") from None
        if isinstance(value, dict):
            raise RestError(f"JSON Value: {_debug(value)} not formatted correctly for base64 data")
    elif name in ("int32", "int16", "int8", "uint8"):
        if isinstance(value, int) and not isinstance(value, bool) and _INT32[0] <= value <= _INT32[1]:
            return value
    elif name == "int64":
        if isinstance(value, int) and not isinstance(value, bool) and _INT64[0] <= value <= _INT64[1]:
            return value
    elif name in ("float32", "float64", "float16", "bfloat16"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    elif name == "bool":
        if isinstance(value, bool):
            return value
    else:
        raise RestError(f"Conversion of JSON Value: {_debug(value)} to type: {name} is not supported")
    raise RestError(f"JSON Value: {_debug(value)} Type: {_json_type(value)} is not of expected type: {name}")


def _numpy_dtype(dtype):
    return object if dtype.name == "string" else dtype.as_numpy_dtype


def _json_type(value):
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return "Number"
    if isinstance(value, str):
        return "String"
    return "Array" if isinstance(value, list) else "Object"


def _debug(value, limit=100):
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "..."


# Responses.

def _to_values(array, name):
    """An array (or array element) as nested lists of JSON-ready leaves."""
    array = np.asarray(array)
    if array.ndim:
        return [_to_values(item, name) for item in array]
    value = array.item() if array.dtype != object else array.tolist()
    if isinstance(value, bytes):
        if name.endswith("_bytes"):
            return {"b64": base64.b64encode(value).decode("ascii")}
        return value.decode("utf-8", "replace")
    if array.dtype.kind == "f":
        return RawNumber(format_float(value, float32=array.dtype != np.float64))
    return value


def _write(value, indent, depth):
    if isinstance(value, RawNumber):
        return str(value)
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return format_float(value, float32=isinstance(value, np.float32))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        items = [(json.dumps(str(key), ensure_ascii=False), item) for key, item in value.items()]
        if indent is None:
            return "{" + ", ".join(f"{key}: {_write(item, None, 0)}" for key, item in items) + "}"
        if not items:
            return "{}"
        inner = " " * (indent * (depth + 1))
        lines = [f"{inner}{key}: {_write(item, indent, depth + 1)}" for key, item in items]
        return "{\n" + ",\n".join(lines) + "\n" + " " * (indent * depth) + "}"
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        if indent is None or not any(isinstance(item, (dict, list, tuple)) for item in items):
            return "[" + ", ".join(_write(item, None, 0) for item in items) + "]"
        inner = " " * (indent * (depth + 1))
        return "[\n" + ",\n".join(inner + _write(item, indent, depth + 1) for item in items) + "\n" + \
            " " * (indent * depth) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
