"""Argument checks and initializer cloning shared by the tfnlp layers."""

import numbers


def check_positive_int(name, value):
    """Returns ``value`` as an int, or raises ValueError naming ``name`` if it is not an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, received {value!r}.")
    return int(value)


def check_rate(name, value):
    """Returns ``value`` as a float, or raises ValueError naming ``name`` if it is not in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"`{name}` must be a number in [0, 1), received {value!r}.")
    return float(value)


def clone_initializer(initializer):
    """A fresh copy of ``initializer``: an unseeded tf_keras initializer instance
    returns the same values on every call, so each weight needs its own."""
    return initializer.__class__.from_config(initializer.get_config())
