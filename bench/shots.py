"""Generated screenshots that look like real ones, pasted into notes: the vault of
``screenshots_bench.py``, reproducible from a seed.

Each screenshot is one of: a window with a title bar, a dialog with buttons, a settings pane
with toggles, a bar or line chart with axis labels and a legend, a code editor, a chat thread.
Fonts are the machine's (``fc-list``), else PIL's own; light and dark themes; CJK lines where a
CJK font is installed (none: no CJK, and ``Fonts.cjk`` is None). Each carries a phrase of three
uncommon words drawn into it: the ground truth a search for it should find. The phrase is not
in the note's text, so only the picture's words can find it.
"""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
RGB = tuple[int, int, int]

UNCOMMON = """abscond acumen adamant alacrity amalgam anachronism anathema antediluvian aplomb
arcane arboreal asunder atavism avuncular azimuth bailiwick baroque bedlam befuddle behemoth
blandish bombast brouhaha bucolic burgeon cabal cachet cacophony cajole calumny canard
capricious carapace catacomb caucus chicanery chimera churlish circumspect clandestine
codicil cogent conflagration conundrum cornucopia cudgel curmudgeon dalliance debacle
decorum deluge denizen diatribe dirigible doggerel dulcet ebullient effigy effulgent
eldritch embargo emollient enigma ephemeral epiphany equinox errant esoteric euphony
exculpate fandango farrago fastidious fathom filigree flummox foible fractious gadfly
galleon gambit garrulous gazebo gossamer gregarious halcyon harbinger harangue heirloom
hinterland histrionic hubris iconoclast idyll imbroglio impetus incognito indigo ineffable
inkling insouciant jamboree jocular juggernaut junket kaleidoscope kerfuffle kismet knapsack
labyrinth laconic lagoon lampoon languid largesse lexicon limerick lodestar lugubrious
maelstrom magnate malachite marzipan maverick meander mercurial miasma minuet mirage
monolith mosaic mulberry myriad nadir nebula nomad nonplussed oblique obsidian odyssey
opulent oracle orchid palisade panacea paragon parapet pastiche pergola periwinkle
persimmon phalanx pinnacle plethora quagmire quandary quarry quibble quintessence quixotic
ramshackle rapscallion raucous rhapsody rigmarole rococo rubicon saffron sagacious
salamander sardonic scallion serendipity shibboleth sinecure sobriquet solstice spelunker
sphinx squall stalwart sycamore talisman tapestry tempest terrapin thimble tundra turquoise
umbrage unicorn usurp vagabond vellum verdigris vestibule vicissitude vortex wanderlust
whimsy wherewithal wisteria xylophone yonder zealot zenith zephyr ziggurat""".split()

CJK_LINES = ("设置已保存", "同步完成", "会议记录", "搜索结果", "新しいメッセージ", "保存しました")
FILLER = ("Sync status", "Last updated", "Storage used", "Notifications", "Account",
          "Appearance", "Shortcuts", "Privacy", "Export data", "Backups", "Language",
          "Updates available", "Connected devices", "Theme", "Font size")


@dataclass(frozen=True)
class Shot:
    """One screenshot's ground truth: where it is, the note that places it, its phrase."""

    image: str  # vault-relative path of the PNG
    note: str  # vault-relative path of the note that places it
    phrase: str
    kind: str
    theme: str
    cjk: bool


