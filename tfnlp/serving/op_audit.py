"""Which ops an export uses, and whether TF Serving's model server has them.

The model server links core TensorFlow plus tensorflow-text's ``ops_lib``
target (``SUPPORTED_TENSORFLOW_OPS`` in ``tensorflow_serving/model_servers/BUILD``;
since TF Serving 2.2.0, commit bd206e41; 2.0 and 2.1 linked five tensorflow-text
targets by name). Any other op fails: at load when the restore or init
functions use it, else at the first request (or warm-up request) that runs it.

`audit_saved_model` reads ``saved_model.pb``, walks every node of the graph and
of every function in its library, and classes each op as

- `CORE`: registered by TensorFlow itself (the ops a fresh ``import tensorflow``
  registers; Python-only kernels such as ``PyFunc`` excepted);
- `TENSORFLOW_TEXT`: in tensorflow-text's ``ops_lib`` as TF Serving 2.20.0 links
  it (tensorflow-text 2.20.0);
- `UNKNOWN`: anything else (the audit fails).

It also finds, per signature, the ops the signature's functions reach, and
from them the oldest TF Serving release that runs the signature:

- tensorflow-text ops: `SERVING_TEXT_VERSIONS` is the tensorflow-text version each
  TF Serving release builds with (``org_tensorflow_text`` in
  ``tensorflow_serving/workspace.bzl`` at each release tag) and `TEXT_OPS_ADDED`
  the ops its ``ops_lib`` gained in each of those versions (the ``ops_lib``
  deps in ``tensorflow_text/BUILD`` at each tag, each dep's op names from its
  ``cc_op_defs``). FastWordpieceTokenizeWithOffsets entered ``ops_lib`` in
  tensorflow-text 2.7 (commit 89f9209, "Add FastWordpieceTokenizer to
  available ops"), FastBertNormalize in 2.9 (commit ed6ab37); TF Serving built
  with 2.7.3 in 2.7.3 and 2.10.x, 2.8.2 in 2.11.x (neither has
  FastBertNormalize: tensorflow/serving issue 2064) and 2.12.1 from 2.12.0
  (commit ec6292a7, "Upgrade to text-2.12.1") to 2.19.x;
- core ops: TF Serving X.Y is built on TensorFlow X.Y. `TF_2_12_CORE_OPS` lists
  TensorFlow 2.12.0's ops; core ops outside it make the answer "newer than
  2.12.0", and for releases older than 2.12.0 core ops are not checked.

Attributes newer TensorFlow adds to an op (``VarHandleOp``'s ``debug_name`` since
2.13) are not a problem: older runtimes log "Unknown attributes will be ignored".
"""

import collections
import dataclasses
import functools
import json
import os
import subprocess
import sys

from tfnlp.serving.tf_2_12_core_ops import TF_2_12_CORE_OPS
from tfnlp.utils.model_folders import ModelFolderError, resolve_model_folder

CORE, TENSORFLOW_TEXT, UNKNOWN = "core", "tensorflow_text", "unknown"

# Core ops whose kernels run Python: no model server can run them.
PYTHON_ONLY_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})

# The ops of tensorflow-text's TF Serving target, by the tensorflow-text version that added them.
# "a2f2ad05" is the commit TF Serving 2.0 and 2.1 built with (five targets named one by one, before ops_lib).
TEXT_OPS_ADDED = {
    "a2f2ad05": ("ConstrainedSequence", "SentenceFragments", "UnicodeScriptTokenizeWithOffsets",
                 "WhitespaceTokenizeWithOffsets", "WordpieceTokenizeWithOffsets"),
    "2.2.0": ("CaseFoldUTF8", "MaxSpanningTree", "NormalizeUTF8", "RegexSplitWithOffsets", "RougeL",
              "SentencepieceDetokenizeOp", "SentencepieceIdToStringOp", "SentencepieceOp", "SentencepieceTokenizeOp",
              "SentencepieceTokenizeWithOffsetsOp", "SentencepieceVocabSizeOp", "SplitMergeTokenizeWithOffsets"),
    "2.3.0": (),
    "2.4.3": ("FindSourceOffsets", "NormalizeUTF8WithOffsetsMap", "SentenceFragmentsV2", "SentencepieceStringToIdOp",
              "TokenizerFromLogits"),
    "2.5.0": (),
    "2.6.0": (),
    "2.7.3": ("FastWordpieceTokenizeWithOffsets", "TFText>FastWordpieceDetokenize",
              "TFText>WhitespaceTokenizeWithOffsetsV2"),
    "2.8.2": (),
    "2.12.1": ("FastBertNormalize", "PhraseTokenize", "TFText>BoiseTagsToOffsets", "TFText>ByteSplitByOffsets",
               "TFText>ByteSplitWithOffsets", "TFText>FastSentencepieceDetokenize",
               "TFText>FastSentencepieceTokenize", "TFText>NgramsStringJoin", "TFText>OffsetsToBoiseTags",
               "TFText>PhraseDetokenize"),
    "2.20.0": ("TFText>RoundRobinGenerateMasks", "TFText>RoundRobinTrim", "TFText>Utf8Binarize"),
}

