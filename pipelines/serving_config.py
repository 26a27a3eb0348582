"""Write TF Serving's models.config: one entry per model folder under saved_models/.

    python -m pipelines.serving_config                          # saved_models/models.config, local paths
    python -m pipelines.serving_config --base-path /models      # paths as the tensorflow/serving container sees them

A model folder is a sub-folder holding at least one numbered version with a
saved_model.pb (TF Serving's layout: saved_models/<model>/<version>/). Each
entry serves the folder's newest version (--version-policy all: every version).
Then start the model server on it:

    tensorflow_model_server --port=8500 --rest_api_port=8501 \\
        --model_config_file=saved_models/models.config --enable_model_warmup=true
"""

import argparse
import os
import sys

from google.protobuf import text_format

from tfnlp.serving.model_folders import ModelFolderError, find_model_folders
from tfnlp.utils import atomic_write_text


def build_config(models, base_path, version_policy="latest"):
    """A ``ModelServerConfig`` proto with one ``model_config_list`` entry per ``(name, folder, versions)``.

    Args:
        models: list of (name, folder, versions), as `find_model_folders` returns them.
        base_path: str or None. The folder that holds the model folders as the server sees it (``/models``
            in the container); None for each folder's absolute path here.
        version_policy: str. ``latest`` (the newest version) or ``all``.
    """
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    for name, folder, _ in models:
        entry = config.model_config_list.config.add()
        entry.name = name
        entry.base_path = os.path.abspath(folder) if base_path is None else f"{base_path.rstrip('/')}/{name}"
        entry.model_platform = "tensorflow"
        if version_policy == "all":
            entry.model_version_policy.all.SetInParent()
        elif version_policy != "latest":
            raise ValueError(f"version_policy must be 'latest' or 'all', got {version_policy!r}")
    return config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--saved-models-dir", default="saved_models", help="Folder of the model folders.")
    parser.add_argument("--output", default=None, help="Where to write the config (default: "
                                                       "<saved-models-dir>/models.config).")
    parser.add_argument("--base-path", default=None, help="The saved-models folder as the model server sees it, "
                                                          "e.g. /models in the tensorflow/serving container "
                                                          "(default: its absolute path here).")
    parser.add_argument("--version-policy", default="latest", choices=("latest", "all"),
                        help="Serve each model's newest version, or every version.")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        models = find_model_folders(args.saved_models_dir)
        if not models:
            raise ModelFolderError(args.saved_models_dir, "holds no model folder (<model>/<version>/saved_model.pb)")
        config = build_config(models, args.base_path, args.version_policy)
    except (ModelFolderError, ValueError) as e:
        sys.exit(f"serving_config: error: {e}")
    output = args.output or os.path.join(args.saved_models_dir, "models.config")
    text = text_format.MessageToString(config)
    atomic_write_text(output, text)
    for name, folder, versions in models:
        print(f"{name}: {folder} (versions {', '.join(map(str, versions))})")
    print(f"wrote {output} ({len(models)} models)")
    return output


if __name__ == "__main__":
    main()
