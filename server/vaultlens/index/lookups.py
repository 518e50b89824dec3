"""Search's heavier reads, part of Reader (reader.py): where sections sit, which images a
paragraph places or sits beside, which notes place an image."""

from __future__ import annotations

import json
import sqlite3
from bisect import bisect_right
from collections.abc import Iterable
from itertools import accumulate
from typing import Any


class Lookups:
    """Mixed into Reader; needs only its connection."""

    _conn: sqlite3.Connection

    def section_places(self, ids: Iterable[int]) -> dict[int, tuple[int, str, int, int]]:
        """(file id, headings, start line, end line) of each note section among ``ids``."""
        out: dict[int, tuple[int, str, int, int]] = {}
        unique = list(ids)
        for i in range(0, len(unique), 500):
            chunk = unique[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for r in self._conn.execute(
                    f"SELECT id, file_id, headings, start_line, end_line FROM items"
                    f" WHERE id IN ({marks}) AND kind = 'section'", chunk):
                out[int(r[0])] = (int(r[1]), str(r[2]), int(r[3]), int(r[4]))
        return out

    def placements_within(self, note_id: int, start: int, end: int, limit: int
                      ) -> tuple[list[dict[str, Any]], int]:
        """The first ``limit`` images and PDFs a note places between these lines (a
        paragraph's pictures), in line order, and how many it places there in all."""
        where = "note_id = ? AND target IS NOT NULL AND line BETWEEN ? AND ?"
        total = int(self._conn.execute(f"SELECT count(*) FROM links WHERE {where}",
                                      (note_id, start, end)).fetchone()[0])
        # the limit applies to the links before any join: a paragraph placing one picture
        # 5,000 times costs ``limit`` lookups of its item, not 5,000
        rows = self._conn.execute(
            "SELECT l.target, l.line, l.page, l.caption, items.id AS item FROM"
            f" (SELECT target, line, col, page, caption FROM links WHERE {where}"
            "   ORDER BY line, col LIMIT ?) AS l"
            " LEFT JOIN files ON files.path = l.target"
            " LEFT JOIN items ON items.file_id = files.id"
            "  AND (items.page IS NULL OR items.page = COALESCE(l.page, 1))"
            " ORDER BY l.line, l.col", (note_id, start, end, limit)).fetchall()
        return [{"path": r["target"], "line": r["line"], "page": r["page"],
                 "caption": r["caption"], "item": r["item"]} for r in rows], total

    def links_to_page(self, target: str, page: int | None, limit: int
                      ) -> tuple[list[dict[str, Any]], int]:
        """The first ``limit`` places of ``target`` (by note path, then line) and how
        many there are in all. ``page``: a PDF page's, so only links to that page or to the
        whole PDF count."""
        where = "links.target = ?" + (" AND (links.page IS NULL OR links.page = ?)"
                                      if page is not None else "")
        args: list[Any] = [target] if page is None else [target, page]
        total = int(self._conn.execute(f"SELECT count(*) FROM links WHERE {where}",
                                      args).fetchone()[0])
        # ids first, then the rows: the sort carries ids, not every link's context
        rows = self._conn.execute(
            "SELECT links.*, files.path AS note FROM"
            " (SELECT links.id, files.path, links.line, links.col FROM links"
            f"   JOIN files ON files.id = links.note_id WHERE {where}"
            "   ORDER BY files.path, links.line, links.col LIMIT ?) AS chosen"
            " JOIN links ON links.id = chosen.id JOIN files ON files.id = links.note_id"
            " ORDER BY chosen.path, chosen.line, chosen.col", [*args, limit]).fetchall()
        return [{**dict(r), "headings": json.loads(r["headings"]),
                 "context": json.loads(r["context"])} for r in rows], total

    def images_around(self, section_ids: Iterable[int]) -> dict[int, set[int]]:
        """For each note section, the image and PDF-page items whose placement it holds or whose
        context (the paragraphs shown around a placement) it overlaps."""
        ids = list(section_ids)
        spans: dict[int, list[tuple[int, int, int]]] = {}  # note -> (start, end, section)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for r in self._conn.execute(
                    "SELECT id, file_id, start_line, end_line FROM items"
                    f" WHERE id IN ({','.join('?' * len(chunk))}) AND kind = 'section'", chunk):
                if r[2] is not None and r[3] is not None:  # a section without lines holds none
                    spans.setdefault(int(r[1]), []).append((int(r[2]), int(r[3]), int(r[0])))
        out: dict[int, set[int]] = {}
        # each note's links are read once, not once per section: the work is its links times
        # the few sections each one touches, not its sections times its links (a note that
        # places a picture 5,000 times has thousands of both), and 500 notes' links in one
        # statement (a filter's 2,000 candidates are hundreds of notes)
        notes = list(spans)
        for sections in spans.values():
            sections.sort()
        starts = {n: [a for a, _, _ in spans[n]] for n in notes}
        reach = {n: list(accumulate((b for _, b, _ in spans[n]), max)) for n in notes}
        for i in range(0, len(notes), 500):
            chunk = notes[i : i + 500]
            for note_id, line, context, target in self._conn.execute(
                    "SELECT links.note_id, links.line, links.context, t.id FROM links"
                    " JOIN files ON files.path = links.target"
                    " JOIN items AS t ON t.file_id = files.id"
                    "  AND (t.page IS NULL OR t.page = COALESCE(links.page, 1))"
                    f" WHERE links.note_id IN ({','.join('?' * len(chunk))})", chunk):
                sections, firsts, furthest = spans[note_id], starts[note_id], reach[note_id]
                lines = [(int(line), int(line))] + [(int(c["start"]), int(c["end"]))
                                                    for c in json.loads(context)]
                for lo, hi in lines:
                    # sections before k start at or before hi; stop once none of them can
                    # reach down to lo
                    k = bisect_right(firsts, hi) - 1
                    while k >= 0 and furthest[k] >= lo:
                        if sections[k][1] >= lo:
                            out.setdefault(sections[k][2], set()).add(int(target))
                        k -= 1
        return out
