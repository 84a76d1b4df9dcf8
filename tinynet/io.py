"""Saving and loading whole models in one ``.npz`` file, written atomically.

It is tinynet's own format whatever the file's name: ``model.save("model.keras")`` (or ``.h5``,
as Keras scripts name their files, or ``.npz``) writes it, Keras does not read it, and tinynet
does not read Keras's files (a clear error says so): :mod:`tinynet.interop` converts models.

The file holds a JSON header (format version, architecture as layer configs and connections,
compile settings, optimizer configuration, epoch counter) and the arrays: the weights in Keras
order and the optimizer's state. It is written to a temporary file beside the target, then
renamed over it, so an interrupted save never leaves a broken file behind.

Keras's arguments of the same calls: ``save(path, overwrite=True, zipped=None,
include_optimizer=True)``, ``load_model(path, custom_objects=None, compile=True,
safe_mode=True)``, ``save_weights(path, overwrite=True, max_shard_size=None)`` and
``load_weights(path, skip_mismatch=False)`` (see each function below for what tinynet does with
them).
"""
import inspect
import json
import math
import os
import secrets
import struct
import warnings
import zipfile
import zlib

import numpy as np

from . import backend
from . import layers as layers_mod
from . import losses as losses_mod
from . import optimizers as optimizers_mod
from .graph import topological_order
from . import schedules as schedules_mod
from .names import unknown_argument
from .schedules import UnknownScheduleError

FORMAT = "tinynet-model"
VERSION = 1


class ModelFileError(ValueError):
    """A file that is not a loadable tinynet model (truncated, corrupted, unknown version, ...)."""


def model_architecture(model):
    """The model's architecture as saved in its file, or a ValueError naming the layer that a
    tinynet model file cannot hold."""
    for layer in model.graph.order:
        if getattr(layers_mod, type(layer).__name__, None) is type(layer):
            continue  # one of tinynet's layers: rebuilt from its name and config
        kind = getattr(layer, "kind", None)
        namesake = isinstance(getattr(layers_mod, type(layer).__name__, None), type)
        why = ("a model used as a layer is not supported yet); save the inner model, or" if kind
               else f"its class {type(layer).__module__}.{type(layer).__qualname__} is not one "
               "of tinynet's layers, and a model file holds only their names"
               + (": it would load as tinynet's);" if namesake else ");"))
        raise ValueError(f"model '{model.name}': layer '{layer.name}' "
                         f"({kind or type(layer).__name__}) cannot be saved in a tinynet model "
                         f"file ({why} save the weights with save_weights and load them into the "
                         "model built again in code")
    return {
        "class": type(model).__name__,
        "name": model.name,
        "layers": [{"class": type(layer).__name__, "config": {
                        **layer.get_config(), **({} if layer.trainable else {"trainable": False})},
                    "inbound": [t.layer.name for t in layer.inbound]} for layer in model.graph.order],
        **({} if model.trainable else {"trainable": False}),
        "output": model.graph.output.name,
        **({"keys": dict(model._keys)} if getattr(model, "_keys", None) else {}),
    }


TMP_SUFFIX = ".tinynet.tmp"


