"""Show an export's TF Serving warm-up requests, or keep only some signatures' requests.

    python -m pipelines.serving.warmup_requests saved_models/agnews_hf_bert                      # list them
    python -m pipelines.serving.warmup_requests saved_models/agnews_hf_bert --keep serving_ids   # older servers

Every export carries assets.extra/tf_serving_warmup_requests, replayed by TF
Serving before it serves the version; a request that fails makes the load
fail. A model server without tensorflow-text's ops can still serve the
HF classifier's serving_ids signature (token ids in), but not the text
signature, so for such a server keep only the serving_ids requests.
"""

import dataclasses

import tfnlp  # noqa: F401  (Keras 2 before TensorFlow)

import tensorflow as tf

from tfnlp.serving import warmup
from tfnlp.training import cli, field, parse_arguments
from tfnlp.utils.model_folders import resolve_model_folder


def describe(version_dir):
    """One line per warm-up request: signature and input shapes."""
    lines = []
    for index, log in enumerate(warmup.read_warmup_requests(version_dir), start=1):
        request = log.predict_log.request
        shapes = ", ".join(f"{key} {list(tf.make_ndarray(proto).shape)}"
                           for key, proto in sorted(request.inputs.items()))
        lines.append(f"{index}: {request.model_spec.signature_name or 'serving_default'}: {shapes}")
    return lines


@dataclasses.dataclass
class WarmupArguments:
    """The export, and the signatures to keep (checked when the file is read)."""

    model: str = field("", "saved_models/<name> (newest version) or a version folder.", positional=True)
    keep: tuple[str, ...] = field((), "Rewrite the file with only these signatures' requests.", nargs="+")


def main(argv=None):
    (args,) = parse_arguments(__doc__, WarmupArguments, argv=argv)
    version_dir = resolve_model_folder(args.model).path
    with cli.user_errors(ValueError):  # The warm-up file has no request for --keep's signatures, or none at all.
        if args.keep:
            kept, dropped = warmup.keep_warmup_requests(version_dir, args.keep)
            print(f"{warmup.warmup_file(version_dir)}: kept {kept} request(s), dropped {dropped}")
        lines = describe(version_dir)
    print("\n".join(lines) if lines else f"{version_dir}: no warm-up requests")
    return lines


if __name__ == "__main__":
    cli.run(main)
