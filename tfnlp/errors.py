"""Errors a user fixes from the message alone (see also `tfnlp.data.DataFormatError`)."""


class ConfigurationError(ValueError):
    """A setting, or a file or folder it names, cannot work; the message says which and why.

    Fit scripts print it as one line ``error: <message>``
    (`tfnlp.training.cli.run`); it is a `ValueError`, so code catching those
    keeps working.
    """