def _process_alive(pid):
    """Whether process ``pid`` runs (POSIX); elsewhere always True, so nothing is removed."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


def _require_folder(path, directory):
    """Refuse, with the fix, a file ``path`` whose folder ``directory`` (its absolute path) is not
    there (os.listdir's error named the folder as if it were the file), as Keras does for a
    ``.keras`` file: FileNotFoundError; NotADirectoryError where a file stands in its way."""
    if os.path.isdir(directory):
        return
    above = directory
    while not os.path.exists(above):
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise NotADirectoryError(f"cannot write {path!r}: {above!r} is a file, not a folder")
    folder = os.path.dirname(path)
    raise FileNotFoundError(f"cannot write {path!r}: the folder {folder!r} does not exist; make "
                            f"it first (os.makedirs({folder!r}, exist_ok=True)), as Keras also "
                            "asks")


def _temporary_file(path):
    """Open the file a save writes before renaming it onto ``path``:
    ``.<name>.<pid>.<random>.tinynet.tmp`` in the same directory (a rename is atomic only within
    one file system). Such files of the same target left by processes that no longer run (killed
    in the middle of a save) are removed first; those of running processes are left alone."""
    directory, name = os.path.split(os.path.abspath(path))
    _require_folder(os.fspath(path), directory)
    prefix = f".{name}."
    try:
        entries = os.listdir(directory)
    except OSError as e:
        raise _cannot_write(path, directory, e) from None
    for entry in entries:
        if entry.startswith(prefix) and entry.endswith(TMP_SUFFIX):
            pid = entry[len(prefix):].split(".", 1)[0]
            if pid.isdigit() and not _process_alive(int(pid)):
                try:
                    os.remove(os.path.join(directory, entry))
                except OSError:
                    pass
    while True:
        tmp = os.path.join(directory, f"{prefix}{os.getpid()}.{secrets.token_hex(6)}{TMP_SUFFIX}")
        try:
            # mode 0666: the system applies the umask, as to any new file (mkstemp's 0600 made
            # saved models readable by their owner alone)
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                           0o666), tmp
        except FileExistsError:  # the same random name: draw again
            continue
        except OSError as e:  # its message named the temporary file, not the user's
            raise _cannot_write(path, directory, e) from None


def _cannot_write(path, directory, error):
    """The error (of ``error``'s type) for a file ``path`` that cannot be written in
    ``directory``, naming the path the user gave."""
    reason = error.strerror or str(error)
    fresh = type(error)(f"cannot write {os.fspath(path)!r}: {reason} in the folder "
                        f"{directory!r} (a save writes a new file there, then renames it onto "
                        "the name given); save into a folder you can write in")
    fresh.errno = error.errno
    return fresh


def write_atomic(path, write):
    """Write the file ``path`` so that it is either complete or not there: ``write(f)`` fills a
    temporary file beside it (see :func:`_temporary_file`), which is flushed to disk and then
    renamed onto ``path`` (``os.replace``, atomic). A process killed at any moment leaves the
    previous ``path`` intact; an exception removes the temporary file and propagates."""
    fd, tmp = _temporary_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(path):  # the file saved over keeps its permissions
            os.chmod(tmp, os.stat(path).st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# what reading a damaged or foreign file as a zip archive (an .npz) may raise
UNREADABLE = (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError, zlib.error,
              struct.error, KeyError)
EXTENSIONS = (".keras", ".h5", ".hdf5", ".npz")  # Keras's two (it refuses others), and .npz


def as_path(path, where):
    """``path`` (a str or an ``os.PathLike`` such as ``pathlib.Path``) as a str, else a TypeError
    that says so (``os.fspath``'s named neither the function nor the argument)."""
    try:
        text = os.fspath(path)
    except TypeError:
        text = None
    if not isinstance(text, str):
        raise TypeError(f"{where}: the path must be a str or an os.PathLike (pathlib.Path), like "
                        f"'model.keras'; got {path!r} ({type(path).__name__})") from None
    return text


def check_model_path(path, where="model.save"):
    """Refuse a model file name without one of :data:`EXTENSIONS`, as Keras 3 refuses one
    without ``.keras`` or ``.h5`` (``model.save("my_model")``)."""
    path = as_path(path, where)
    if not path.lower().endswith(EXTENSIONS):
        raise ValueError(f"{where}({path!r}): the file name needs one of the extensions "
                         f"{', '.join(EXTENSIONS)}, as Keras needs .keras or .h5: for example "
                         f"{where}({path + '.keras'!r}). (tinynet writes its own format under "
                         "each of them; Keras does not read it)")
    return path


def keras_file(path):
    """What a Keras file at ``path`` is, in words, when it is one (else ``None``): Keras 3's
    ``.keras`` (a zip archive holding ``config.json``) or an HDF5 file (its ``.h5`` models and
    ``.weights.h5`` weights). tinynet reads neither; the messages say how to convert them."""
    try:
        with open(path, "rb") as f:
            if f.read(8) == b"\x89HDF\r\n\x1a\n":
                return "an HDF5 file, as Keras writes with model.save('....h5') or save_weights"
        with zipfile.ZipFile(path) as archive:
            if "config.json" in archive.namelist():
                return "a Keras model file (Keras 3's .keras archive)"
    except UNREADABLE:  # not a zip archive, a damaged one, a directory: not a Keras file either
        pass
    return None


def _refuse_keras_file(path, what):
    """Raise :class:`ModelFileError` for a Keras file given where tinynet's ``what`` is read."""
    kind = keras_file(path)
    if kind is None:
        return
    if what == "model":
        fix = (f"load it with Keras and convert it: tinynet.interop.from_keras(keras.models."
               f"load_model({path!r})) is the same model with its weights (compile it to train it)")
    else:
        fix = (f"load it into the same model in Keras, keras_model.load_weights({path!r}), and "
               "copy the weights (the layouts are Keras's): model.set_weights(keras_model."
               "get_weights()), or convert it with tinynet.interop.from_keras(keras_model)")
    writer = "model.save" if what == "model" else "model.save_weights"
    raise ModelFileError(f"{path} is {kind}, not a tinynet {what} file: tinynet reads only the "
                         f"files its own {writer} writes. To use it, {fix}")


def _check_flag(value, name, where):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be True or False, got {value!r}")
    return bool(value)


def _refuse_existing(path, overwrite, where):
    """Keras's ``overwrite=False``: Keras asks on the terminal whether to replace an existing file;
    tinynet (often run where nobody can answer) refuses, saying how to go on."""
    if not _check_flag(overwrite, "overwrite", where) and os.path.exists(path):
        raise FileExistsError(f"{where}({path!r}, overwrite=False): {path} already exists and "
                              "overwrite=False keeps it; remove it or choose another name, or "
                              "pass overwrite=True (the default) to replace it")


def _refuse_unknown(kwargs, where, accepted):
    if kwargs:
        name = next(iter(kwargs))
        raise unknown_argument(where, name, f"{where} takes {', '.join(accepted)}")


SAVE_ARGS = ("path", "overwrite=True", "zipped=None", "include_optimizer=True")


def save_model(model, path, overwrite=True, zipped=None, include_optimizer=True, **kwargs):
    """Write ``model`` to one file at ``path`` (see the module's docstring), with Keras's
    ``model.save`` arguments:

    * ``overwrite=False``: an existing file at ``path`` is kept and :class:`FileExistsError`
      raised (Keras asks on the terminal instead);
    * ``zipped``: ``None`` or ``True`` (tinynet's file is one archive); ``False`` (Keras's
      unzipped directory) is refused;
    * ``include_optimizer=False``: the file holds the architecture, the weights and the epoch
      counter without the compile settings and the optimizer's state, as Keras's ``.h5`` files
      saved so: ``load_model`` returns the model uncompiled;
    * ``save_format`` (deprecated in Keras 3, which warns when the file name has an extension) is
      ignored with a warning: the file is tinynet's own format whatever its name.
    """
    where = "model.save"
    if "save_format" in kwargs:
        fmt = kwargs.pop("save_format")
        if fmt:
            warnings.warn(f"{where}: save_format={fmt!r} is ignored (deprecated in Keras 3, "
                          "where the file's extension decides); tinynet writes its own format "
                          "whatever the extension", UserWarning, stacklevel=3)
    _refuse_unknown(kwargs, where, SAVE_ARGS)
    if zipped is not None and not _check_flag(zipped, "zipped", where):
        raise ValueError(f"{where}: zipped=False (Keras's unzipped directory) is not implemented "
                         "in tinynet, which writes one file; leave zipped out")
    include_optimizer = _check_flag(include_optimizer, "include_optimizer", where)
    path = check_model_path(path)
    _refuse_existing(path, overwrite, where)
    model._require_built("the architecture to save")
    names = [layer.name for layer in model.graph.order]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # a layer renamed after the model was made: the file could not be loaded
        raise ValueError(f"{where}: model '{model.name}' has several layers named {twice}; the "
                         "file keys the layers by name: rename them apart before saving")
    header = {"format": FORMAT, "version": VERSION, "architecture": model_architecture(model),
              "dtype": model.dtype.name, "epoch": model.epoch, "compile": None}
    arrays = {}
    for i, w in enumerate(model.get_weights()):
        arrays[f"weight_{i}"] = w
    if model.optimizer is not None and include_optimizer:
        check_restorable(model, where)
        state = model.optimizer.get_state(model.params)
        header["compile"] = {"optimizer": model.optimizer.get_config(),
                             "loss": model.loss.get_config(), "metrics": model.metrics,
                             "metric_kinds": model.metric_kinds,
                             "iterations": state["iterations"], "slots": []}
        for i, slots in enumerate(state["slots"]):
            present = []
            for j, a in enumerate(slots):
                if a is not None:
                    arrays[f"slot_{i}_{j}"] = a
                    present.append(j)
            header["compile"]["slots"].append(present)
    arrays["header"] = _header_bytes(header)
    write_atomic(path, lambda f: np.savez(f, **arrays))


def check_restorable(model, where=None):
    """The refusals of :func:`_check_restorable` for a compiled model's loss and optimizer
    (``where`` starts the message)."""
    _check_restorable(model.loss, losses_mod.CLASSES, "loss", "get_config", where)
    _check_restorable(model.optimizer, optimizers_mod.CLASSES, "optimizer", "_own_config", where)
    _check_schedule(model.optimizer, where)


def _check_schedule(optimizer, where):
    """A learning-rate schedule of one's own is saved as its class's name and ``get_config()``:
    rebuild it so, as ``load_model(custom_objects=)`` will, and refuse to save one whose rates
    then differ (a ``get_config`` that leaves out an argument: a rate 100 times larger after the
    load, without a word). Compared at the optimizer's step and a few later ones."""
    schedule = getattr(optimizer, "_schedule", None)
    cls = type(schedule)
    if schedule is None or schedules_mod.SCHEDULES.get(cls.__name__) is cls:
        return
    at = f"{where}: " if where else ""
    own = f"the learning-rate schedule {cls.__module__}.{cls.__qualname__}"
    if schedules_mod.SCHEDULES.get(cls.__name__) is not None:  # tinynet's name, another class
        raise ValueError(f"{at}{own} has the name of tinynet's {cls.__name__}, and a model file "
                         "names the schedule's class only: it would load as tinynet's; give "
                         "your class another name")
    try:
        saved = json.loads(json.dumps(schedules_mod.serialize(schedule), default=_json_value))
        rebuilt = schedules_mod.deserialize(saved, {cls.__name__: cls})
    except Exception as e:  # noqa: BLE001  (anything its get_config or __init__ may raise)
        raise ValueError(f"{at}{own} cannot be rebuilt from its get_config() ({type(e).__name__}: "
                         f"{e}); its __init__ must take every key get_config() returns") from None
    rates, now = [], optimizer.iterations
    steps = dict.fromkeys([now + k for k in (0, 1, 10, 100, 1000, 10000)] + [0, now // 2])
    for t in steps:  # (a schedule over the planned steps only gives values below ``now``)
        try:
            rate = float(schedule(t))
        except Exception:  # noqa: BLE001  (a schedule may be defined over the planned steps only)
            continue
        try:
            again = float(rebuilt(t))
        except Exception as e:  # noqa: BLE001
            again = f"{type(e).__name__}: {e}"
        rates.append((t, rate, again))
    for t, rate, again in rates:
        if rate != again and not (isinstance(again, float) and math.isnan(rate)
                                  and math.isnan(again)):
            raise ValueError(f"{at}{own} would load changed: at step {t} it gives {rate!r}, "
                             f"rebuilt from its get_config() ({saved['config']}) {again!r}; its "
                             "get_config() must return every argument of its __init__")


def _check_restorable(obj, builtin, kind, config_method, where):
    """A loss or optimizer of one's own is saved by its class's name and its configuration:
    rebuild it from them as ``load_model(custom_objects=)`` will, and refuse to save one that
    comes back otherwise (a class named like one of tinynet's, an argument its configuration
    leaves out, a configuration its constructor cannot take, a state ``slot_names`` does not
    list) rather than let it load changed, or not at all."""
    cls = type(obj)
    if cls in builtin:
        return
    own = f"the {kind} {cls.__module__}.{cls.__qualname__}"
    at = f"{where}: " if where else ""
    if cls.__name__ in {c.__name__ for c in builtin}:
        raise ValueError(f"{at}{own} has the name of tinynet's {cls.__name__}, and a model file "
                         f"names the {kind}'s class only: it would load as tinynet's; give your "
                         "class another name")
    config = _as_json(obj.get_config())
    arguments = {n: getattr(obj, n) for n in _own_arguments(cls) if hasattr(obj, n)}
    try:
        key = (cls, json.dumps([config, arguments], sort_keys=True, default=_json_value))
    except TypeError:
        key = (cls, json.dumps(config, sort_keys=True), id(obj))
    if key not in _REBUILT:  # once per class, configuration and arguments (a checkpoint saves
        if len(_REBUILT) > 256:  # every epoch)
            _REBUILT.clear()
        _REBUILT[key] = _rebuilt_differently(obj, kind, config, config_method)
    if _REBUILT[key]:
        raise ValueError(f"{at}{own} {_REBUILT[key]}")
    if kind == "optimizer":
        held = sorted({name for state in obj._slots for name in state} - set(obj.slot_names()))
        if held:
            raise ValueError(f"{at}{own} keeps the state {held} that its slot_names() does not "
                             "list, so the saved model would restart it from zero; write "
                             f"slot_names() returning {tuple(held)}")


_REBUILT = {}  # (class, its configuration as JSON) -> what rebuilding it showed ("": nothing)


def _as_json(value):
    """``value`` as it comes back from the file's JSON (tuples as lists, NumPy numbers as floats)."""
    return json.loads(json.dumps(value, default=_json_value))


def _rebuilt_differently(obj, kind, config, config_method):
    """Rebuild ``obj`` from its configuration, as ``load_model(custom_objects=)`` does, and say
    what would come back otherwise ("" when it comes back the same): the rebuild fails, its
    configuration changes, or an argument of its own constructor is not the one it was given."""
    cls = type(obj)
    rebuild = losses_mod.from_config if kind == "loss" else optimizers_mod.from_config
    own = {cls.__name__: cls}
    schedule = getattr(obj, "_schedule", None)
    if schedule is not None:  # a schedule of one's own is given to load_model the same way
        own[type(schedule).__name__] = type(schedule)

    def how(names=()):
        entries = ", ".join(f"{n!r}: self.{n}" for n in names) or "'<argument>': self.<argument>"
        base = "get_config" if config_method == "get_config" else "_own_config"
        return (f"make sure its {config_method}() returns its constructor's own arguments "
                f"({{**super().{base}(), {entries}}}) and its __init__ takes every key of its "
                "get_config()")

    try:
        again = rebuild(_as_json(config), own)
    except Exception as e:  # noqa: BLE001 - any failure here is a failure of load_model later
        return (f"cannot be rebuilt from its get_config() ({type(e).__name__}: {e}), as "
                f"load_model would; {how()}")
    changed = [n for n in _own_arguments(cls) if hasattr(obj, n)
               and not _same(getattr(obj, n), getattr(again, n, None))]
    if changed:
        return ("would not load as it is (" + ", ".join(
            f"{n}={getattr(obj, n)!r} would load as {getattr(again, n, None)!r}" for n in changed)
            + f"); {how(changed)}")
    if _as_json(again.get_config()) != config:
        return f"comes back with another get_config() when rebuilt; {how()}"
    return ""


def _own_arguments(cls):
    """The named arguments of the constructor ``cls`` runs that tinynet's own class below it does
    not take (an attribute of the same name, when the object has one, is compared with the
    rebuilt object's; tinynet's arguments are its get_config's, and a scheduled learning rate
    moves with the steps)."""
    def named(k):
        return {p.name for p in inspect.signature(k.__init__).parameters.values()
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"}
    init = next(k for k in cls.__mro__ if "__init__" in vars(k))
    tinynets = next(k for k in cls.__mro__ if k.__module__.startswith("tinynet.")
                    and "__init__" in vars(k))
    return sorted(named(init) - named(tinynets) - {"lr"})


def _same(a, b):
    """Whether two attribute values are the same once saved (NaN equals NaN; arrays, objects and
    numbers of another kind are compared as JSON would keep them; what JSON cannot hold counts
    as the same: it is not compared)."""
    try:
        a, b = _as_json(a), _as_json(b)
    except TypeError:
        return True
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


def _json_value(value):
    """NumPy numbers and arrays in a configuration (``ExponentialDecay(np.float32(0.1), ...)``) as
    the Python numbers and lists JSON holds; anything else cannot be saved: say what."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot save {value!r} ({type(value).__name__}) in the model file: a "
                    "configuration (a layer's, a loss's, an optimizer's or its learning-rate "
                    "schedule's get_config()) must hold numbers, strings, lists and dicts")


def _header_bytes(header):
    """The file's header: JSON, as a byte array."""
    return np.frombuffer(json.dumps(header, default=_json_value).encode(), dtype=np.uint8)


def load_model(path, classes, custom_objects=None, compile=True, safe_mode=True):
    """Rebuild the model saved at ``path``, with its weights, compile settings and optimizer state,
    in the float type it was saved in; ``classes`` maps "Model"/"Sequential" to their classes
    (``tinynet.load_model`` gives them: this module does not import the model's).

    Keras's arguments: ``compile=False`` returns the model uncompiled (architecture, weights and
    epoch counter; the compile settings and the optimizer's state in the file are not read), as
    Keras does. ``custom_objects`` (a dict, or ``None``) gives the classes of one's own that the
    file names by name: in tinynet, a loss, an optimizer or a learning-rate schedule written as a
    subclass of ``Loss``, ``Optimizer`` or ``LearningRateSchedule`` (``{"MySchedule":
    MySchedule}``), as in Keras (layers of one's own are not saved in model files). ``safe_mode`` is
    accepted and changes nothing: a tinynet file holds no code (it is read with
    ``allow_pickle=False``).

    Loading draws no random number from tinynet's generator (the layers' initial weights, which
    the saved ones replace, come from a generator of their own), so the numbers drawn after a
    load are those that would have been drawn without it.

    Anything that is not a complete, readable tinynet model file raises :class:`ModelFileError`
    naming the file and the problem; a model is returned only when everything loaded.
    """
    compile = _check_flag(compile, "compile", "load_model")
    _check_flag(safe_mode, "safe_mode", "load_model")
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError("load_model: custom_objects must be a dict (name -> class or function) "
                        f"or None, got {type(custom_objects).__name__}")
    path = as_path(path, "load_model")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at {path}")
    _refuse_keras_file(path, "model")
    try:
        with open(path, "rb") as f:  # closed here: NumPy leaves a file it fails to read open
            data = np.load(f, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ModelFileError(f"{path} is not a readable tinynet model file (it holds a "
                                     "single NumPy array)")
            with data:
                arrays = {k: data[k] for k in data.files}
    except ModelFileError:
        raise
    except UNREADABLE as e:
        raise ModelFileError(f"{path} is not a readable tinynet model file "
                             f"({_unreadable(e)})") from None
    if "header" not in arrays:
        raise ModelFileError(f"{path} is an .npz file but not a tinynet model (no header)")
    try:
        header = json.loads(arrays["header"].tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{path}: the model header is corrupted ({e})") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: the model header is not a JSON object")
    if header.get("format") == FORMAT + "-weights":
        raise ModelFileError(f"{path} holds weights alone (model.save_weights wrote it), not a "
                             "model: build the model, then model.load_weights(path); "
                             "model.save(path) writes a file load_model reads")
    if header.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a tinynet model file")
    version = header.get("version")
    if not isinstance(version, int):
        raise ModelFileError(f"{path}: the format version {version!r} is not a number")
    if version > VERSION:
        raise ModelFileError(f"{path} was written by a newer tinynet (format version "
                             f"{version}; this one reads up to {VERSION}): upgrade tinynet")
    try:
        with backend.floatx_scope(header.get("dtype", "float32")), \
                backend.generator(np.random.default_rng(0)):
            return _rebuild(header, arrays, classes, compile, custom_objects)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise ModelFileError(f"{path}: the model description is invalid ({type(e).__name__}: "
                             f"{e})") from None


def _rebuild(header, arrays, classes, compile=True, custom_objects=None):
    Model, Sequential = classes["Model"], classes["Sequential"]
    arch = header["architecture"]
    built = {}
    for spec in arch["layers"]:
        cls = getattr(layers_mod, spec["class"], None)
        if not isinstance(cls, type) or not issubclass(cls, layers_mod.Layer):
            raise ModelFileError(f"unknown layer class {spec['class']!r}")
        config = dict(spec["config"])
        if spec["class"] == "InputLayer":
            built[config["name"]] = layers_mod.Input(tuple(config["shape"]), name=config["name"])
            continue
        layer = cls(**config)
        ins = [built[n] for n in spec["inbound"]]
        built[config["name"]] = layer(ins if len(ins) > 1 else ins[0])
    inputs = [t for t in built.values() if isinstance(t.layer, layers_mod.InputLayer)]
    outputs = built[arch["output"]]
    if arch["class"] == "Sequential":
        model = Sequential(name=arch["name"])
        model._input_tensor = inputs[0]
        model._stack = [t.layer for t in built.values() if t is not inputs[0]]
        model._set_graph(inputs[0], outputs)
    else:
        model = Model(inputs[0], outputs, name=arch["name"])
    model._keys = {k: str(v) for k, v in (arch.get("keys") or {}).items()
                   if k in ("input", "output")}  # Model({key: input}, {key: output})'s keys
    if arch.get("trainable") is False:  # frozen as a whole: its layers keep their own flags
        model._trainable = False
    # the file lists its layers, and their weights, in the order of the model that wrote it
    in_file = [built[spec["config"]["name"]].layer for spec in arch["layers"]]
    n_weights = sum(len(layer.params) for layer in in_file)
    for i in range(n_weights):
        if f"weight_{i}" not in arrays:
            raise ModelFileError(f"weight 'weight_{i}' is missing")
    start = 0
    for layer in in_file:
        layer.set_weights([arrays[f"weight_{i}"] for i in range(start, start + len(layer.params))])
        start += len(layer.params)
    model.epoch = int(header.get("epoch", 0))
    comp = header.get("compile") if compile else None
    if comp:
        loss = comp["loss"]
        if isinstance(loss, str):  # files of format version 1 before the loss's config was kept
            loss = {"class": "CategoricalCrossentropy", "from_logits": comp.get("from_logits", False)}
        own = custom_objects or {}
        given = [k for k, v in own.items() if not isinstance(v, type)]
        if given:
            raise ModelFileError(f"custom_objects maps names to classes; {given[0]!r} maps to "
                                 f"an object of {type(own[given[0]]).__name__}: give its class")
        for kind, name, known in (
                ("loss", loss.get("class"), {c.__name__ for c in losses_mod.CLASSES}),
                ("optimizer", comp["optimizer"].get("class"),
                 {c.__name__ for c in optimizers_mod.OPTIMIZERS.values()})):
            if name not in known and name not in own:  # the file is fine: a class is missing
                raise ModelFileError(f"the model was compiled with a {kind} of its own, {name!r}; "
                                     f"pass load_model(..., custom_objects={{{name!r}: its class}}"
                                     "), or load it with compile=False (without its compile "
                                     "settings and optimizer state)")
        try:
            optimizer = optimizers_mod.from_config(comp["optimizer"], custom_objects)
            loss = losses_mod.from_config(loss, custom_objects)
        except UnknownScheduleError as e:  # the file is fine: a class of one's own is missing
            raise ModelFileError(f"the model was compiled with a learning-rate schedule of its "
                                 f"own ({e}); pass load_model(..., custom_objects=...)") from None
        except TypeError as e:  # a class given in custom_objects that does not fit its config
            raise ModelFileError(f"a class given in custom_objects does not take what the file "
                                 f"saved from its get_config() ({e}); its __init__ must take "
                                 "every key its get_config() returns") from None
        model.compile(optimizer, loss)
        model.metrics = list(comp["metrics"])
        model.metric_kinds = dict(comp.get("metric_kinds") or
                                  {m: model._metric_kind(m) for m in model.metrics})
        names = model.optimizer.slot_names()
        params = [p for layer in in_file for p in layer.params]  # the file's order
        if len(comp["slots"]) != len(params):
            raise ModelFileError(f"optimizer state for {len(comp['slots'])} parameters, the model "
                                 f"has {len(params)}")
        slots = []
        for i, present in enumerate(comp["slots"]):
            row = [None] * len(names)
            for j in present:
                key = f"slot_{i}_{j}"
                if key not in arrays:
                    raise ModelFileError(f"optimizer slot '{key}' is missing")
                a = arrays[key]
                if a.shape != tuple(params[i].shape):
                    raise ModelFileError(f"optimizer slot '{key}' ({names[j]}) has shape {a.shape}, "
                                         f"its parameter {tuple(params[i].shape)}")
                row[j] = a
            slots.append(row)
        position = {id(p): k for k, p in enumerate(params)}  # in the file, by parameter
        slots = [slots[position[id(p)]] for p in model.params]
        model.optimizer.set_state(model.params, {"iterations": comp["iterations"], "slots": slots})
    return model


def save_weights(weights, path, overwrite=True, max_shard_size=None, optimizer_state=None):
    """Write a list of weight arrays (Keras order: ``model.get_weights()``) to one ``.npz`` file,
    atomically. The arrays are placed back by their order (:func:`load_weights_into`), as Keras's
    ``load_weights`` does, so a model built again (its layers named anew) loads them. As Keras 3's
    weights files, it also holds the optimizer's state when there is one (``optimizer_state``, from
    :func:`optimizer_state`), which ``load_weights`` puts back where Keras does.

    Keras's arguments: ``overwrite=False`` keeps an existing file and raises
    :class:`FileExistsError` (Keras asks on the terminal); ``max_shard_size`` (Keras's weights
    split over several files) is not implemented: only ``None``."""
    if max_shard_size is not None:
        raise ValueError(f"model.save_weights: max_shard_size={max_shard_size!r} (weights split "
                         "over several files) is not implemented in tinynet, which writes one "
                         "file; leave max_shard_size out")
    path = as_path(path, "model.save_weights")
    _refuse_existing(path, overwrite, "model.save_weights")
    arrays = {f"weight_{i}": np.asarray(w) for i, w in enumerate(weights)}
    header = {"format": FORMAT + "-weights", "version": VERSION, "count": len(weights),
              "order": "keras", "optimizer": None}
    if optimizer_state is not None:
        header["optimizer"] = {k: v for k, v in optimizer_state.items()
                               if k not in ("slots", "held")}
        header["optimizer"]["present"] = []
        for i, row in enumerate(optimizer_state["slots"]):
            header["optimizer"]["present"].append([j for j, a in enumerate(row) if a is not None])
            arrays.update({f"optimizer_{i}_{j}": a for j, a in enumerate(row) if a is not None})
    arrays["header"] = _header_bytes(header)
    write_atomic(path, lambda f: np.savez(f, **arrays))


def load_weights(path):
    """The list of weight arrays written by :func:`save_weights`."""
    return _read_weights(path)[0]


def optimizer_state(model):
    """What a weights file keeps of ``model.optimizer`` (None without one): its class, step count,
    learning rate (None for a schedule, which its step count sets), slot names and, for each weight
    of ``model.params`` (Keras's order, that of ``get_weights``), its slots (None where it has none
    yet) and the names of those it holds (an optimizer of one's own may hold some that
    ``slot_names`` does not list)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    state = optimizer.get_state(model.params)
    held = [sorted(optimizer._slots[i]) if i < len(optimizer._slots) else []
            for i in range(len(model.params))]
    rate = None if optimizer._schedule is not None else float(optimizer.learning_rate)
    return {"class": type(optimizer).__name__, "iterations": int(state["iterations"]),
            "learning_rate": rate, "slot_names": list(optimizer.slot_names()),
            "slots": state["slots"], "held": held}


def _model_file_optimizer_state(model, header, data):
    """The optimizer state of a whole model's file (``data``, its arrays; ``model``, the model it
    holds, rebuilt without compiling) in :func:`optimizer_state`'s form, read from the file
    without building its optimizer (a class of one's own needs no ``custom_objects`` here): its
    slots by index, named later by the loading model's optimizer if it is of the same class."""
    comp = header.get("compile")
    named = {layer.name: layer for layer in model.graph.order}
    try:  # the file's slots follow its architecture's layers, as load_model reads them
        params = [p for spec in header["architecture"]["layers"]
                  for p in named[spec["config"]["name"]].params]
    except KeyError:
        return None
    if not comp or len(comp.get("slots", ())) != len(params):
        return None
    missing = [f"slot_{i}_{j}" for i, present in enumerate(comp["slots"]) for j in present
               if f"slot_{i}_{j}" not in data.files]
    if missing:  # as load_model says it
        raise ModelFileError(f"optimizer slot '{missing[0]}' is missing: the file is damaged")
    by_id = {id(p): {j: data[f"slot_{i}_{j}"] for j in present}
             for i, (p, present) in enumerate(zip(params, comp["slots"]))}
    config = comp.get("optimizer") or {}
    rate = config.get("learning_rate")
    rate = float(rate) if isinstance(rate, (int, float)) and not isinstance(rate, bool) else None
    return {"class": config.get("class"), "iterations": int(comp.get("iterations", 0)),
            "learning_rate": rate, "slot_names": None,
            "by_index": [by_id[id(p)] for p in model.params]}


def _has_stepped(state):
    rows = state["by_index"] if state.get("slot_names") is None else state["slots"]
    return state["iterations"] > 0 or any(
        (row if isinstance(row, dict) else [a for a in row if a is not None]) for row in rows)


def _restore_optimizer_state(model, saved, path, kept_layers):
    """After ``load_weights``: put the file's optimizer state (``saved``, as
    :func:`optimizer_state` gives it, or None) into ``model.optimizer`` where Keras 3 does: both
    optimizers have taken a step (Keras: are built), are of one class, with the same slots for
    every weight (an SGD with momentum and one without are not: Keras compares their numbers of
    variables); warn, as Keras does, where one of them has state and it is not put back."""
    optimizer = getattr(model, "optimizer", None)
    mine = optimizer_state(model)
    if mine is None or (not _has_stepped(mine) and (saved is None or not _has_stepped(saved))):
        return
    if saved is not None and saved.get("slot_names") is None and saved["class"] == mine["class"]:
        names = mine["slot_names"]  # a model file's slots, by index: named as this class names them
        saved = dict(saved, slot_names=names, slots=[[row.get(j) for j in range(len(names))]
                                                     for row in saved["by_index"]])
    if saved is None:
        reason = (f"{os.fspath(path)} holds none (saved from a model never compiled, with "
                  "include_optimizer=False, or by a tinynet before the weights files held it)")
    elif kept_layers:
        reason = "some layers kept their own weights (skip_mismatch)"
    elif not _has_stepped(mine):
        reason = "this model's optimizer has taken no step yet (Keras skips it too)"
    elif not _has_stepped(saved):
        reason = "the file's optimizer had taken no step"
    elif any(set(held) - set(mine["slot_names"]) for held in mine["held"]):
        unlisted = sorted({n for held in mine["held"] for n in held} - set(mine["slot_names"]))
        reason = (f"this model's {mine['class']} keeps the state {unlisted}, which its "
                  "slot_names() does not list, so no file holds it: write slot_names() "
                  f"returning {tuple(unlisted)}")
    elif saved["class"] != mine["class"]:
        reason = f"the file's optimizer is {saved['class']}, this model's {mine['class']}"
    elif saved["slot_names"] != mine["slot_names"]:
        reason = (f"the file's {saved['class']} names its slots {saved['slot_names']}, this "
                  f"one {mine['slot_names']}")
    elif [sorted(n for n, a in zip(saved["slot_names"], row) if a is not None)
          for row in saved["slots"]] != mine["held"]:
        differ = [i for i, (row, held) in enumerate(zip(saved["slots"], mine["held"]))
                  if any(a is not None for a in row) != bool(held)]
        frozen = model._frozen()
        if differ and all(frozen[i] for i in differ):
            reason = ("layers frozen here were not in the file's model (a frozen weight has no "
                      "optimizer state)")
        else:
            reason = (f"the file's {saved['class']} keeps other slots than this one (momentum, "
                      "say, or amsgrad, on one side only)")
    elif (saved.get("learning_rate") is None) != (mine["learning_rate"] is None):
        reason = "one has a learning-rate schedule, the other a fixed rate"
    elif any(a is not None and a.shape != tuple(p.shape)
             for row, p in zip(saved["slots"], model.params) for a in row):
        reason = "its arrays do not fit this model's weights"
    else:
        optimizer.set_state(model.params, {"iterations": saved["iterations"],
                                           "slots": saved["slots"]})
        if saved.get("learning_rate") is not None:
            optimizer.learning_rate = saved["learning_rate"]
        return
    warnings.warn(f"model.load_weights: the weights were loaded, not the optimizer's state: "
                  f"{reason}; the optimizer keeps its own (step {mine['iterations']}). To resume "
                  "training where a model was saved, save and load the whole model "
                  "(model.save, tinynet.models.load_model)", UserWarning, stacklevel=4)


def _read_weights(path, classes=None):
    """``(the weight arrays, the file's header)``, from a weights file or, as Keras 3's
    ``load_weights`` reads a ``.keras`` file, from a whole model's file when ``classes`` (as
    :func:`load_model` takes them) are given: the model it holds is rebuilt (its file lists its
    weights in the order of the model that wrote it, which older files give in tinynet's earlier
    order) and its weights taken in Keras's order."""
    path = as_path(path, "model.load_weights")
    if not os.path.exists(path):  # as load_model says it
        raise FileNotFoundError(f"no weights file at {path}")
    _refuse_keras_file(path, "weights")
    try:
        with open(path, "rb") as f:  # closed here: NumPy leaves a file it fails to read open
            return _weights_in(np.load(f, allow_pickle=False), path, classes)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, AttributeError,
            json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{path} is not a readable tinynet weights file "
                             f"({_unreadable(e)})") from None


def _unreadable(error):
    """What made a file unreadable, for the message. NumPy reads a file that is neither an .npz
    archive nor a .npy array as pickled objects, and with ``allow_pickle=False`` refuses it
    suggesting to load it unsafely: advice to run the code of a file that is no model at all,
    left out."""
    if isinstance(error, ValueError) and "allow_pickle" in str(error):
        return ("it is neither an .npz archive, as tinynet's save writes, nor a NumPy array "
                "file; a damaged file, or another program's")
    return f"{type(error).__name__}: {error}"


def _weights_in(data, path, classes):
    """:func:`_read_weights` of the file ``path``, which NumPy read as ``data``."""
    if not isinstance(data, np.lib.npyio.NpzFile):  # one array (.npy): no context manager
        raise ModelFileError(f"{path} holds a single NumPy array, not a tinynet weights "
                             "file (model.save_weights writes one; to set arrays you hold, "
                             "model.set_weights([...]) in get_weights's order)")
    with data:
        header = json.loads(data["header"].tobytes().decode())
        if header.get("format") == FORMAT:  # a whole model
            if classes is None:
                raise ModelFileError(f"{path} holds a whole model: tinynet.load_model(path) "
                                     "reads it, and model.load_weights(path) its weights")
            model = load_model(path, classes, compile=False)
            # its optimizer's state too, as Keras 3 reads a .keras file's variables
            return model.get_weights(), {"order": "keras", "optimizer_state":
                                         _model_file_optimizer_state(model, header, data)}
        if header.get("format") != FORMAT + "-weights":
            raise ModelFileError(f"{path} is neither a tinynet weights file nor a tinynet "
                                 "model file (write them with model.save_weights or "
                                 "model.save)")
        saved = header.get("optimizer")
        if saved is not None:  # the arrays of its slots, by weight (Keras order)
            saved = dict(saved, slots=[
                [data[f"optimizer_{i}_{j}"] if j in present else None
                 for j in range(len(saved["slot_names"]))]
                for i, present in enumerate(saved["present"])])
        header["optimizer_state"] = saved
        return [data[f"weight_{i}"] for i in range(int(header["count"]))], header


def _layers_in_file_order(model, header):
    """The model's layers with weights, in the order of the file's arrays: ``model.layers``
    (Keras's order) for files that say so, else the order of tinynet's graph walk, in which
    tinynet wrote them before it took Keras's order (the two differ on graphs with branches; a
    chain of layers, a Sequential, has one order). Not reordered: the layers inside a model used
    as a layer, and the files of the few commits that wrote Keras's order without saying so."""
    if header.get("order") == "keras" or model.graph is None:
        order = model.layers
    else:
        order = topological_order(model.graph.output.output, keras_order=False)
    return [layer for layer in order if layer.params]


def load_weights_into(model, path, skip_mismatch=False, classes=None, **kwargs):
    """Read the weights written by ``save_weights``, or those of a model written by ``save`` (as
    Keras 3 reads a ``.keras`` file's), into ``model`` (what ``model.load_weights`` does),
    checking every shape before changing anything: a file that does not fit leaves the model as
    it was and raises ``ValueError`` naming the layer.

    ``skip_mismatch=True`` (Keras's argument): a layer whose arrays in the file have other shapes
    than its own keeps its weights, with a warning naming it and both shapes, and the other layers
    are loaded. The arrays are matched to the layers by their order (``model.layers``; older
    files, in tinynet's earlier order: see :func:`_layers_in_file_order`), so the file must hold as
    many arrays as the model; otherwise nothing can be matched and ``ValueError`` says so.
    """
    _refuse_unknown(kwargs, "model.load_weights", ("path", "skip_mismatch=False"))
    skip_mismatch = _check_flag(skip_mismatch, "skip_mismatch", "model.load_weights")
    weights, header = _read_weights(path, classes)
    layers = _layers_in_file_order(model, header)
    expected = sum(len(layer.params) for layer in layers)
    if len(weights) != expected:
        fix = (" skip_mismatch=True skips layers whose shapes differ but cannot match arrays to "
               "layers when their numbers differ" if skip_mismatch else "")
        raise ValueError(f"model.load_weights: {os.fspath(path)} holds {len(weights)} weight "
                         f"arrays, model '{model.name}' has {expected}: it was saved from "
                         f"another architecture.{fix}")
    chosen, i = [], 0
    for layer in layers:
        k = len(layer.params)
        mine = [tuple(p.shape) for p in layer.params]
        theirs = [tuple(np.shape(w)) for w in weights[i:i + k]]
        if mine == theirs:
            chosen.append((layer, weights[i:i + k]))
        elif skip_mismatch:
            warnings.warn(f"model.load_weights(skip_mismatch=True): layer '{layer.name}' keeps its "
                          f"weights: its arrays have shapes {mine}, those in the file {theirs}",
                          UserWarning, stacklevel=3)
        else:
            raise ValueError(f"model.load_weights: layer '{layer.name}' has weights of shapes "
                             f"{mine}, {os.fspath(path)} holds {theirs} for it; nothing was "
                             "loaded. Load into the architecture the file was saved from, or "
                             "pass skip_mismatch=True to keep this layer's weights and load "
                             "the others")
        i += k
    for layer, arrays in chosen:
        layer.set_weights(arrays)
    _restore_optimizer_state(model, header.get("optimizer_state"), path,
                             kept_layers=len(chosen) < len(layers))
