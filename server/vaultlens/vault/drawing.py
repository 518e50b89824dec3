"""An Excalidraw drawing (``*.excalidraw.md``, or any note with the ``excalidraw-plugin``
property, as the Excalidraw plugin tells them): a note whose words are its ``Text Elements``
and whose drawing data must never be read as words.

The plugin writes::

    ---
    excalidraw-plugin: parsed
    ---
    ==⚠  Switch to EXCALIDRAW VIEW in the MORE OPTIONS menu of this document. ⚠==

    # Excalidraw Data
    ## Text Elements
    Billing reconciler ^Xk3hd9Aa

    ## Embedded Files
    2f1c0a...: [[Pasted image 20240101120000.png]]

    %%
    ## Drawing
    ```compressed-json
    N4KAkARALgngDg...
    ```
    %%

Older versions write ``# Text Elements`` and ``# Drawing`` at level one and a plain ```json
block. Before the note is parsed, the Drawing section (from its heading to the end of its
fenced block, or to the end of the file when the fence is not closed), the plugin's banner
and the Embedded Files lines are blanked, keeping every line number; the files listed under
Embedded Files become placements of the drawing, with its text elements as their context.
"""

from __future__ import annotations

import re

from vaultlens.vault.placements import EXTERNAL, Placement, find_placements

SUFFIX = ".excalidraw.md"
# the title is taken whole and its trailing spaces and hashes stripped in code: a lazy group
# before a trailing run would retry that run at every position (quadratic on a long line)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*)$")
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
_EMBEDDED = re.compile(r"^[ \t]*([0-9A-Za-z_-]++):[ \t]*+(\S.*)$")
_BANNER = re.compile(r"^==⚠.*⚠==")
_PROPERTY = re.compile(r"^excalidraw-plugin[ \t]*:")


def is_drawing(path: str, lines: list[str]) -> bool:
    """The plugin's own test: the ``excalidraw-plugin`` property (a drawing renamed to any
    ``.md`` name stays one), or the name it gives new drawings."""
    if path.lower().endswith(SUFFIX):
        return True
    if not lines or lines[0].rstrip() != "---":
        return False
    for line in lines[1:200]:
        if line.rstrip() == "---":
            return False
        if _PROPERTY.match(line):
            return True
    return False


def _blank_drawing(lines: list[str], start: int) -> int:
    """Blank the Drawing section that starts at ``start``; the index after it."""
    i = start + 1
    fence: str | None = None
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if fence is None and m:
            fence = m.group(1)
        elif fence is not None and lines[i].strip().startswith(fence[0] * len(fence)) \
                and not lines[i].strip().strip(fence[0]):
            lines[i] = ""
            return i + 1
        elif fence is None and _HEADING.match(lines[i]):
            return i  # a section with no fence ends at the next heading
        lines[i] = ""
        i += 1
    return i


def prepare_drawing(lines: list[str]) -> tuple[list[str], list[Placement], list[int]]:
    """The lines to parse as a note (drawing data blanked), the placements of the files the
    drawing embeds, and the 1-based lines of its text elements."""
    out = list(lines)
    placements: list[Placement] = []
    texts: list[int] = []
    section = ""
    i = 0
    while i < len(out):
        line = out[i]
        heading = _HEADING.match(line)
        if heading:
            section = heading.group(2).rstrip(" \t#").strip().lower()
            if section == "drawing":
                out[i] = ""
                i = _blank_drawing(out, i)
                continue
        elif _BANNER.match(line):
            out[i] = ""
        elif section == "text elements" and line.strip() and line.strip() != "%%":
            texts.append(i + 1)
        elif section == "embedded files" and (m := _EMBEDDED.match(line)):
            placements += _embedded(m.group(2).rstrip(" \t"), i + 1, line)
            out[i] = ""
        i += 1
    return out, placements, texts


def _embedded(value: str, line: int, raw: str) -> list[Placement]:
    """``[[image.png]]`` or a bare path after an embedded file's id, as a placement."""
    found = find_placements("!" + value, "!" + value) if value.startswith("[[") else []
    if not found and not value.startswith("[["):
        found = find_placements(f"![[{value}]]", f"![[{value}]]")
    return [Placement(line, 1, raw.strip(), p.syntax, p.target, p.subpath, p.kind)
            for p in found if p.kind != EXTERNAL]
