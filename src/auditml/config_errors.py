"""Config errors as one readable line: what key, what value (cut short), what is allowed.

Pydantic reports problems as structured records; :func:`describe` turns the first into one line
naming the key, the value as given (at most about 60 characters of it) and the rule, with a
did-you-mean for unknown keys. :func:`one_line` is the last guard on every message the CLI
prints: control characters escaped (a key may hold a newline), length capped.
"""

from __future__ import annotations

import difflib
import reprlib
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from auditml.safe_yaml import RefusedYaml

QUOTE_CHARS = 60
MESSAGE_CHARS = 500


class KeyError_(ValueError):
    """A cross-field error that names its own key (pydantic would name the parent)."""

    def __init__(self, key: str, value: Any, message: str) -> None:
        super().__init__(message)
        self.key, self.value, self.message = key, value, message


_QUOTE = reprlib.Repr()  # keyword arguments need Python 3.12
_QUOTE.maxstring = _QUOTE.maxother = 1000  # cut further by quote, keeping the start


def cut(name: str) -> str:
    """A name as an error may quote it (did-you-mean and all)."""
    return name if len(name) <= QUOTE_CHARS else name[:QUOTE_CHARS] + "…"


def quote(value: Any) -> str:
    """``repr(value)`` cut to about 60 characters: an error quotes what was given, not all of it
    (reprlib stops early in large structures)."""
    try:
        text = _QUOTE.repr(value)
    except ValueError:  # an int beyond Python's 4300-digit int -> str limit
        text = f"<an integer of {value.bit_length()} bits>"
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "…"


def one_line(message: str, limit: int = MESSAGE_CHARS) -> str:
    """The message as one printable line (control characters escaped, e.g. a key holding a
    newline), cut to ``limit`` characters as a last guard on its length."""
    text = "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in message
    )
    return text if len(text) <= limit else text[:limit] + "…"


def suggest(key: str, location: tuple[Any, ...], root: type[BaseModel]) -> str:
    """A did-you-mean for an unknown key, from the fields of the section of ``root`` that
    holds it."""
    section = root
    for part in location[:-1]:
        field = section.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        section = annotation
    close = difflib.get_close_matches(key, list(section.model_fields), n=1, cutoff=0.6)
    allowed = ", ".join(section.model_fields)
    return f"did you mean {close[0]!r}? " if close else f"allowed: {allowed}. " if allowed else ""


def describe(error: ValidationError, source: str, root: type[BaseModel]) -> str:
    """One line for every problem pydantic found: the first in full, then the others briefly
    (key and reason), so one run of the command shows all that needs fixing."""
    problems = error.errors()
    line = f"{source}: {_problem(problems[0], root)}"
    others = [_problem(problem, root, brief=True) for problem in problems[1:]]
    if not others:
        return line
    return line + f" (and {len(others)} more: " + "; ".join(others) + ")"


def _problem(problem: Any, root: type[BaseModel], *, brief: bool = False) -> str:
    location = tuple(problem["loc"])
    key = ".".join(str(part) for part in location) or "(top level)"
    if len(key) > QUOTE_CHARS:
        key = key[:QUOTE_CHARS] + "…"
    value = problem.get("input")
    context = problem.get("ctx") or {}
    inner = context.get("error")
    if isinstance(inner, KeyError_):
        return f"{inner.key}={quote(inner.value)}: {inner.message}"
    if problem["type"] == "extra_forbidden":
        hint = "" if brief else suggest(str(location[-1])[:QUOTE_CHARS], location, root)
        return f"unknown key {quote(key)}; {hint}".rstrip("; ").rstrip(". ")
    if problem["type"] == "missing":
        return f"missing required key {key!r}"
    message = str(inner) if isinstance(inner, Exception) else problem["msg"]
    message = message.removeprefix("Value error, ")
    return f"{key}={quote(value)}: {message}"


def yaml_problem(error: yaml.YAMLError, text: str) -> str:
    """PyYAML's problem and line, without the multi-line excerpt of the file it also prints."""
    if isinstance(error, yaml.reader.ReaderError):
        line = text.count("\n", 0, error.position) + 1
        return f"not valid YAML at line {line}: {str(error).splitlines()[0]}"
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or "invalid YAML"
    if isinstance(error, RefusedYaml):
        return f"line {mark.line + 1}: {problem}" if mark is not None else problem
    where = f" at line {mark.line + 1}" if mark is not None else ""
    return f"not valid YAML{where}: {problem}"