# TF Serving release -> the tensorflow-text version its model server is built with (every release tag, no rc).
SERVING_TEXT_VERSIONS = (
    ("2.0.0", "a2f2ad05"), ("2.1.0", "a2f2ad05"), ("2.1.4", "a2f2ad05"),
    ("2.2.0", "2.2.0"), ("2.2.2", "2.2.0"), ("2.2.3", "2.2.0"), ("2.3.0", "2.2.0"), ("2.3.3", "2.2.0"),
    ("2.3.4", "2.2.0"), ("2.4.0", "2.3.0"), ("2.4.1", "2.3.0"), ("2.4.2", "2.3.0"), ("2.4.3", "2.4.3"),
    ("2.4.4", "2.4.3"), ("2.5.1", "2.4.3"), ("2.5.2", "2.4.3"), ("2.5.3", "2.4.3"), ("2.5.4", "2.4.3"),
    ("2.6.0", "2.5.0"), ("2.6.1", "2.5.0"), ("2.6.2", "2.5.0"), ("2.6.3", "2.5.0"), ("2.6.5", "2.5.0"),
    ("2.7.0", "2.6.0"), ("2.7.3", "2.7.3"), ("2.7.4", "2.7.3"), ("2.8.0", "2.6.0"), ("2.8.2", "2.6.0"),
    ("2.8.3", "2.6.0"), ("2.8.4", "2.6.0"), ("2.9.0", "2.6.0"), ("2.9.1", "2.6.0"), ("2.9.2", "2.6.0"),
    ("2.9.3", "2.6.0"), ("2.10.0", "2.7.3"), ("2.10.1", "2.7.3"), ("2.11.0", "2.8.2"), ("2.11.1", "2.8.2"),
    ("2.12.0", "2.12.1"), ("2.12.1", "2.12.1"), ("2.12.2", "2.12.1"), ("2.13.0", "2.12.1"), ("2.13.1", "2.12.1"),
    ("2.14.0", "2.12.1"), ("2.14.1", "2.12.1"), ("2.15.1", "2.12.1"), ("2.16.1", "2.12.1"), ("2.17.0", "2.12.1"),
    ("2.17.1", "2.12.1"), ("2.18.0", "2.12.1"), ("2.18.1", "2.12.1"), ("2.19.0", "2.12.1"), ("2.19.1", "2.12.1"),
    ("2.20.0", "2.20.0"),
)
CORE_BASELINE_RELEASE = "2.12.0"  # The TensorFlow whose op list `TF_2_12_CORE_OPS` is.


def text_ops_in(text_version):
    """The ops of tensorflow-text's TF Serving target at ``text_version`` (a key of `TEXT_OPS_ADDED`)."""
    ops = set()
    for version, added in TEXT_OPS_ADDED.items():
        ops.update(added)
        if version == text_version:
            return frozenset(ops)
    raise KeyError(text_version)


TEXT_OPS_LIB = text_ops_in(SERVING_TEXT_VERSIONS[-1][1])


def _release_key(release):
    return tuple(int(part) for part in release.split("."))


@dataclasses.dataclass(frozen=True)
class MinimumRelease:
    """The oldest TF Serving release that runs a set of ops (every later release runs them too).

    Args:
        release: str or None. The release, or None when it is newer than every release this module knows of.
        exact: bool. False when only "this release or older" is known (core ops are not checked before 2.12.0).
        note: str. Why.
    """

    release: object
    exact: bool
    note: str

    def __str__(self):
        if self.release is None:
            return f"unknown ({self.note})"
        return self.release if self.exact else f"{self.release} or older"


