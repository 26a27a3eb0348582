"""SavedModel folders: what is one (`is_saved_model`), and ``saved_models/<name>[/<version>]`` resolved to one
version folder, as TF Serving picks it.

`is_saved_model` is tfnlp's one test of "this folder holds a SavedModel"
(``saved_model.pb`` or ``saved_model.pbtxt``, as `tf.saved_model.load` reads
either): the TF-Hub artifacts (`tfnlp.hub`), the fit scripts' ``--encoder``
check (`tfnlp.training.arguments`), the attention maps of an export
(`tfnlp.models.attention_maps`) and serving all use it.

TF Serving watches a model's base folder and serves the version folders whose
names are integers, the highest by default. The command-line tools resolve the
folder they are given once, here, and pass the resolved `ModelVersion` inward.
"""

import dataclasses
import os
import re

from tfnlp.errors import ConfigurationError

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


class ModelFolderError(ConfigurationError):
    """A model folder is missing or is not a servable SavedModel; the message is one line naming the folder.

    A `tfnlp.errors.ConfigurationError` (so a `ValueError`): commands print it as one ``error:`` line.
    """

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):
        return (type(self), (self.path, self.problem))


@dataclasses.dataclass(frozen=True)
class ModelVersion:
    """One version of a served model.

    Args:
        name: str. The model's name (its base folder's name, as in ``models.config``).
        version: int or None. The version (None for a SavedModel folder that is not named by an integer).
        path: str. The version folder, holding ``saved_model.pb``.
    """

    name: str
    version: object
    path: str


def is_saved_model(path):
    """True if ``path`` is a folder holding ``saved_model.pb`` (or ``saved_model.pbtxt``)."""
    return any(os.path.isfile(os.path.join(path, name)) for name in SAVED_MODEL_FILES)


def list_versions(base_dir):
    """The versions TF Serving can serve from ``base_dir``, ascending.

    A version is a sub-folder named by an integer that holds a SavedModel;
    anything else (temporary folders of an export in progress, files, other
    names) is ignored, as TF Serving's file-system source ignores it.

    Example:
    >>> import tempfile
    >>> base = tempfile.mkdtemp()
    >>> for name in ("1", "10", "2", ".3.tmp"):
    ...     os.makedirs(os.path.join(base, name))
    ...     open(os.path.join(base, name, "saved_model.pb"), "wb").close()
    >>> list_versions(base)
    [1, 2, 10]
    """
    if not os.path.isdir(base_dir):
        return []
    return sorted(int(name) for name in os.listdir(base_dir)
                  if re.fullmatch(r"\d+", name) and is_saved_model(os.path.join(base_dir, name)))


def resolve_model_folder(path, version=None):
    """Resolves a model folder or a version folder to the `ModelVersion` to load.

    Args:
        path: str. ``saved_models/<name>`` (its newest version is taken, or
            ``version``) or ``saved_models/<name>/<version>`` (a folder holding
            ``saved_model.pb``).
        version: int or None. A version of ``saved_models/<name>``.

    Returns:
        ModelVersion.

    Raises:
        ModelFolderError: no such folder, no SavedModel in it, no such version.
    """
    path = os.path.normpath(os.fspath(path))
    if not os.path.exists(path):
        raise ModelFolderError(path, "no such folder")
    if not os.path.isdir(path):
        raise ModelFolderError(path, "not a folder (expected saved_models/<model> or saved_models/<model>/<version>)")
    if is_saved_model(path):
        if version is not None:
            raise ModelFolderError(path, f"is a version folder itself; version {version} cannot be chosen inside it")
        folder_name = os.path.basename(os.path.abspath(path))
        number = int(folder_name) if re.fullmatch(r"\d+", folder_name) else None
        name = os.path.basename(os.path.dirname(os.path.abspath(path))) if number is not None else folder_name
        return ModelVersion(name=name, version=number, path=path)
    versions = list_versions(path)
    if not versions:
        numbered = sorted(name for name in os.listdir(path)
                          if re.fullmatch(r"\d+", name) and os.path.isdir(os.path.join(path, name)))
        if numbered:
            raise ModelFolderError(path, f"version folder(s) {', '.join(numbered)} hold no saved_model.pb")
        raise ModelFolderError(path, "not a model folder: no saved_model.pb and no numbered version folders "
                                     "(expected <model>/<version>/saved_model.pb)")
    if version is None:
        version = versions[-1]
    elif int(version) not in versions:
        raise ModelFolderError(path, f"no version {version} (versions: {', '.join(map(str, versions))})")
    name = os.path.basename(os.path.abspath(path))
    return ModelVersion(name=name, version=int(version), path=os.path.join(path, str(int(version))))


def find_model_folders(root):
    """The model folders directly under ``root`` (those with at least one servable version), sorted by name.

    Returns:
        list of (name, folder, versions) tuples.
    """
    if not os.path.isdir(root):
        raise ModelFolderError(root, "no such folder")
    found = []
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        if not name.startswith(".") and os.path.isdir(folder):
            versions = list_versions(folder)
            if versions:
                found.append((name, folder, versions))
    return found
