"""Typed command-line arguments from dataclasses (the HF example scripts' pattern).

Each fit script declares its arguments as dataclasses whose fields carry a
``help`` text (and optionally ``choices``) in their metadata; `parse_arguments`
turns them into an `argparse` parser, validates them through each dataclass's
``__post_init__`` and returns the instances. A JSON file given with
``--args-file`` supplies defaults that the command line overrides.

Every parser also has the output options of `tfnlp.training.cli`: ``--debug``
(tracebacks of user errors), ``--verbose`` (the frameworks' logs) and
``--quiet`` (warnings and results only). An invalid value ends the script with
one line ``error: <message>`` and exit code 2, before TensorFlow builds
anything.
"""

import argparse
import dataclasses
import json
import os
import sys
import typing

from tfnlp.utils.model_folders import is_saved_model


def field(default, help, choices=None, nargs=None, positional=False):  # noqa: A002  (mirrors argparse's name)
    """A dataclass field with command-line ``help`` text (and ``choices``).

    ``nargs`` (argparse's ``"*"`` or ``"+"``) takes several values: the field
    is annotated ``tuple[<type>, ...]`` and holds a tuple. ``positional``
    makes it a positional argument (named after the field, no ``--``), as the
    serving tools' model folders or ``predict``'s texts.
    """
    metadata = {"help": help}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if nargs is not None:
        if nargs not in ("*", "+"):
            raise ValueError(f"nargs must be '*' or '+', got {nargs!r}")
        metadata["nargs"] = nargs
    if positional:
        metadata["positional"] = True
    return dataclasses.field(default=default, metadata=metadata)


def _base_type(annotation):
    """Returns (type, optional) for ``int``, ``float``, ``str``, ``bool``, ``Optional[...]`` of them and the item
    type of ``tuple[..., ...]`` (a field with ``nargs``)."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        args = typing.get_args(annotation)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"unsupported argument type {annotation!r} (expected tuple[<type>, ...])")
        return args[0], False
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported argument type {annotation!r}")
        return args[0], True
    return annotation, False


def _add_dataclass(parser, cls):
    group = parser.add_argument_group(cls.__name__, (cls.__doc__ or "").strip().split("\n")[0])
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind, optional = _base_type(hints[f.name])
        if ("nargs" in f.metadata) is not (typing.get_origin(hints[f.name]) is tuple):
            raise TypeError(f"{cls.__name__}.{f.name}: a field with nargs is a tuple[<type>, ...], and only it")
        flag = "--" + f.name.replace("_", "-")
        kwargs = {"dest": f.name, "help": f.metadata.get("help", "") + " (default: %(default)s)",
                  "default": argparse.SUPPRESS}
        if f.metadata.get("positional"):  # argparse names a positional by its dest; a required one shows no default.
            flag = kwargs.pop("dest")
            if f.metadata.get("nargs") != "*":
                kwargs["help"] = f.metadata.get("help", "")
        if "nargs" in f.metadata:
            kwargs["nargs"] = f.metadata["nargs"]
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            if optional:
                kwargs["type"] = lambda value, kind=kind: None if value.lower() == "none" else kind(value)
            else:
                kwargs["type"] = kind
            if "choices" in f.metadata:
                kwargs["choices"] = f.metadata["choices"]
        group.add_argument(flag, **kwargs)
        # argparse shows SUPPRESS defaults as "==SUPPRESS==": show the dataclass default instead.
        group._group_actions[-1].help = kwargs["help"].replace("%(default)s", repr(f.default))


class ArgumentParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose errors are one line ``error: <message>`` (exit code 2), without usage."""

    def error(self, message):
        self.exit(2, f"error: {' '.join(message.split())} (see --help)\n")


OUTPUT_OPTIONS = ("debug", "verbose", "quiet")


