"""SensitiveAttribute: how a tabular dataset declares the attribute attribute inference targets."""

from __future__ import annotations

import numpy as np
import pytest

from auditml.data import SensitiveAttribute


def _one_hot_race() -> SensitiveAttribute:
    # A 3-category one-hot block in columns 2..4 of 6 features.
    return SensitiveAttribute(
        name="race", columns=(2, 3, 4), values=np.eye(3, dtype=np.float32),
        categories=("a", "b", "c"),
    )


def test_binary_column_round_trip() -> None:
    sex = SensitiveAttribute(
        name="sex", columns=(1,), values=np.array([[-0.9], [1.1]]), categories=("f", "m")
    )
    x = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    for category in (0, 1):
        changed = sex.with_class(x, category)
        assert changed.dtype == np.float32
        np.testing.assert_array_equal(sex.classes(changed), np.full(7, category))
        # Only the attribute's column changes, and the input is left alone.
        np.testing.assert_array_equal(np.delete(changed, 1, axis=1), np.delete(x, 1, axis=1))
        assert np.all(changed[:, 1] == sex.values[category, 0])
    assert not np.shares_memory(sex.with_class(x, 0), x)


def test_classes_is_the_nearest_encoding() -> None:
    sex = SensitiveAttribute(
        name="sex", columns=(0,), values=np.array([[-1.0], [1.0]]), categories=("f", "m")
    )
    # Hand-computed: -0.1 is 0.9 from -1 and 1.1 from 1 (category 0); 0.1 the reverse.
    x = np.array([[-3.0], [-0.1], [0.1], [2.0]], dtype=np.float32)
    np.testing.assert_array_equal(sex.classes(x), [0, 0, 1, 1])
    assert sex.classes(x).dtype == np.int64


def test_one_hot_block_round_trip() -> None:
    race = _one_hot_race()
    x = np.zeros((5, 6), dtype=np.float32)
    mixed = np.concatenate([race.with_class(x[:2], 2), race.with_class(x[2:], 1)])
    np.testing.assert_array_equal(race.classes(mixed), [2, 2, 1, 1, 1])
    np.testing.assert_array_equal(mixed[0], [0, 0, 0, 0, 1, 0])


def test_columns_are_read_from_flattened_inputs() -> None:
    race = _one_hot_race()
    x = race.with_class(np.zeros((2, 2, 3), dtype=np.float32), 1)  # flattened: 6 features
    assert x.shape == (2, 2, 3)
    np.testing.assert_array_equal(x.reshape(2, -1)[:, 2:5], [[0, 1, 0], [0, 1, 0]])
    np.testing.assert_array_equal(race.classes(x), [1, 1])


@pytest.mark.parametrize(
    ("columns", "values", "categories", "message"),
    [
        ((0,), [[0.0]], ("only",), "at least 2 categories"),
        ((1, 1), [[0, 0], [1, 1]], ("a", "b"), "distinct"),
        ((), np.zeros((2, 0)), ("a", "b"), "non-empty"),
        ((-1,), [[0.0], [1.0]], ("a", "b"), "non-negative"),
        ((0,), [[0.0], [1.0], [2.0]], ("a", "b"), "shape"),
        ((0, 1), [[0.0], [1.0]], ("a", "b"), "shape"),
        ((0,), [[0.0], [np.nan]], ("a", "b"), "finite"),
        ((0,), [[1.0], [1.0]], ("a", "b"), "same encoding"),
    ],
)
def test_bad_declarations_are_refused(
    columns: tuple[int, ...], values: object, categories: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SensitiveAttribute(
            name="attr", columns=columns, values=np.asarray(values), categories=categories
        )


def test_inputs_without_the_columns_are_refused() -> None:
    race = _one_hot_race()
    with pytest.raises(ValueError, match="column 4 is outside inputs with 4 features"):
        race.classes(np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"must be \(N, F\)"):
        race.with_class(np.zeros(6, dtype=np.float32), 0)
    with pytest.raises(ValueError, match=r"category must be in \[0, 3\)"):
        race.with_class(np.zeros((3, 6), dtype=np.float32), 3)


def test_values_are_stored_as_float32_and_the_declaration_is_frozen() -> None:
    sex = SensitiveAttribute(name="sex", columns=[0], values=[[0], [1]], categories=["f", "m"])
    assert sex.values.dtype == np.float32 and sex.values.shape == (2, 1)
    assert sex.columns == (0,) and sex.categories == ("f", "m")
    with pytest.raises(AttributeError):
        sex.name = "other"  # type: ignore[misc]


def test_declarations_compare_by_value_and_cannot_be_changed_in_place() -> None:
    values = np.array([[0.0], [1.0]], dtype=np.float32)
    sex = SensitiveAttribute(name="sex", columns=(0,), values=values, categories=("f", "m"))
    twin = SensitiveAttribute(name="sex", columns=(0,), values=values.copy(), categories=("f", "m"))
    other = SensitiveAttribute(
        name="sex", columns=(0,), values=np.array([[0.0], [2.0]]), categories=("f", "m")
    )
    assert sex == twin and hash(sex) == hash(twin) and sex != other
    assert len({sex, twin, other}) == 2
    # The caller's array stays the caller's; the declaration's own is read-only.
    values[1, 0] = 5.0
    assert sex.values[1, 0] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        sex.values[0, 0] = 3.0


def test_check_encodes_refuses_values_in_other_units() -> None:
    """A binary attribute stored as 0/1 but declared standardised (±1) matched nothing: the
    nearest-encoding rule made every row one category, silently."""
    attribute = SensitiveAttribute("s", (1,), np.array([[-1.0], [1.0]]), ("a", "b"))
    raw = np.array([[0.3, 0.0], [0.1, 0.0], [0.2, 1.0]], dtype=np.float32)
    with pytest.raises(ValueError, match=r"2 of 3 rows of x hold none of its encodings"):
        attribute.check_encodes(raw, "x")
    attribute.check_encodes(raw * [1, 2] - [0, 1], "x")  # the same rows, standardised: fine
