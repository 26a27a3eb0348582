"""Small shared utilities: atomic file output (`tfnlp.utils.atomic`), progress lines, a network probe, and SavedModel
folders (`tfnlp.utils.model_folders`)."""

from tfnlp.utils.atomic import (
    atomic_directory,
    atomic_file,
    atomic_write_json,
    atomic_write_text,
    remove_stale_temporaries,
)

__all__ = ["atomic_directory", "atomic_file", "atomic_write_json", "atomic_write_text", "remove_stale_temporaries"]
