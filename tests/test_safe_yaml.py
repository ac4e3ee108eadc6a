"""The config loader's limits, one at a time (CLI-level cases are in test_config.py)."""

from __future__ import annotations

import pytest
import yaml

from auditml.safe_yaml import MAX_DEPTH, MAX_VALUES, RefusedYaml, load_yaml


def test_plain_documents_load_as_safe_load_does() -> None:
    text = "a: 1\nb: [x, 2.5, null]\nc: {d: true, e: 2e-4}\n"
    assert load_yaml(text) == yaml.safe_load(text)


def test_nesting_up_to_the_limit_loads() -> None:
    assert load_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    with pytest.raises(RefusedYaml, match=f"nested more than {MAX_DEPTH} levels"):
        load_yaml("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))


def test_alias_expansion_is_counted_with_the_limit_exact() -> None:
    # root 1 + key a 1 + list a (1 + n) + key b 1 + list b (1 + copies (1 + n)) values.
    n = 99

    def text(copies: int) -> str:
        return f"a: &a [{', '.join(['x'] * n)}]\nb: [{', '.join(['*a'] * copies)}]\n"

    most = (MAX_VALUES - 4) // (n + 1) - 1
    assert 4 + (n + 1) * (most + 1) <= MAX_VALUES < 4 + (n + 1) * (most + 2)
    assert len(load_yaml(text(most))["b"]) == most
    with pytest.raises(RefusedYaml, match=f"aliases expand this value to {MAX_VALUES + 4}"):
        load_yaml(text(most + 1))


def test_duplicate_keys_are_refused_but_merge_keys_may_be_overridden() -> None:
    with pytest.raises(RefusedYaml, match=r"duplicate key 'a' \(first at line 1\)"):
        load_yaml("a: 1\na: 2\n")
    with pytest.raises(RefusedYaml, match="duplicate key True"):
        load_yaml("{yes: 1, true: 2}")  # two spellings of one key
    assert load_yaml("base: &b {a: 1, c: 3}\nx:\n  <<: *b\n  a: 2\n")["x"] == {"a": 2, "c": 3}


def test_unreadable_scalar_names_its_line() -> None:
    with pytest.raises(RefusedYaml, match="cannot read '2024-13-45' as timestamp") as caught:
        load_yaml("a: 1\nb: 2024-13-45\n")
    assert caught.value.problem_mark is not None and caught.value.problem_mark.line == 1