def _fc_files(pattern: str) -> list[str]:
    try:
        out = subprocess.run(["fc-list", pattern, "file"], capture_output=True, text=True,
                             timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({line.split(":")[0].strip() for line in out.splitlines() if line.strip()})


class Fonts:
    """The machine's fonts by role (sans, serif, mono, cjk); PIL's default where none is."""

    def __init__(self) -> None:
        files = [f for f in _fc_files(":") if f.lower().endswith((".ttf", ".otf", ".ttc"))]
        plain = [f for f in files if not any(s in f for s in ("Oblique", "Italic", "Math"))]
        self.mono = [f for f in plain if "Mono" in f]
        self.serif = [f for f in plain if "Serif" in f and "Mono" not in f]
        self.sans = [f for f in plain if f not in self.mono and f not in self.serif] or plain
        cjk = [f for f in _fc_files(":lang=zh") + _fc_files(":lang=ja") if Path(f).exists()]
        self.cjk: str | None = cjk[0] if cjk else None

    def get(self, role: str, size: int, rng: random.Random) -> Font:
        pool = {"mono": self.mono, "serif": self.serif, "cjk": [self.cjk] if self.cjk else []
                }.get(role) or self.sans
        return _load(rng.choice(pool) if pool else None, size)


@lru_cache(maxsize=256)
def _load(path: str | None, size: int) -> Font:
    if path is not None:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    try:
        return ImageFont.load_default(size)
    except TypeError:  # a PIL without sized default fonts
        return ImageFont.load_default()


@dataclass(frozen=True)
class Theme:
    name: str
    bg: RGB
    panel: RGB
    fg: RGB
    muted: RGB
    accent: RGB


def theme(rng: random.Random) -> Theme:
    accent = rng.choice([(52, 120, 246), (124, 58, 237), (16, 163, 127), (234, 88, 12),
                         (219, 39, 119), (14, 165, 233)])
    if rng.random() < 0.5:
        return Theme("dark", (30, 30, 36), (44, 44, 52), (232, 232, 236), (150, 150, 160),
                     accent)
    return Theme("light", (250, 250, 252), (236, 237, 241), (24, 24, 28), (110, 110, 120),
                 accent)


class Canvas:
    """A picture being drawn, with its theme, fonts and random source."""

    def __init__(self, rng: random.Random, fonts: Fonts, size: tuple[int, int]) -> None:
        self.rng, self.fonts, self.theme = rng, fonts, theme(rng)
        self.w, self.h = size
        self.image = Image.new("RGB", size, self.theme.bg)
        self.draw = ImageDraw.Draw(self.image)
        self.role = rng.choice(["sans", "sans", "serif"])

    def font(self, size: int, role: str | None = None) -> Font:
        return self.fonts.get(role or self.role, size, self.rng)

    def text(self, xy: tuple[int, int], text: str, size: int, fill: RGB | None = None,
             role: str | None = None) -> None:
        self.draw.text(xy, text, fill=fill or self.theme.fg, font=self.font(size, role))

    def title_bar(self, title: str) -> int:
        t = self.theme
        self.draw.rectangle((0, 0, self.w, 34), fill=t.panel)
        for i, c in enumerate([(237, 106, 94), (245, 191, 79), (98, 197, 84)]):
            self.draw.ellipse((12 + 20 * i, 11, 24 + 20 * i, 23), fill=c)
        self.text((90, 8), title, 16)
        return 44

    def filler(self) -> str:
        return self.rng.choice(FILLER)

    def cjk_line(self, xy: tuple[int, int]) -> bool:
        if self.fonts.cjk is None or self.rng.random() > 0.2:
            return False
        self.text(xy, self.rng.choice(CJK_LINES), 18, role="cjk")
        return True


def draw_window(c: Canvas, phrase: str) -> bool:
    y = c.title_bar(f"{phrase.title()} — Notes")
    c.draw.rectangle((0, 34, 180, c.h), fill=c.theme.panel)
    for i in range(8):
        c.text((16, y + 28 * i), c.filler(), 14, c.theme.muted)
    c.text((210, y + 10), c.rng.choice(["Overview", "Project plan", "Weekly review"]), 26)
    for i in range(6):
        c.text((210, y + 60 + 26 * i), f"{c.filler()} · {c.rng.randint(2, 99)} items", 15)
    return c.cjk_line((210, y + 230))


def draw_dialog(c: Canvas, phrase: str) -> bool:
    t = c.theme
    c.draw.rectangle((0, 0, c.w, c.h), fill=tuple(v // 2 + 40 for v in t.bg))
    x0, y0, x1, y1 = c.w // 6, c.h // 5, 5 * c.w // 6, 4 * c.h // 5
    c.draw.rounded_rectangle((x0, y0, x1, y1), 12, fill=t.panel)
    c.text((x0 + 24, y0 + 20), c.rng.choice(["Delete file?", "Unsaved changes",
                                              "Connection lost"]), 22)
    c.text((x0 + 24, y0 + 64), f"The {phrase} will be removed.", 16)
    c.text((x0 + 24, y0 + 92), "This cannot be undone.", 14, t.muted)
    for i, label in enumerate(["Cancel", c.rng.choice(["Delete", "Save", "Retry"])]):
        bx = x1 - 24 - (2 - i) * 110
        c.draw.rounded_rectangle((bx, y1 - 56, bx + 96, y1 - 22), 6,
                                 fill=t.accent if i else t.bg)
        c.text((bx + 16, y1 - 48), label, 15, (255, 255, 255) if i else t.fg)
    return c.cjk_line((x0 + 24, y0 + 120))


def draw_settings(c: Canvas, phrase: str) -> bool:
    t = c.theme
    y = c.title_bar("Settings")
    rows = [c.filler() for _ in range(7)]
    rows[c.rng.randrange(len(rows))] = phrase.capitalize()
    for i, label in enumerate(rows):
        ry = y + 12 + 44 * i
        c.text((32, ry), label, 17)
        on = c.rng.random() < 0.5
        x = c.w - 90
        c.draw.rounded_rectangle((x, ry, x + 44, ry + 22), 11, fill=t.accent if on else t.muted)
        c.draw.ellipse((x + (24 if on else 2), ry + 2, x + (42 if on else 20), ry + 20),
                       fill=(255, 255, 255))
        c.draw.line((24, ry + 34, c.w - 24, ry + 34), fill=t.panel)
    return c.cjk_line((32, c.h - 36))


def draw_chart(c: Canvas, phrase: str) -> bool:
    t, rng = c.theme, c.rng
    c.text((40, 16), phrase.title(), 22)
    x0, y0, x1, y1 = 70, 70, c.w - 180, c.h - 60
    c.draw.line((x0, y1, x1, y1), fill=t.muted, width=2)
    c.draw.line((x0, y0, x0, y1), fill=t.muted, width=2)
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug"][:rng.randint(4, 8)]
    step = (x1 - x0) // len(months)
    series = [[rng.uniform(0.1, 1.0) for _ in months] for _ in range(rng.randint(1, 3))]
    colors = [t.accent, (234, 179, 8), (239, 68, 68)]
    for i, m in enumerate(months):
        c.text((x0 + step * i + step // 3, y1 + 8), m, 13, t.muted)
    for k in range(5):
        c.text((20, y1 - (y1 - y0) * k // 4 - 8), str(25 * k), 12, t.muted)
    bars = rng.random() < 0.5
    for s, values in enumerate(series):
        pts = [(x0 + step * i + step // 2, int(y1 - v * (y1 - y0))) for i, v in enumerate(values)]
        if bars:
            bw = max(4, step // (len(series) + 2))
            for (px, py) in pts:
                bx = px - step // 3 + s * bw
                c.draw.rectangle((bx, py, bx + bw - 2, y1), fill=colors[s])
        else:
            c.draw.line(pts, fill=colors[s], width=3)
    for s in range(len(series)):
        c.draw.rectangle((x1 + 20, y0 + 26 * s, x1 + 34, y0 + 14 + 26 * s), fill=colors[s])
        c.text((x1 + 40, y0 + 26 * s - 2), ["Revenue", "Costs", "Users"][s], 13)
    return c.cjk_line((x1 + 20, y1 - 30))


def draw_code(c: Canvas, phrase: str) -> bool:
    t, rng = c.theme, c.rng
    y = c.title_bar(f"{phrase.split()[0]}.py — Editor")
    names = phrase.split()
    lines = [f"# {phrase}", "", f"def {names[1]}_{names[2]}(items, limit=10):",
             "    total = 0", "    for item in items:", "        total += item.size",
             "        if total > limit:", "            return None", "    return total", "",
             f"class {names[0].capitalize()}Config:", "    enabled = True"]
    size = rng.choice([13, 14, 15, 16])
    for i, line in enumerate(lines[:(c.h - y) // (size + 8)]):
        c.text((12, y + (size + 8) * i), f"{i + 1:>3}", size, t.muted, role="mono")
        c.text((56, y + (size + 8) * i), line, size,
               t.accent if line.lstrip().startswith(("#", "def", "class")) else t.fg, "mono")
    return False


def draw_chat(c: Canvas, phrase: str) -> bool:
    t, rng = c.theme, c.rng
    y = c.title_bar(rng.choice(["Team chat", "Support", "Design sync"]))
    says = ["Did the build pass?", "Yes, shipping at five", f"Remember the {phrase}",
            "Looks good to me", "Can you share the link?", "Done, thanks!"]
    rng.shuffle(says)
    for i, line in enumerate(says[:(c.h - y) // 56]):
        mine = i % 2 == 1
        font = c.font(16)  # one font for the bubble's size and its text
        width = 20 + int(c.draw.textlength(line, font=font))
        x = c.w - width - 24 if mine else 24
        c.draw.rounded_rectangle((x, y + 56 * i, x + width, y + 56 * i + 36), 14,
                                 fill=t.accent if mine else t.panel)
        c.draw.text((x + 10, y + 56 * i + 8), line, font=font,
                    fill=(255, 255, 255) if mine else t.fg)
    return c.cjk_line((24, c.h - 34))


KINDS: dict[str, Callable[[Canvas, str], bool]] = {
    "window": draw_window, "dialog": draw_dialog, "settings": draw_settings,
    "chart": draw_chart, "code": draw_code, "chat": draw_chat}
FOLDERS = ("Projects", "Meetings", "Journal", "Research", "Design", "Support")


def phrases(n: int, rng: random.Random) -> list[str]:
    """n distinct phrases of three distinct uncommon words."""
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        p = " ".join(rng.sample(UNCOMMON, 3))
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def generate(vault: Path, n: int, seed: int = 0, fonts: Fonts | None = None) -> list[Shot]:
    """Write n screenshots and the notes that place them into ``vault``; the ground truth
    goes to ``vault/../shots.json`` as well as being returned."""
    rng = random.Random(seed)
    fonts = fonts or Fonts()
    shots: list[Shot] = []
    for i, phrase in enumerate(phrases(n, rng)):
        kind = rng.choice(list(KINDS))
        c = Canvas(rng, fonts, (rng.choice([720, 900, 1080, 1280]), rng.choice([480, 600, 720])))
        cjk = KINDS[kind](c, phrase)
        folder = f"{rng.choice(FOLDERS)}/{2024 + i % 3}"
        (vault / folder / "attachments").mkdir(parents=True, exist_ok=True)
        name = f"Pasted image 2025{1 + i % 12:02d}{1 + i % 28:02d}{i:06d}.png"
        c.image.save(vault / folder / "attachments" / name, "PNG")
        note = f"{folder}/{kind.title()} {i}.md"
        (vault / note).write_text(
            f"# {kind.title()} {i}\n\nA {kind} captured during the {c.filler().lower()} "
            f"review, kept for later.\n\n![[{name}]]\n\nFollow-up: check it again next "
            f"week with the team.\n", encoding="utf-8")
        shots.append(Shot(f"{folder}/attachments/{name}", note, phrase, kind, c.theme.name,
                          cjk))
    (vault.parent / "shots.json").write_text(json.dumps([asdict(s) for s in shots], indent=1))
    return shots