def minimum_release(ops, core_ops=None):
    """The oldest TF Serving release after which every release has all of ``ops``.

    Args:
        ops: iterable of op names (core and tensorflow-text; unknown ops give ``release=None``).
        core_ops: set or None. The current TensorFlow's core ops (`core_op_names` by default).

    Returns:
        MinimumRelease.

    Example:
    >>> str(minimum_release({"FastBertNormalize", "FastWordpieceTokenizeWithOffsets", "MatMul"}, core_ops={"MatMul"}))
    '2.12.0'
    >>> str(minimum_release({"MatMul"}, core_ops={"MatMul"}))
    '2.12.0 or older'
    """
    ops = set(ops)
    core_ops = core_op_names() if core_ops is None else core_ops
    text = {op for op in ops if op in TEXT_OPS_LIB}
    core = {op for op in ops - text if op in core_ops and op not in PYTHON_ONLY_OPS}
    other = ops - text - core
    if other:
        return MinimumRelease(None, False, f"ops no model server links: {', '.join(sorted(other))}")
    newer_core = sorted(core - TF_2_12_CORE_OPS)
    # The first release from which every later release links the tensorflow-text ops.
    oldest_text = None
    for release, text_version in reversed(SERVING_TEXT_VERSIONS):
        if not text <= text_ops_in(text_version):
            break
        oldest_text = release
    if oldest_text is None:
        return MinimumRelease(None, False, "tensorflow-text ops newer than TF Serving "
                                           f"{SERVING_TEXT_VERSIONS[-1][0]}")
    if newer_core:
        return MinimumRelease(None, False, f"core ops newer than TensorFlow {CORE_BASELINE_RELEASE}: "
                                           f"{', '.join(newer_core)}")
    if _release_key(oldest_text) >= _release_key(CORE_BASELINE_RELEASE):
        needed = sorted(op for op in text if op not in text_ops_in(dict(SERVING_TEXT_VERSIONS)[_previous(oldest_text)]))
        return MinimumRelease(oldest_text, True, f"tensorflow-text ops {', '.join(needed)} arrive in {oldest_text}; "
                                                 f"core ops all in TensorFlow {CORE_BASELINE_RELEASE}")
    note = (f"core ops all in TensorFlow {CORE_BASELINE_RELEASE} (older TensorFlow not checked)"
            + (f"; tensorflow-text ops in every release since {oldest_text}" if text else "; no tensorflow-text ops"))
    return MinimumRelease(CORE_BASELINE_RELEASE, False, note)


def _previous(release):
    releases = [name for name, _ in SERVING_TEXT_VERSIONS]
    index = releases.index(release)
    return releases[index - 1] if index else release


