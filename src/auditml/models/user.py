"""A model of the user's own: ``model.arch: module.path:factory`` (issue 25).

The factory has the signature of the registered ones (:data:`auditml.models.ModelFactory`):
``factory(input_shape, num_classes) -> nn.Module``. auditml **imports and runs that code**, as
Python does for a script: the module is looked up in the current directory, then in the
directory of the config file (``config_dir``), then among the installed packages.

A module found only beside the config stays importable for the rest of the process: its
directory is appended to ``sys.path`` (after the installed packages, so it shadows nothing), and
the process pool's spawned workers, which copy ``sys.path``, build reference models with the same
factory. A local Ray adds the current directory to its workers' path; on a cluster, install the
module on the workers. The run records the module's file and SHA-256 (:func:`model_source`).

Each way the reference can fail is one :class:`~auditml.errors.ConfigError` line naming
``model.arch`` and what to do; the factory's own result (an ``nn.Module`` with outputs of
shape ``(batch, num_classes)``) is checked by :func:`auditml.models.build_model`.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from auditml.config_errors import cut
from auditml.errors import ConfigError

SEPARATOR = ":"


def is_reference(arch: str) -> bool:
    """Whether ``arch`` names a factory in a module (``module.path:factory``), not a registered
    architecture (registered names have no colon)."""
    return SEPARATOR in arch


def parse_reference(arch: str) -> tuple[str, str]:
    """``module.path:factory`` split in two, or ``ValueError`` saying what the syntax is."""
    module, _, attribute = arch.partition(SEPARATOR)
    parts = module.split(".") if module else []
    if (
        arch.count(SEPARATOR) != 1
        or not parts
        or not all(part.isidentifier() for part in parts)
        or not attribute.isidentifier()
    ):
        raise ValueError(
            f"{cut(arch)!r} is not module.path:factory (one colon, Python identifiers on each "
            "side, e.g. my_models:small_cnn); or name a registered architecture"
        )
    return module, attribute


def import_factory(arch: str, config_dir: Path | None = None) -> Callable[..., Any]:
    """The callable ``arch`` (``module.path:factory``) names, imported from the current
    directory, ``config_dir`` or the installed packages."""
    module_name, attribute = parse_reference(arch)
    directories = _search_directories(config_dir)
    with _searched(directories):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is not None and _is_prefix(error.name, module_name):
                where = " or ".join(str(directory) for directory in directories)
                raise ConfigError(
                    f"model.arch={arch!r}: no module {module_name!r} in {where} or the installed "
                    f"packages; put {module_name.split('.')[0]}.py there (or install it), or fix "
                    "the module's name"
                ) from None
            raise _import_failed(arch, module_name, error) from error
        except Exception as error:  # the user's module raised while being imported
            raise _import_failed(arch, module_name, error) from error
    _keep_importable(module, module_name, config_dir)
    factory = getattr(module, attribute, None)
    where = f"module {module_name!r} ({getattr(module, '__file__', None) or 'no file'})"
    if factory is None:
        names = [name for name, value in vars(module).items()
                 if callable(value) and not name.startswith("_")
                 and getattr(value, "__module__", None) == module.__name__]
        known = f"; its functions and classes: {', '.join(sorted(names))}" if names else ""
        raise ConfigError(f"model.arch={arch!r}: {where} has no attribute {attribute!r}{known}")
    if not callable(factory):
        raise ConfigError(
            f"model.arch={arch!r}: {attribute!r} in {where} is of type {type(factory).__name__}, "
            "not a callable factory(input_shape, num_classes) -> nn.Module"
        )
    return factory  # type: ignore[no-any-return]


def model_source(arch: str) -> dict[str, str] | None:
    """Where the factory ``arch`` names was loaded from: ``module``, ``factory``, ``file`` and
    the file's ``sha256``, for the run's record (None for a registered architecture or a module
    without a source file). Call after :func:`import_factory`."""
    if not is_reference(arch):
        return None
    from auditml.fileio import sha256_of_file

    module_name, attribute = parse_reference(arch)
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if module is None or not file:
        return None
    try:
        source = inspect.getsourcefile(module) or file
    except TypeError:
        source = file
    path = Path(source).resolve()
    return {"module": module_name, "factory": attribute, "file": str(path),
            "sha256": sha256_of_file(path)}


def _search_directories(config_dir: Path | None) -> list[Path]:
    directories = [Path.cwd()]
    if config_dir is not None and Path(config_dir).resolve() != directories[0]:
        directories.append(Path(config_dir).resolve())
    return directories


@contextmanager
def _searched(directories: Sequence[Path]) -> Iterator[None]:
    """``directories`` first on ``sys.path`` while the user's module is imported."""
    added = [str(directory) for directory in directories]
    sys.path[:0] = added
    importlib.invalidate_caches()  # a module file written since the last import is found
    try:
        yield
    finally:
        for entry in added:
            if entry in sys.path:
                sys.path.remove(entry)


def _keep_importable(module: Any, module_name: str, config_dir: Path | None) -> None:
    """Append the directory the module came from to ``sys.path`` when it is the config's
    directory, so that spawned workers (which copy ``sys.path``) import it too."""
    if config_dir is None or not getattr(module, "__file__", None):
        return
    file = Path(module.__file__).resolve()
    root = file.parents[module_name.count(".") + (file.name == "__init__.py")]
    if root == Path(config_dir).resolve() and root != Path.cwd() and str(root) not in sys.path:
        sys.path.append(str(root))


def _is_prefix(missing: str, module_name: str) -> bool:
    return module_name == missing or module_name.startswith(missing + ".")


def _import_failed(arch: str, module_name: str, error: BaseException) -> ConfigError:
    return ConfigError(
        f"model.arch={arch!r}: importing {module_name!r} raised {type(error).__name__}: "
        f"{_one_line(error)}; fix the module"
    )


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:199] + "…"
