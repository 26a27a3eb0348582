"""List every op an export uses and check that TF Serving's model server has each one.

    python -m pipelines.serving.audit_ops saved_models/agnews_transformer             # newest version
    python -m pipelines.serving.audit_ops saved_models/conll_ner/2 saved_models/agnews_hf_bert --json

Each op of the SavedModel's graph and of every function in its library is
classed as core TensorFlow, tensorflow-text's ops_lib (linked by the model
server) or unknown; an unknown op makes the command end with one line
``error: ...`` naming the exports and ops, and exit status 1. For
each signature it prints the tensorflow-text ops it needs and the oldest TF
Serving release that runs it (see tfnlp.serving.op_audit for where that comes from).
"""

import dataclasses
import json
import textwrap

from tfnlp.errors import ConfigurationError
from tfnlp.serving.op_audit import CORE, TENSORFLOW_TEXT, TEXT_OPS_LIB, UNKNOWN, audit_saved_model
from tfnlp.training import cli, field, parse_arguments

TITLES = {CORE: "core TensorFlow", TENSORFLOW_TEXT: "tensorflow-text ops_lib", UNKNOWN: "unknown"}


def report(audit):
    """The audit of one export as text lines."""
    lines = [audit.path]
    for kind in (CORE, TENSORFLOW_TEXT, UNKNOWN):
        ops = audit.ops_of(kind)
        listed = ", ".join(f"{op} ({audit.reasons[op]})" if kind == UNKNOWN else op for op in ops) or "none"
        lines.append(textwrap.fill(f"{TITLES[kind]} ({len(ops)} ops): {listed}", width=116,
                                   initial_indent="  ", subsequent_indent="      "))
    for name, ops in sorted(audit.signature_ops.items()):
        text_ops = ", ".join(sorted(ops & TEXT_OPS_LIB)) or "none"
        lines.append(f"  signature {name}: tensorflow-text ops {text_ops}; "
                     f"oldest TF Serving release {audit.minimum_release(name)}")
    minimum = audit.minimum_release()
    lines.append(f"  oldest TF Serving release that loads it and runs every signature: {minimum} ({minimum.note})")
    lines.append("  OK: every op is in the model server" if audit.ok else
                 f"  FAILED: {len(audit.unknown)} op(s) the model server does not have: {', '.join(audit.unknown)}")
    return lines


@dataclasses.dataclass
class AuditArguments:
    """Which exports to audit, and how to print the result (the model folders are checked when they are read)."""

    models: tuple[str, ...] = field((), "saved_models/<model> (newest version) or a version folder.", nargs="+",
                                    positional=True)
    json: bool = field(False, "Print one JSON object per export instead.")


def main(argv=None):
    (args,) = parse_arguments(__doc__, AuditArguments, argv=argv)
    audits = [audit_saved_model(path) for path in args.models]
    for audit in audits:
        print(json.dumps(audit.to_dict(), sort_keys=True) if args.json else "\n".join(report(audit)), flush=True)
    failed = [audit for audit in audits if not audit.ok]
    if failed:
        raise ConfigurationError("; ".join(f"{audit.path}: {len(audit.unknown)} op(s) the model server does not "
                                           f"have: {', '.join(audit.unknown)}" for audit in failed))
    return audits


if __name__ == "__main__":
    cli.run(main)
