"""``auditml init [PATH]``: a starter config, every setting at its default with what it means.

The file is the defaults of :class:`~auditml.config.AuditMLConfig` written out section by
section, each setting followed by its description, and each membership attack's settings as a
commented example; ``auditml train --config PATH`` accepts it as it is (the digits dataset needs
no download). It is only ever written to a new file: an existing one is refused, whoever wrote
it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from auditml.config import AuditMLConfig
from auditml.data import DATASETS
from auditml.errors import ConfigError
from auditml.fileio import check_writable

DEFAULT_PATH = Path("auditml.yaml")
_INDENT = "  "
# Settings whose field has no description of its own.
_NOTES = {"experiment_name": "the run is written to <output_dir>/<experiment_name>/",
          "dataset": f"one of {', '.join(DATASETS.available())}; digits needs no download"}


def starter_yaml(experiment_name: str = "my_experiment") -> str:
    """The starter config's text (module docstring)."""
    from auditml.audit.plan import plan_audit

    config = AuditMLConfig(experiment_name=experiment_name)
    lines = [
        "# auditml config: every setting at its default (auditml init). Change what you need and",
        "# delete the rest; `auditml show-config --config FILE` prints the settings in force.",
        "# Train: auditml train --config FILE; audit: auditml audit --config FILE.",
    ]
    lines += _section(config, 0)
    lines.append(f"{_INDENT}# Each attack's settings go under its name; their defaults:")
    for attack in plan_audit(["all"], None).attacks:
        lines.append(f"{_INDENT}# {attack.name}: {_flow(attack.settings())}")
    return "\n".join(lines) + "\n"


def _section(model: BaseModel, depth: int) -> list[str]:
    lines = []
    indent = _INDENT * depth
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        note = field.description or _NOTES.get(name)
        comment = f"  # {note}" if note else ""
        if isinstance(value, BaseModel):
            lines.append(f"{indent}{name}:{comment}")
            lines += _section(value, depth + 1)
        else:
            shown = value.as_posix() if isinstance(value, Path) else value
            lines.append(f"{indent}{name}: {_flow(shown)}{comment}")
    return lines


def _flow(value: Any) -> str:
    """``value`` as one line of YAML (``null``, ``1.0e-05``, ``[mia_threshold]``, ``{a: 1}``)."""
    listed = yaml.safe_dump([value], default_flow_style=True, sort_keys=False, width=10**6)
    return listed.strip()[1:-1]


def write_starter_config(path: str | Path = DEFAULT_PATH) -> Path:
    """Write the starter config to ``path`` (a new file) and return it; its experiment name is
    the file's stem when that is a valid name. An existing ``path`` is refused."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        raise ConfigError(f"{path} already exists; auditml init writes only a new file: choose "
                          "another path (auditml init PATH) or move that file away")
    check_writable(path, "config file")
    try:
        text = starter_yaml(path.stem)
    except ValidationError:  # a stem that is no experiment name (".hidden", "a b")
        text = starter_yaml()
    try:
        with path.open("x", encoding="utf-8") as file:  # "x": never over a file made meanwhile
            file.write(text)
    except FileExistsError:
        raise ConfigError(f"{path} already exists; choose another path") from None
    return path