def build_parser(description, *dataclass_types):
    """An `ArgumentParser` with one option per dataclass field, ``--args-file`` and the output options."""
    parser = ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--args-file", default=None,
                        help="JSON file of argument values (field names as keys); the command line overrides it.")
    for cls in dataclass_types:
        _add_dataclass(parser, cls)
    output = parser.add_argument_group("output", "What the script prints (never written to config.json).")
    output.add_argument("--debug", action="store_true",
                        help="Show the traceback of data, path and configuration errors (else one line).")
    loudness = output.add_mutually_exclusive_group()
    loudness.add_argument("--verbose", action="store_true",
                          help="Also show the frameworks' logs (TensorFlow, Keras, transformers) and the model "
                               "summary. TensorFlow's C++ logs need it on the command line (read at import).")
    loudness.add_argument("--quiet", action="store_true", help="Show only warnings, errors and the results.")
    return parser


def parse_arguments(description, *dataclass_types, argv=None, validate=None):
    """Parses ``argv`` into one instance of each dataclass; exits with a one-line error on invalid values.

    Each dataclass checks its own values in ``__post_init__`` (raising
    `ValueError`); ``validate`` checks combinations across them. Either error
    ends the script with ``error: <message>`` and exit code 2. The output
    options (``--verbose``, ``--quiet``) are applied before returning
    (`tfnlp.training.cli.configure_output`).

    Args:
        description: str. The script's description for ``--help``.
        *dataclass_types: dataclass types whose fields become options.
        argv: list of str or None. Defaults to ``sys.argv[1:]``.
        validate: callable or None. Called with the instances; raises `ValueError` for combinations that
            cannot work.

    Returns:
        A tuple of dataclass instances, in the order of ``dataclass_types``.

    Example:
    >>> @dataclasses.dataclass
    ... class Args:
    ...     epochs: int = field(3, "Number of epochs.")
    >>> parse_arguments("demo", Args, argv=["--epochs", "5"])
    (Args(epochs=5),)
    """
    from tfnlp.training import cli

    parser = build_parser(description, *dataclass_types)
    namespace = vars(parser.parse_args(sys.argv[1:] if argv is None else argv))
    output = {name: namespace.pop(name) for name in OUTPUT_OPTIONS}
    cli.configure_output("verbose" if output["verbose"] else "quiet" if output["quiet"] else "default")
    args_file = namespace.pop("args_file")
    values = _read_args_file(parser, args_file, dataclass_types) if args_file else {}
    values.update(namespace)
    instances = []
    for cls in dataclass_types:  # argparse gives the values of a field with nargs as a list.
        for f in dataclasses.fields(cls):
            if "nargs" in f.metadata and f.name in values:
                values[f.name] = tuple(values[f.name])
    for cls in dataclass_types:
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            instances.append(cls(**{k: v for k, v in values.items() if k in names}))
        except (TypeError, ValueError) as e:
            parser.error(str(e))
    if validate is not None:
        try:
            validate(*instances)
        except ValueError as e:
            parser.error(str(e))
    return tuple(instances)


def check_local_folder_or_hub_name(option, value):
    """Raises `ValueError` when ``value`` can only be a local folder (not a Hugging Face Hub name) and is none.

    For options naming a pretrained model: '' (the default model), an existing folder and a hub name such as
    ``bert-base-uncased`` or ``org/name`` pass; ``/no/such/folder`` or ``./typo`` fail when arguments are parsed.

    Example:
    >>> check_local_folder_or_hub_name("--pretrained", "google-bert/bert-base-uncased")
    >>> check_local_folder_or_hub_name("--pretrained", "/no/such/folder")
    Traceback (most recent call last):
    ...
    ValueError: --pretrained /no/such/folder: no such folder (expected a local HF BERT folder or a Hugging Face Hub name)
    """
    from tfnlp.pretrained import _HUB_NAME

    path = os.path.expanduser(value)
    if not value or os.path.isdir(path):
        return
    if os.path.exists(path):
        raise ValueError(f"{option} {value}: not a folder (expected a local HF BERT folder or a Hugging Face Hub name)")
    if not _HUB_NAME.match(value):
        raise ValueError(f"{option} {value}: no such folder (expected a local HF BERT folder or a Hugging Face Hub "
                         f"name)")


