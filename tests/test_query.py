"""The query language: words, phrases, filters, negation; and the JSON fields' equivalent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vaultlens.search.filters import holds
from vaultlens.search.query import Condition, QueryError, fields_filters, parse, parse_date


def ts(*ymd: int) -> float:
    return datetime(*ymd, tzinfo=UTC).timestamp()


def known(*names: str):  # type: ignore[no-untyped-def]
    return lambda name: name.lower() in names


def test_words_and_filters_split() -> None:
    q = parse('purple chart "friction cost" kind:image tag:#pkm path:Work/ -draft '
              'after:2024-01 before:2025 -tag:old -path:"Work/Old stuff"')
    assert q.text == "purple chart friction cost"
    assert q.phrases == ("friction cost",)
    f = q.filters
    assert f.kinds == ("image",) and f.tags == ("pkm",) and f.paths == ("Work",)
    assert f.not_tags == ("old",) and f.not_paths == ("Work/Old stuff",)
    assert f.excluded == ("draft",)
    assert f.after == ts(2024, 1, 1) and f.before == ts(2025, 1, 1)


def test_excluded_words_are_not_ranked() -> None:
    q = parse("sync -mobile -\"selective sync\"")
    assert q.text == "sync" and q.filters.excluded == ("mobile", "selective sync")


def test_properties_only_when_the_vault_has_them() -> None:
    q = parse("status:done ctr>5 rating>=2 -draft:true meeting at 10:30 http://x.org",
              known("status", "ctr", "rating", "draft"))
    assert q.filters.properties == (
        Condition("status", ":", "done"), Condition("ctr", ">", "5"),
        Condition("rating", ">=", "2"), Condition("draft", ":", "true", negate=True))
    # a name the vault does not use as a property is a word like any other
    assert q.text == "meeting at 10:30 http://x.org"


@pytest.mark.parametrize("bad", ["kind:movie", "before:2024-13", "after:yesterday",
                                 "before:2024-02-30"])
def test_bad_filters_are_errors(bad: str) -> None:
    with pytest.raises(QueryError):
        parse(f"notes {bad}")


def test_dates() -> None:
    assert parse_date("2024") == ts(2024, 1, 1)
    assert parse_date("2024-05") == ts(2024, 5, 1)
    assert parse_date("2024-05-09") == ts(2024, 5, 9)


@given(st.text(max_size=80))
def test_any_text_parses_or_says_why(text: str) -> None:
    try:
        q = parse(text, lambda _: True)
    except QueryError as exc:
        assert str(exc)
        return
    assert isinstance(q.text, str)
    assert all(p for p in q.phrases)


@pytest.mark.parametrize(("op", "value", "values", "expected"), [
    (":", "done", [("Done", None)], True),
    (":", "do", [("done", None)], True),  # contains, as Obsidian's [status:do]
    ("=", "do", [("done", None)], False),
    (">", "5", [("10", 10.0)], True),  # numbers compare as numbers, not text ("10" < "5")
    ("<", "5", [("10", 10.0)], False),
    ("<=", "2024-05-01", [("2024-04-30", None)], True),  # ISO dates compare as text
    ("!=", "a", [("a", None)], False),
    (">", "1", [("x", None), ("3", 3.0)], True),  # any value of a list
])
def test_property_conditions(op: str, value: str, values: list[tuple[str, float | None]],
                             expected: bool) -> None:
    assert holds(Condition("p", op, value), values) is expected


def test_json_fields_become_the_same_filters() -> None:
    f = fields_filters(path="Trips/", kind="image", tag="#travel", before="2025", after="2024",
                       where="status:done ctr>5", exclude='draft "old notes"')
    assert f.paths == ("Trips",) and f.kinds == ("image",) and f.tags == ("travel",)
    assert f.before == ts(2025, 1, 1) and f.after == ts(2024, 1, 1)
    assert f.properties == (Condition("status", ":", "done"), Condition("ctr", ">", "5"))
    assert f.excluded == ("draft", "old notes")
    with pytest.raises(QueryError):
        fields_filters(where="status:done and some words")
    with pytest.raises(QueryError):
        fields_filters(kind="video")