@functools.lru_cache(maxsize=None)
def core_op_names():
    """The ops TensorFlow itself registers: those of a fresh ``import tensorflow`` in a child process.

    A child process, because this one may have loaded op libraries (tensorflow-text,
    tensorflow-hub's dependencies) that the model server does not link.
    """
    code = ("import json, tensorflow\n"
            "from tensorflow.python.client import pywrap_tf_session as c\n"
            "from tensorflow.core.framework import op_def_pb2\n"
            "ops = op_def_pb2.OpList()\n"
            "ops.ParseFromString(c.TF_GetBuffer(c.TF_GetAllOpList()))\n"
            "print(json.dumps(sorted(op.name for op in ops.op)))\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"could not list TensorFlow's ops: {result.stderr.strip().splitlines()[-1:]}")
    return frozenset(json.loads(result.stdout.strip().splitlines()[-1]))


def classify_op(name, core_ops=None):
    """(`CORE` | `TENSORFLOW_TEXT` | `UNKNOWN`, reason) for an op name."""
    core_ops = core_op_names() if core_ops is None else core_ops
    if name in TEXT_OPS_LIB:
        return TENSORFLOW_TEXT, "tensorflow-text ops_lib"
    if name in PYTHON_ONLY_OPS:
        return UNKNOWN, ("a core op whose kernel runs Python (tf.py_function / tf.numpy_function): "
                         "no model server has it")
    if name in core_ops:
        return CORE, "TensorFlow"
    return UNKNOWN, "neither core TensorFlow nor tensorflow-text's ops_lib"


@dataclasses.dataclass
class OpAudit:
    """The ops of one exported version.

    Attributes:
        path: str. The version folder.
        op_counts: dict of op name to number of nodes (graph and every library function).
        classes: dict of op name to `CORE`, `TENSORFLOW_TEXT` or `UNKNOWN`.
        reasons: dict of op name to a short reason for its class.
        load_ops: set. The ops of what TF Serving runs to load the version (restore and init functions).
        signature_ops: dict of signature name to the set of ops its functions reach.
        core_ops: frozenset. The core op names used to class them.
    """

    path: str
    op_counts: dict
    classes: dict
    reasons: dict
    load_ops: set
    signature_ops: dict
    core_ops: frozenset

    @property
    def unknown(self):
        return sorted(op for op, kind in self.classes.items() if kind == UNKNOWN)

    @property
    def ok(self):
        return not self.unknown

    def ops_of(self, kind):
        return sorted(op for op, value in self.classes.items() if value == kind)

    def minimum_release(self, signature=None):
        """The oldest TF Serving release that loads the version and runs ``signature`` (all signatures if None)."""
        ops = set(self.load_ops)
        for name, signature_ops in self.signature_ops.items():
            if signature is None or name == signature:
                ops |= signature_ops
        return minimum_release(ops, self.core_ops)

    def to_dict(self):
        return {
            "path": self.path,
            "ok": self.ok,
            "ops": {kind: {op: self.op_counts[op] for op in self.ops_of(kind)}
                    for kind in (CORE, TENSORFLOW_TEXT, UNKNOWN)},
            "unknown_reasons": {op: self.reasons[op] for op in self.unknown},
            "signatures": {name: {"tensorflow_text_ops": sorted(ops & TEXT_OPS_LIB),
                                  "minimum_tf_serving": str(self.minimum_release(name))}
                           for name, ops in sorted(self.signature_ops.items())},
            "minimum_tf_serving": str(self.minimum_release()),
        }


def read_saved_model_proto(path):
    """The `SavedModel` proto of a version folder (``saved_model.pb`` or ``saved_model.pbtxt``)."""
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    binary, text = os.path.join(path, "saved_model.pb"), os.path.join(path, "saved_model.pbtxt")
    try:
        if os.path.exists(binary):
            with open(binary, "rb") as f:
                proto.ParseFromString(f.read())
        else:
            with open(text, encoding="utf-8") as f:
                text_format.Parse(f.read(), proto)
    except Exception as e:  # noqa: BLE001  (a corrupt file becomes one line naming it)
        raise ModelFolderError(path, f"saved_model.pb is not a SavedModel ({type(e).__name__})") from e
    return proto


def _called_functions(node_defs, library_names):
    """Names of the library functions a list of NodeDefs calls (by op name or through func attributes)."""
    called = set()
    for node in node_defs:
        if node.op in library_names:
            called.add(node.op)
        for value in node.attr.values():
            if value.HasField("func"):
                called.add(value.func.name)
            called.update(func.name for func in value.list.func)
    return called & library_names


def _closure(graph_def, start_nodes):
    """Op names reached from ``start_nodes`` of the graph: their inputs, transitively, and the functions they call."""
    nodes = {node.name: node for node in graph_def.node}
    functions = {function.signature.name: function for function in graph_def.library.function}
    library_names = set(functions)
    seen, stack = set(), [name for name in start_nodes if name in nodes]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for source in nodes[name].input:
            source = source.lstrip("^").split(":")[0]
            if source in nodes and source not in seen:
                stack.append(source)
    reached_nodes = [nodes[name] for name in seen]
    ops = {node.op for node in reached_nodes if node.op not in library_names}
    pending, done = list(_called_functions(reached_nodes, library_names)), set()
    while pending:
        name = pending.pop()
        if name in done:
            continue
        done.add(name)
        body = functions[name].node_def
        ops.update(node.op for node in body if node.op not in library_names)
        pending.extend(_called_functions(body, library_names) - done)
    return ops


def _node_name(tensor_name):
    return tensor_name.lstrip("^").split(":")[0]


def audit_saved_model(path, core_ops=None):
    """Audits the ops of a model folder (its newest version) or of a version folder.

    Args:
        path: str. ``saved_models/<model>`` or ``saved_models/<model>/<version>``.
        core_ops: set or None. Core op names (`core_op_names` by default).

    Returns:
        OpAudit.

    Raises:
        ModelFolderError: no SavedModel there.
    """
    version_dir = resolve_model_folder(path).path
    proto = read_saved_model_proto(version_dir)
    core_ops = core_op_names() if core_ops is None else frozenset(core_ops)
    counts = collections.Counter()
    load_ops, signature_ops = set(), collections.defaultdict(set)
    for meta_graph in proto.meta_graphs:
        graph_def = meta_graph.graph_def
        library_names = {function.signature.name for function in graph_def.library.function}
        counts.update(node.op for node in graph_def.node if node.op not in library_names)
        for function in graph_def.library.function:
            counts.update(node.op for node in function.node_def if node.op not in library_names)
        load_nodes = [_node_name(meta_graph.saver_def.restore_op_name)] if meta_graph.saver_def.restore_op_name else []
        for name, signature in meta_graph.signature_def.items():
            outputs = [_node_name(info.name) for info in signature.outputs.values() if info.name]
            if name == "__saved_model_init_op":
                load_nodes += outputs
            else:
                signature_ops[name] |= _closure(graph_def, outputs)
        for key in ("saved_model_main_op", "legacy_init_op"):
            if key in meta_graph.collection_def:
                load_nodes += [_node_name(name) for name in meta_graph.collection_def[key].node_list.value]
        load_ops |= _closure(graph_def, load_nodes)
    classes, reasons = {}, {}
    for op in counts:
        classes[op], reasons[op] = classify_op(op, core_ops)
    return OpAudit(path=version_dir, op_counts=dict(counts), classes=classes, reasons=reasons, load_ops=load_ops,
                   signature_ops=dict(signature_ops), core_ops=core_ops)