def check_saved_model_or_url(option, value):
    """Raises `ValueError` when ``value`` is not a URL (``scheme://...``) and not a folder holding a SavedModel.

    Example:
    >>> check_saved_model_or_url("--encoder", "https://tfhub.dev/tensorflow/small_bert/bert_en_uncased_L-4_H-128_A-2/1")
    >>> check_saved_model_or_url("--encoder", "/no/such/folder")
    Traceback (most recent call last):
    ...
    ValueError: --encoder /no/such/folder: no such folder (expected a TF-Hub URL or a local SavedModel folder)
    """
    if not value or "://" in value:
        return
    folder = os.path.expanduser(value)
    if not os.path.isdir(folder):
        raise ValueError(f"{option} {value}: no such folder (expected a TF-Hub URL or a local SavedModel folder)")
    if not is_saved_model(folder):
        raise ValueError(f"{option} {value}: no saved_model.pb in the folder (expected a SavedModel)")


# Help texts of options several fit scripts share.
LAZY_HELP = ("AdamW updates only the vocabulary rows each batch uses (LazyAdam; --no-lazy-embedding-updates: dense "
             "AdamW, which updates the whole 30,522-row table every step, about 0.4 s per step on 2 CPU cores).")
MAX_GRAD_NORM_HELP = "Clip the gradient's global norm to this (as HF Trainer's max_grad_norm); 0 = no clipping."
AVERAGE_SNAPSHOTS_HELP = ("Checkpoint averaging: average the weights of N snapshots spread over the last "
                          "--average-fraction of the steps (the last one at the end); 0 = no averaging.")
AVERAGE_FRACTION_HELP = "Part of the training, at its end, over which the --average-snapshots snapshots are taken."


def check_optimization_arguments(args):
    """Validates the ``epochs``, ``batch_size``, ``learning_rate``, ``warmup_ratio``, ``weight_decay`` and (where
    ``args`` has them) ``max_grad_norm``, ``average_snapshots`` and ``average_fraction`` of ``args``."""
    if args.epochs < 1 or args.batch_size < 1:
        raise ValueError("--epochs and --batch-size must be at least 1")
    if args.learning_rate <= 0:
        raise ValueError("--learning-rate must be positive")
    if not 0 <= args.warmup_ratio < 1:
        raise ValueError("--warmup-ratio must lie in [0, 1)")
    if args.weight_decay < 0:
        raise ValueError("--weight-decay must be >= 0")
    if getattr(args, "max_grad_norm", 0) < 0:
        raise ValueError(f"--max-grad-norm must be >= 0 (0 = no clipping), got {args.max_grad_norm}")
    if getattr(args, "average_snapshots", 0) < 0 or not 0 < getattr(args, "average_fraction", 1) <= 1:
        raise ValueError("--average-snapshots must be >= 0 and --average-fraction in (0, 1]")


def _read_args_file(parser, path, dataclass_types):
    """The values of a ``--args-file``, checked like command-line values (known name, type, choices)."""
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except (OSError, ValueError) as e:
        parser.error(f"--args-file {path}: {e}")
    if not isinstance(values, dict):
        parser.error(f"--args-file {path}: expected a JSON object of argument values, found {type(values).__name__}")
    fields = {f.name: (f, typing.get_type_hints(cls)[f.name])
              for cls in dataclass_types for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        parser.error(f"--args-file {path}: unknown argument(s) {', '.join(unknown)}")
    for name, value in values.items():
        f, annotation = fields[name]
        kind, optional = _base_type(annotation)
        flag = "--" + name.replace("_", "-")
        if value is None and optional:
            continue
        if "nargs" in f.metadata:  # A JSON list of the item type.
            if not isinstance(value, list) or not all(isinstance(item, kind) and not isinstance(item, bool)
                                                      for item in value):
                parser.error(f"--args-file {path}: {flag} must be a list of {kind.__name__}, found {value!r}")
            values[name] = tuple(value)
            continue
        # JSON integers are fine for float options; bool is an int subclass but never a number here.
        accepted = (int, float) if kind is float else (kind,)
        if isinstance(value, bool) is not (kind is bool) or not isinstance(value, accepted):
            parser.error(f"--args-file {path}: {flag} must be {kind.__name__}, found {value!r}")
        if value not in f.metadata.get("choices", (value,)):
            parser.error(f"--args-file {path}: {flag} must be one of {', '.join(f.metadata['choices'])}, "
                         f"found {value!r}")
        values[name] = kind(value)
    return values
