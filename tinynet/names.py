"""Keras-style default names of layers and models: ``dense``, ``dense_1``, ``dense_2``, ...; the
error for a Keras name that tinynet does not have; and whether a class writes a Keras method
(``call``, ``update_step``) over tinynet's own (``_forward``, ``per_example``, ``update``)."""
import dis
import importlib.util
import os
import sys
from collections import defaultdict
from pathlib import Path

_counts = defaultdict(int)


def unique_name(prefix):
    """The next default name for ``prefix``: ``prefix``, then ``prefix_1``, ``prefix_2``, ..."""
    n = _counts[prefix]
    _counts[prefix] += 1
    return prefix if n == 0 else f"{prefix}_{n}"


def reserve(name, owner=None):
    """Note a name given by the user (or read from a file), so that default names skip it:
    after ``reserve("dense_3")`` the next default ``dense`` name is ``dense_4``. A name is a
    string: anything else is refused naming ``owner`` (the layer's or model's class)."""
    if not isinstance(name, str):
        raise TypeError(f"{owner or 'a layer or model'}: name must be a string, like "
                        f"name='output', got {name!r} ({type(name).__name__})")
    prefix, _, number = name.rpartition("_")
    if prefix and number.isdigit():
        _counts[prefix] = max(_counts[prefix], int(number) + 1)
    else:
        _counts[name] = max(_counts[name], 1)


def reset_names():
    """Start default names from scratch (like ``keras.backend.clear_session()``)."""
    _counts.clear()


def unknown_argument(where, key, takes):
    """The error for Keras's argument ``key=`` given to ``where`` (a function or layer), which
    tinynet does not implement; ``takes`` says what it takes instead."""
    return TypeError(f"{where}: Keras's argument {key}= is not implemented in tinynet; {takes}")


def missing(module, name, kind, have, advice=""):
    """The error for a Keras name that tinynet does not implement, raised by the modules'
    ``__getattr__``: it names what was asked for, what to do instead (``advice``, if any) and
    lists what tinynet has.

    An AttributeError (``hasattr`` and ``getattr(m, name, default)`` rely on it), except under
    ``from tinynet.callbacks import LearningRateScheduler``: Python replaces an AttributeError
    raised there by a bare "cannot import name", so the statement gets an ImportError carrying
    the same message."""
    if name.startswith("__"):
        return AttributeError(name)
    return absent(f"{module}.{name}: {name} is a Keras {kind} that tinynet does not "
                  f"implement{f' ({advice})' if advice else ''}; {module} has {', '.join(have)}",
                  module, name)


def absent(message, module, name):
    """The error with ``message`` for ``module.name``, which tinynet does not have: an
    AttributeError, or under ``from module import name`` an ImportError (see :func:`missing`)."""
    if _importing_from() and not _is_submodule(module, name):
        return ImportError(message, name=module)
    return AttributeError(message)


def _is_submodule(module, name):
    """Whether ``module.name`` is a module not imported yet (``from tinynet import plots``):
    Python imports it after the AttributeError, which must then stay one."""
    try:
        return importlib.util.find_spec(f"{module}.{name}") is not None
    except ImportError:  # module is not a package
        return False


_PACKAGE = str(Path(__file__).resolve().parent) + os.sep  # tinynet's own files, not tinynet_x.py


def _importing_from():
    """Whether the code that asked for the missing name (the first frame outside tinynet) is
    executing a ``from ... import name`` statement."""
    try:
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
            frame = frame.f_back
        return frame is not None and \
            frame.f_code.co_code[frame.f_lasti] == dis.opmap["IMPORT_FROM"]
    except (AttributeError, IndexError, KeyError, ValueError):  # another Python's frames
        return False


def written_over(cls, keras_method, *own_methods):
    """Whether ``cls`` gets ``keras_method`` from a class more derived than those it gets every
    one of ``own_methods`` from: a Keras method written in a subclass of a tinynet class, which
    tinynet would not run (``call`` over ``Dense._forward``, ``update_step`` over ``Adam.update``)."""
    def first(name):
        return next((i for i, k in enumerate(cls.__mro__) if name in vars(k)), len(cls.__mro__))
    return first(keras_method) < min(first(name) for name in own_methods)
