"""A note's markdown as the plain text a reader sees: what snippets, the API's hits and context
packs show, said once.

- A wikilink shows its alias, else its target's name (``[[Folder/Note#Part]]`` → "Note > Part",
  as Obsidian shows it); a markdown link shows its text; an autolink its address.
- Emphasis, highlight and strike-through markers go (``**x**``, ``_x_``, ``==x==``, ``~~x~~``);
  a marker inside a word (``snake_case``, ``a*b``) or between spaces (``2 * 3``) stays.
- Placements (``![[x.png]]``, ``![](x.png)``, ``<img>``) show as nothing: the picture is its
  own hit and its own pack entry, and the page shows its thumbnail.
- Headings' ``#``, list and task markers, quote and callout markers (``> [!note]``), table
  pipes at a row's ends and delimiter rows, code fences, horizontal rules, block ids
  (``^abc123``), footnote markers, comments and HTML tags go; entities are decoded.
- Code keeps its text as written: a fenced block's lines and an inline span's content are
  never rewritten.

Every line of the source is one line of the result (a line of markup alone becomes empty), so
a block's line numbers still hold. Every pattern is linear in the line: each starts only where
its first character is and stops at the next character that could start it again (no pattern
retries a run of spaces from each of its positions), so a 5 MB one-line note, ten thousand
unclosed ``[[`` or ``[^``, or a long run of spaces cost one pass.
"""

from __future__ import annotations

import html
import re

from vaultlens.text import CJK_RANGES
from vaultlens.vault.placements import strip_placements

_FENCE = re.compile(r"^[ \t>]*(`{3,}|~{3,})")
_COMMENT = re.compile(r"%%.*?(?:%%|\Z)|<!--.*?(?:-->|\Z)", re.S)
_CODE_SPAN = re.compile(r"(?<![`\\])(`++)([^`\n]++)\1(?!`)")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_ESCAPED_BASE = 0xE000  # escaped ASCII punctuation is held in the private use area meanwhile
_ESCAPED_PIPE = chr(_ESCAPED_BASE + ord("|"))

_QUOTE = re.compile(r"^(?:[ \t]*>)+[ \t]?")
_CALLOUT = re.compile(r"^\[![^\]\n]*+\][+-]?[ \t]*")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}(?:[ \t]+|$)")
_CLOSING_HASHES = re.compile(r"(?<![ \t])[ \t]++#++[ \t]*+$")
_LIST = re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[^\]\n]\][ \t]+)?")
_RULE = re.compile(r"^[ \t]*(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_TABLE_DELIMITER = re.compile(
    r"^[ \t]*+\|?(?:[ \t]*+:?-++:?[ \t]*+\|)++(?:[ \t]*+:?-++:?[ \t]*+)?$")
_TABLE_ENDS = re.compile(r"^[ \t]*\||(?<!\\)\|[ \t]*$")
_FOOTNOTE_DEF = re.compile(r"^\[\^[^\]\s]++\]:[ \t]*")
_FOOTNOTE_REF = re.compile(r"\[\^[^\[\]\s]++\]")
_BLOCK_ID = re.compile(r"(?:^|(?<=\s)|(?<=\]\]))\^[A-Za-z0-9-]++[ \t]*$")
_SPACES = re.compile(r"[ \t]{2,}")

_WIKILINK = re.compile(r"\[\[([^\[\]\n]++)\]\]")
_LINK = re.compile(r"\[([^\[\]\n]*+)\]\([^()\n]*+(?:\([^()\n]*+\)[^()\n]*+)*+\)")
_AUTOLINK = re.compile(r"<((?:https?|mailto|ftp|obsidian):[^<>\s]++)>", re.I)
_INLINE_TAG = re.compile(r"</?(?:a|b|i|u|s|em|strong|span|mark|sub|sup|small|font|kbd|code"
                         r"|del|ins|abbr|cite|q)\b[^<>\n]*+>", re.I)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*+(?:\s[^<>\n]*+)?/?>")
# a marker run opens where no word (or the same marker) is before it and text follows; it
# closes where text is before it and no word follows. CJK is written without spaces, so a CJK
# character beside a marker does not make it part of a word
_LATIN_WORD = f"[^\\W{CJK_RANGES}]"


def _marker(run: str, char: str) -> str:
    return (f"(?<!{_LATIN_WORD})(?<!{char}){run}(?=[^\\s{char}])"
            f"|(?<=[^\\s{char}]){run}(?!{_LATIN_WORD})(?!{char})")


_MARKERS = re.compile("|".join([_marker(r"\*++", r"\*"), _marker("_++", "_"),
                                _marker("~~", "~"), _marker("==", "=")]))


def plain_text(markdown: str) -> str:
    """The text a reader of the rendered note sees, line for line (see the module's note)."""
    if not markdown:
        return markdown
    text = _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), markdown)
    out: list[str] = []
    fence: str | None = None  # the run that opened the code block we are in
    quoted = False  # whether that block stands in a quote or callout (its lines carry ">")
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                    and not line[m.end():].strip():
                fence, line = None, ""
            out.append(_QUOTE.sub("", line) if quoted else line)
            continue
        if m:
            fence, quoted = m.group(1), ">" in line[: m.start(1)]
            out.append("")
            continue
        out.append(_line(line))
    return "\n".join(out)


def _line(line: str) -> str:
    line = _QUOTE.sub("", line)
    line = _CALLOUT.sub("", line)
    if _RULE.match(line) or _TABLE_DELIMITER.match(line):
        return ""
    line = _CLOSING_HASHES.sub("", _HEADING.sub("", line).rstrip())
    line = _LIST.sub("", line)
    line = _FOOTNOTE_DEF.sub("", line)
    line = _BLOCK_ID.sub("", line)
    line = _TABLE_ENDS.sub("", line)
    # code spans keep their text as written: the rest of the line is rewritten around them
    parts: list[str] = []
    at = 0
    for span in _CODE_SPAN.finditer(line):
        parts += [_inline(line[at : span.start()]), span.group(2)]
        at = span.end()
    parts.append(_inline(line[at:]))
    return "".join(parts).translate(_UNESCAPE).strip()


def _inline(text: str) -> str:
    if not text:
        return text
    text = _ESCAPE.sub(lambda m: chr(_ESCAPED_BASE + ord(m.group(1))), text)
    text = strip_placements(text)
    text = _WIKILINK.sub(_wikilink_display, text)
    text = _FOOTNOTE_REF.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _INLINE_TAG.sub("", text)
    text = _TAG.sub(" ", text)
    text = _SPACES.sub(" ", _MARKERS.sub("", text))
    return html.unescape(text) if "&" in text else text


def _wikilink_display(m: re.Match[str]) -> str:
    # "\|" escapes the pipe inside tables (held in the private use area by now)
    inner = m.group(1).replace(_ESCAPED_PIPE, "|")
    link, bar, alias = inner.partition("|")
    if bar and alias.strip():
        return alias.strip()
    target, _, sub = link.partition("#")
    name = target.strip().rsplit("/", 1)[-1]
    if name.lower().endswith(".md"):
        name = name[:-3]
    sub = sub.strip()
    if not sub or sub.startswith("^"):  # a block reference shows the note alone
        return name
    heading = " > ".join(p.strip() for p in sub.split("#") if p.strip())
    return f"{name} > {heading}" if name else heading


_UNESCAPE = {_ESCAPED_BASE + c: chr(c) for c in range(0x21, 0x7F)}
