"""A note's markdown as the plain text a reader sees (vault/plain.py): what snippets, hits and
context packs show."""

from __future__ import annotations

import time

import pytest

from vaultlens.vault.plain import plain_text

CASES = [
    ("See [[Sync/Selective sync|selective sync]] now", "See selective sync now"),
    ("Read [[Folder/Other note]] and [[Guide.md]]", "Read Other note and Guide"),
    ("Jump to [[Other note#Part one]] or [[#Local]]", "Jump to Other note > Part one or Local"),
    ("A block [[Note#^abc123]]", "A block Note"),
    ("**Bold**, *it*, _under_, ==mark==, ~~old~~ and __strong__",
     "Bold, it, under, mark, old and strong"),
    ("snake_case, a*b, 2 * 3, x == y, a==b stay", "snake_case, a*b, 2 * 3, x == y, a==b stay"),
    ("> [!note] Sync tips\n> Keep **one** vault", "Sync tips\nKeep one vault"),
    ("> [!warning]- Folded\n> > nested quote", "Folded\nnested quote"),
    ("![[shot.png]]^block-id", ""),
    ("Before ![[shot.png|300]] after ![alt](x.png) and <img src=\"y.png\">", "Before after and"),
    ("Paragraph text ^abc123", "Paragraph text"),
    ("## Heading two ##", "Heading two"),
    ("- [ ] task\n- [x] done\n* star\n+ plus\n1. one\n2) two",
     "task\ndone\nstar\nplus\none\ntwo"),
    ("| Name | Value |\n|---|:---:|\n| [[a\\|b]] | `x|y` |", "Name | Value\n\nb | x|y"),
    ("code `**raw** [[x]]` here", "code **raw** [[x]] here"),
    ("add a `\\` before, and \\`no code\\`", "add a \\ before, and `no code`"),
    ("```python\nx = **1**  # [[not a link]]\n```\nafter",
     "\nx = **1**  # [[not a link]]\n\nafter"),
    ("A<br>B <b>bold</b> &amp; <span class=\"x\">s</span>", "A B bold & s"),
    ("Foot[^1] note\n[^1]: the footnote", "Foot note\nthe footnote"),
    ("[text](https://x.org/a_(b) \"title\") and <https://y.org>", "text and https://y.org"),
    ("```md\n> [!faq]- Code shows **markup**\n```", "\n> [!faq]- Code shows **markup**\n"),
    ("> ```\n> quoted code\n> ```", "\nquoted code\n"),
    ("%% hidden %%shown <!-- gone -->", "shown"),
    ("one %%\nhidden\n%% two", "one\n\ntwo"),
    ("---\n***", "\n"),
    ("e = mc^2 and x^2", "e = mc^2 and x^2"),
    ("\\*not emphasis\\* and \\[[not a link]]", "*not emphasis* and [[not a link]]"),
    ("同步**服务器**很快😀，==重点==。", "同步服务器很快😀，重点。"),  # noqa: RUF001
    ("#tag stays, as does # alone", "#tag stays, as does # alone"),
]


@pytest.mark.parametrize(("markdown", "plain"), CASES)
def test_markdown_reads_as_plain_text(markdown: str, plain: str) -> None:
    assert plain_text(markdown) == plain


def test_every_line_stays_a_line() -> None:
    note = "# Title\n\n> [!tip]\n> ![[a.png]]\n\n```\ncode\n```\n- item ^id"
    assert len(plain_text(note).split("\n")) == len(note.split("\n"))


@pytest.mark.parametrize("line", ["![[" * 20_000, "[[" * 20_000, "*a" * 20_000,
                                  "`" * 20_000 + "x", "[x](" * 20_000, "<a " * 20_000,
                                  "%%" + "x" * 100_000, "_" * 40_000 + "a", "-|" * 20_000 + "x",
                                  "- " * 20_000 + "x", ":-: |" * 20_000 + "x", "\\" * 40_000,
                                  "> " * 20_000 + "[!x" * 10_000, " " * 40_000 + "x",
                                  " " * 40_000 + "#x", "# a" + "\t" * 40_000 + "#a",
                                  "[^a" * 20_000])
def test_hostile_lines_cost_one_pass(line: str) -> None:
    start = time.perf_counter()
    plain_text(line)
    assert time.perf_counter() - start < 0.5
