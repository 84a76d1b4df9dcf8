"""Keras-style default names of layers and models: ``dense``, ``dense_1``, ``dense_2``, ..."""
from collections import defaultdict

_counts = defaultdict(int)


def unique_name(prefix):
    """The next default name for ``prefix``: ``prefix``, then ``prefix_1``, ``prefix_2``, ..."""
    n = _counts[prefix]
    _counts[prefix] += 1
    return prefix if n == 0 else f"{prefix}_{n}"


def reserve(name):
    """Note a name given by the user (or read from a file), so that default names skip it:
    after ``reserve("dense_3")`` the next default ``dense`` name is ``dense_4``."""
    prefix, _, number = name.rpartition("_")
    if prefix and number.isdigit():
        _counts[prefix] = max(_counts[prefix], int(number) + 1)
    else:
        _counts[name] = max(_counts[name], 1)


def reset_names():
    """Start default names from scratch (like ``keras.backend.clear_session()``)."""
    _counts.clear()


def missing(module, name, kind, have, advice=""):
    """The error for a Keras name that tinynet does not implement, raised by the modules'
    ``__getattr__``: it names what was asked for, what to do instead (``advice``, if any) and
    lists what tinynet has."""
    if name.startswith("__"):
        return AttributeError(name)
    return AttributeError(f"{module}.{name}: {name} is a Keras {kind} that tinynet does not "
                          f"implement{f' ({advice})' if advice else ''}; {module} has "
                          f"{', '.join(have)}")
