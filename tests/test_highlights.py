"""Highlights mark exactly the words the keyword search matched: its tokens, its stemmer, its
CJK bigrams; spans in UTF-16 units, as JavaScript slices."""

from __future__ import annotations

import sqlite3

from keyword_data import highlighter
from vaultlens.index.keyword_index import KeywordIndex
from vaultlens.search.highlights import Highlighter


def marked(text: str, query: str) -> list[str]:
    marker = highlighter()
    return [text[a:b] for a, b in marker.spans(text, marker.terms(query))]


OCR = ("Obsidian Sync keeps regional servers; choose the server nearest you. The app will "
       "synchronize your vault, and syncing resumes after a pause.")


def test_words_are_matched_by_their_stems_not_by_their_starts() -> None:
    assert marked(OCR, "regional sync servers") == [
        "Sync", "regional", "servers", "server", "syncing"]
    # "sync" is not "synchronize" to the stemmer, so it is not marked
    assert "synchronize" not in marked(OCR, "sync")
    assert marked(OCR, "synchronization") == ["synchronize"]


def test_case_changes_and_diacritics_match_as_the_index_does() -> None:
    assert marked("Set it up on Mac OS or macOS", "macOS") == ["Mac", "OS", "macOS"]
    assert marked("Le café ouvre", "cafe") == ["café"]


def test_one_letter_words_are_not_marked() -> None:
    assert marked("a b c sync", "a sync") == ["sync"]


def test_chinese_queries_mark_the_matched_words() -> None:
    text = "在设置中打开同步，然后选择服务器。同步很快。"  # noqa: RUF001 - Chinese punctuation
    assert marked(text, "同步服务器") == ["同步", "服务器", "同步"]
    assert marked(text, "快") == ["快"]
    assert marked(text, "步服") == []  # no such bigram in the text


def test_snippet_windows_on_the_words() -> None:
    marker = highlighter()
    text = "filler " * 200 + "the zebra crossing " + "filler " * 200
    cut, marks = marker.snippet(text, marker.terms("zebra"))
    assert cut.startswith("…") and cut.endswith("…")
    assert [cut[a:b] for a, b in marks] == ["zebra"]
    # a word the window cuts in two is not marked in part
    cut, marks = marker.snippet("zebra " * 100, marker.terms("zebra"), width=21)
    assert cut == "zebra zebra zebra zeb…"
    assert [cut[a:b] for a, b in marks] == ["zebra"] * 3


def test_highlights_count_utf16_units_as_javascript_does() -> None:
    marker = highlighter()
    text, marks = marker.snippet("🚀🚀 launch day: the 同步 rocket syncs went well 😀 sync",
                                 marker.terms("sync 同步"))
    units = text.encode("utf-16-le")
    words = [units[2 * s : 2 * e].decode("utf-16-le") for s, e in marks]  # JS slice(s, e)
    assert words == ["同步", "syncs", "sync"]


def test_a_word_is_stemmed_only_when_it_could_match() -> None:
    asked: list[str] = []
    stems = KeywordIndex(sqlite3.connect(":memory:")).stems

    def counting(words: object) -> dict[str, str]:
        got = list(words)  # type: ignore[call-overload]
        asked.extend(got)
        return stems(got)

    marker = Highlighter(counting)
    terms = marker.terms("servers")
    asked.clear()
    assert [(a, b) for a, b in marker.spans("the server and the servers", terms)] == [
        (4, 10), (19, 26)]
    assert set(asked) <= {"server", "servers"}
