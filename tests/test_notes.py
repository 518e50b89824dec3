"""Sections with line ranges, frontmatter, tags, block ids, and input that must not crash."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable

from vaultlens.vault.notes import Note, NoteParser

DOC = """\
---
tags: [project, "#draft"]
aliases: Old name
rating: 4.5
count: 3
due: 2024-05-01
people:
  - Ada
  - Grace
---
# Top

Intro paragraph
over two lines.

## Sub ^sub-id

- one
- two
  - nested

> [!warning] Careful
> body

> plain quote

| a | b |
|---|---|
| 1 | 2 |

```python
x = 1
```

<div>html</div>

---

Closing words #inline-tag ^end-1

[ref]: https://example.com
"""


def test_sections_follow_obsidian_kinds_and_lines(parse: Callable[..., Note]) -> None:
    note = parse(DOC, "Folder/My note.md")
    got = [(s.kind, s.start, s.end) for s in note.sections]
    assert got == [
        ("yaml", 1, 10),
        ("heading", 11, 11),
        ("paragraph", 13, 14),
        ("heading", 16, 16),
        ("list", 18, 20),
        ("callout", 22, 23),
        ("blockquote", 25, 25),
        ("table", 27, 29),
        ("code", 31, 33),
        ("html", 35, 35),
        ("hr", 37, 37),
        ("paragraph", 39, 39),
        ("text", 41, 41),
    ]
    assert note.title == "My note"
    assert note.line_count == 41


def test_heading_paths(parse: Callable[..., Note]) -> None:
    note = parse(DOC)
    by_start = {s.start: s for s in note.sections}
    assert by_start[13].headings == ("Top",)
    assert by_start[16].headings == ("Top", "Sub")  # the block id is not part of the title
    assert by_start[18].headings == ("Top", "Sub")
    assert by_start[16].level == 2
    assert parse("# A\n## B\n### C\n## D\ntext\n").sections[-1].headings == ("A", "D")


def test_setext_heading(parse: Callable[..., Note]) -> None:
    s = parse("Title\n=====\n\nbody\n").sections
    assert (s[0].kind, s[0].start, s[0].end, s[0].headings) == ("heading", 1, 2, ("Title",))


def test_list_items(parse: Callable[..., Note]) -> None:
    (lst,) = [s for s in parse(DOC).sections if s.kind == "list"]
    assert lst.items == ((18, 18), (19, 20))


def test_frontmatter_types_are_kept(parse: Callable[..., Note]) -> None:
    note = parse(DOC)
    p = note.properties
    assert p["rating"] == 4.5 and p["count"] == 3
    assert p["due"] == dt.date(2024, 5, 1)
    assert p["people"] == ["Ada", "Grace"]
    assert note.aliases == ["Old name"]
    assert note.tags == ["project", "draft", "inline-tag"]
    assert note.problems == []


def test_frontmatter_tag_string_forms(parse: Callable[..., Note]) -> None:
    assert parse("---\ntags: a, b c\n---\n").tags == ["a", "b", "c"]
    assert parse("---\ntag: one\n---\n").tags == ["one"]


def test_broken_frontmatter_is_recorded_and_rest_parses(parse: Callable[..., Note]) -> None:
    note = parse("---\ntags: [unclosed\nx: : y\n---\n# Heading\n\nbody ![[a.png]]\n")
    assert note.problems and "frontmatter" in note.problems[0]
    assert note.properties == {}
    assert [s.kind for s in note.sections] == ["yaml", "heading", "paragraph"]
    assert [e.line for e in note.placements] == [7]


def test_frontmatter_must_be_a_mapping(parse: Callable[..., Note]) -> None:
    note = parse("---\n- a\n- b\n---\ntext\n")
    assert note.problems == ["frontmatter is not a mapping of properties; ignored"]


def test_unclosed_frontmatter_is_markdown(parse: Callable[..., Note]) -> None:
    note = parse("---\ntitle: x\n\nbody\n")
    assert note.properties == {}
    assert note.sections[0].kind == "hr"


def test_inline_tags_follow_obsidian_rules(parse: Callable[..., Note]) -> None:
    text = (
        "#tag1 and #nested/tag and #日本語 and #with-dash_underscore\n"
        "not: a#b, #123, `#code`, [[Note#Heading]], http://x.com/#frag\n"
        "# Heading is not a tag\n"
        "%% #hidden %%\n"
    )
    assert parse(text).tags == ["tag1", "nested/tag", "日本語", "with-dash_underscore"]


def test_block_ids(parse: Callable[..., Note]) -> None:
    text = (
        "A paragraph. ^para-1\n\n"
        "- first ^item-a\n- second\n\n"
        "| a |\n|---|\n| 1 |\n\n^table-id\n\n"
        "```\nnot ^code-id\n```\n"
    )
    ids = parse(text).block_ids
    assert ids == {"para-1": (1, 1), "item-a": (3, 3), "table-id": (6, 8)}


def test_bom_crlf_and_lone_cr(parse: Callable[..., Note]) -> None:
    note = parse("\ufeff# T\r\n\r\nbody\rsecond\r\n")
    assert [(s.kind, s.start, s.end) for s in note.sections] == [
        ("heading", 1, 1), ("paragraph", 3, 4)]


def test_empty_and_blank_notes(parse: Callable[..., Note]) -> None:
    assert parse("").sections == []
    assert parse("\n\n   \n").sections == []


def test_huge_single_line(parse: Callable[..., Note]) -> None:
    line = ("word ![[a.png]] `code` %% c %% #tag " * 150_000)[: 5 * 2**20]
    note = parse(line)
    assert [(s.kind, s.start, s.end) for s in note.sections] == [("paragraph", 1, 1)]
    assert len(note.placements) > 100_000


def test_binary_junk_is_a_problem_not_a_crash(parser: NoteParser) -> None:
    junk = os.urandom(4096) + b"\x00" + os.urandom(4096)
    note = parser.parse_bytes(junk, "junk.md")
    assert note.sections == [] and "binary" in note.problems[0]
    # invalid UTF-8 without NUL bytes still parses, with replacement characters
    note = parser.parse_bytes(b"# T\xff\xfe\n\nbody \xc3 ![[a.png]]\n", "bad.md")
    assert [e.target for e in note.placements] == ["a.png"]


def test_comment_spanning_paragraphs_is_one_section(parse: Callable[..., Note]) -> None:
    note = parse("before\n\n%%\nsecret\n\nmore secret\n%%\n\nafter\n")
    assert [(s.kind, s.start, s.end) for s in note.sections] == [
        ("paragraph", 1, 1), ("comment", 3, 4), ("comment", 6, 7), ("paragraph", 9, 9)]


def test_section_at(parse: Callable[..., Note]) -> None:
    note = parse("a\n\nb\nc\n")
    assert note.section_at(4) is not None and note.section_at(4).start == 3  # type: ignore[union-attr]
    assert note.section_at(2) is None


HOSTILE = {
    "unclosed wikilinks": "![[" * 100_000,
    "unclosed wikilinks with text": "![[a " * 100_000,
    "unclosed angle destinations": "![a](<" * 50_000,
    "unclosed img tags": '<img src="' * 50_000,
    "unclosed alt": "![" * 100_000,
    "nested parens": "![a](" + "(" * 100_000,
    "deep blockquote": ">" * 100_000 + " x",
    "comment openers": "<!--" * 50_000 + "\n%%" * 50_000,
    "heading of spaces": "# a" + " " * 1_000_000 + "#x",
    "block id lookalikes": "x " + "^a " * 300_000,
    "backtick runs": "".join("`" * (i % 50 + 1) + " " for i in range(50_000)),
}


def test_hostile_markdown_finishes() -> None:
    """Inputs that make naive regexes quadratic: each must parse, in a child we can kill."""
    script = (
        "import json, sys\n"
        "from vaultlens.vault.notes import NoteParser\n"
        "p = NoteParser()\n"
        "for name, text in json.load(sys.stdin).items():\n"
        "    p.parse(text, 'x.md')\n"
        "print('done')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], input=json.dumps(HOSTILE),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr
