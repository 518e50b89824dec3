"""Sample files of the kinds a vault shows beyond notes, images and PDFs, written as the tools
write them: a JSON Canvas board (Obsidian), Excalidraw drawings (the plugin's markdown, with a
compressed and a plain drawing), SVGs as draw.io and Mermaid export them, an icon, and hostile
SVGs. Each carries words no other file has, so a search for them names one file."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

from lzstring import compress_to_base64

# words only the drawings' data hold: a search for them must find nothing
HIDDEN = "zebracornmarker"
HIDDEN_PLAIN = "quokkasaxophone"

CARD = ("Every night the reconciliation job settles card refunds with the acquiring bank "
        "before the ledger closes.")
DRAWIO_LABEL = "Billing reconciler"
MERMAID_WORDS = ("Customer checkout", "Payment gateway")


def picture(path: Path, colour: tuple[int, int, int]) -> None:
    """A wordless screenshot-like PNG: found by what surrounds it, never by OCR."""
    im = Image.new("RGB", (640, 400), (250, 250, 250))
    draw = ImageDraw.Draw(im)
    draw.rectangle((40, 40, 600, 120), fill=colour)
    draw.ellipse((200, 180, 440, 360), outline=(30, 30, 30), width=6)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def canvas() -> str:
    """Obsidian's own layout: tabs, one node or edge a line."""
    nodes = [
        {"id": "6f0ad84f44ce9c17", "type": "group", "x": -80, "y": -80, "width": 1100,
         "height": 560, "label": "Payments pipeline"},
        {"id": "0b1c3d1e2f4a5b6c", "type": "text", "text": CARD, "x": 0, "y": 0,
         "width": 360, "height": 140},
        {"id": "a3c0b2d9e8f71654", "type": "file", "file": "Attachments/refund-dashboard.png",
         "x": 480, "y": 0, "width": 480, "height": 300},
        {"id": "c91f2e07d65b4a38", "type": "file", "file": "Plans/Roadmap.md",
         "subpath": "#Goals", "x": 0, "y": 220, "width": 360, "height": 200},
        {"id": "d2e4f6a8b0c1d3e5", "type": "text",
         "text": "## Lighthouse\nA far away card about **tide tables** and harbour pilots.",
         "x": 4000, "y": 4000, "width": 300, "height": 120},
        {"id": "e5f7a9b1c3d5e7f9", "type": "link", "url": "https://example.com/settlement",
         "x": 4000, "y": 0, "width": 300, "height": 80},
    ]
    edges = [{"id": "f1e2d3c4b5a69788", "fromNode": "0b1c3d1e2f4a5b6c", "fromSide": "right",
              "toNode": "a3c0b2d9e8f71654", "toSide": "left", "label": "shown on the dashboard"}]
    lines = ['{\n\t"nodes":[']
    lines.append(",\n".join("\t\t" + json.dumps(n, separators=(",", ":")) for n in nodes))
    lines.append('\t],\n\t"edges":[')
    lines.append(",\n".join("\t\t" + json.dumps(e, separators=(",", ":")) for e in edges))
    lines.append("\t]\n}")
    return "\n".join(lines)


def _scene(words: str) -> str:
    """An Excalidraw scene: its text elements, and one deleted element whose words the
    drawing data keeps but the Text Elements section does not."""
    elements = [
        {"type": "text", "id": "Xk3hd9Aa", "x": 10, "y": 10, "text": "Quarterly capacity forecast",
         "originalText": "Quarterly capacity forecast", "isDeleted": False},
        {"type": "text", "id": "Zq81LmNo", "x": 10, "y": 90, "text": words,
         "originalText": words, "isDeleted": True},
        {"type": "image", "id": "Im5gE1ab", "fileId": "5e9f0c1d2b3a4e5f6a7b8c9d0e1f2a3b4c5d6e7f",
         "x": 300, "y": 10, "width": 320, "height": 200},
    ]
    return json.dumps({"type": "excalidraw", "version": 2,
                       "source": "https://github.com/zsviczian/obsidian-excalidraw-plugin",
                       "elements": elements, "appState": {"viewBackgroundColor": "#ffffff"},
                       "files": {}}, indent="\t")


def packed_word() -> str:
    """The first word of the compressed drawing (the data as a search would tokenise it)."""
    packed = compress_to_base64(_scene(HIDDEN))
    return packed[: next((i for i, ch in enumerate(packed) if not ch.isalnum()), len(packed))]


def drawing(compressed: bool) -> str:
    scene = _scene(HIDDEN if compressed else HIDDEN_PLAIN)
    if compressed:
        packed = compress_to_base64(scene)
        chunks = "\n\n".join(packed[i : i + 256] for i in range(0, len(packed), 256))
        body = f"%%\n## Drawing\n```compressed-json\n{chunks}\n```\n%%"
        heading = "##"
    else:  # older versions: level-one headings and the scene as plain JSON
        body = f"%%\n# Drawing\n```json\n{scene}\n```\n%%"
        heading = "#"
    return (
        "---\n\nexcalidraw-plugin: parsed\ntags: [excalidraw]\n\n---\n"
        "==⚠  Switch to EXCALIDRAW VIEW in the MORE OPTIONS menu of this document. ⚠== "
        "You can decompress Drawing data with the command palette: 'Decompress current "
        "Excalidraw file'. For more info check in plugin settings under 'Saving'\n\n\n"
        f"# Excalidraw Data\n\n{heading} Text Elements\nQuarterly capacity forecast ^Xk3hd9Aa\n\n"
        "Kafka ingestion tier sized for peak season ^Lm2Np4Qr\n\n"
        f"{heading} Embedded Files\n"
        "5e9f0c1d2b3a4e5f6a7b8c9d0e1f2a3b4c5d6e7f: [[whiteboard.png]]\n\n"
        f"{body}\n"
    )


DRAWIO = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<!-- Do not edit this file with editors other '
    'than draw.io -->\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
    '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
    'version="1.1" width="321px" height="81px" viewBox="-0.5 -0.5 321 81" '
    'content="&lt;mxfile&gt;&lt;diagram&gt;compressedmodel&lt;/diagram&gt;&lt;/mxfile&gt;">'
    '<defs/><g><rect x="0" y="0" width="120" height="60" rx="9" fill="#dae8fc" '
    'stroke="#6c8ebf" pointer-events="all"/><g transform="translate(-0.5 -0.5)"><switch>'
    '<foreignObject pointer-events="none" width="100%" height="100%" requiredFeatures='
    '"http://www.w3.org/TR/SVG11/feature#Extensibility" style="overflow: visible;">'
    '<div xmlns="http://www.w3.org/1999/xhtml" style="display: flex;"><div style="box-sizing:'
    ' border-box;"><div style="display: inline-block;">Billing <b>reconciler</b></div></div>'
    f'</div></foreignObject><text x="60" y="34" font-size="12px">{DRAWIO_LABEL}</text>'
    '</switch></g><path d="M 120 30 L 193.63 30" fill="none" stroke="#000000"/></g><switch>'
    '<g requiredFeatures="http://www.w3.org/TR/SVG11/feature#Extensibility"/><a '
    'transform="translate(0,-5)" xlink:href="https://www.drawio.com/doc/faq/svg-export-text-'
    'problems" target="_blank"><text text-anchor="middle" font-size="10px" x="50%" y="100%">'
    'Text is not SVG - cannot display</text></a></switch></svg>\n'
)

MERMAID = (
    '<svg aria-roledescription="flowchart-v2" role="graphics-document document" '
    'viewBox="-8 -8 420 120" style="max-width: 420px;" xmlns="http://www.w3.org/2000/svg" '
    'width="100%" id="mermaid-1712"><style>#mermaid-1712{font-family:"trebuchet ms";}</style>'
    '<g><g class="nodes"><g class="node default" id="flowchart-A-0"><rect class="basic '
    'label-container" width="160" height="40"/><g class="label"><foreignObject width="140" '
    'height="24"><div xmlns="http://www.w3.org/1999/xhtml" style="display: inline-block;">'
    f'<span class="nodeLabel">{MERMAID_WORDS[0]}</span></div></foreignObject></g></g>'
    '<g class="node default" id="flowchart-B-1"><rect width="160" height="40"/>'
    f'<text y="-10.1" class="label"><tspan class="text-outer-tspan" x="0" y="-0.1em">'
    f'<tspan class="text-inner-tspan">{MERMAID_WORDS[1]}</tspan></tspan></text></g></g></g>'
    '</svg>\n'
)

ICON = ('<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24" '
        'fill="none" stroke="currentColor" stroke-width="2"><circle cx="12" cy="12" r="3"/>'
        '<path d="M19.4 15a1.65 1.65 0 0 0 .33 1.82l.06.06a2 2 0 0 1-2.83 2.83"/></svg>\n')

# a logo whose letters are outlines: real content, no text elements
OUTLINED = ('<svg xmlns="http://www.w3.org/2000/svg" width="400" height="120" '
            'viewBox="0 0 400 120"><path d="M10 10 L390 10 L390 110 L10 110 Z" fill="#333"/>'
            '<circle cx="60" cy="60" r="40" fill="#fc0"/></svg>\n')

LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE svg [\n<!ENTITY lol "lol">\n'
          + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
                    for i in range(1, 10))
          + ']>\n<svg xmlns="http://www.w3.org/2000/svg"><text>&lol9;</text></svg>\n')

EXTERNAL = ('<?xml version="1.0"?>\n<!DOCTYPE svg [<!ENTITY secret SYSTEM '
            '"file:///etc/hostname">]>\n<svg xmlns="http://www.w3.org/2000/svg">'
            '<text>&secret; leaked</text></svg>\n')


def write_vault(vault: Path) -> None:
    """Every sample, with a note so the vault is not notes-free."""
    (vault / "Plans").mkdir(parents=True, exist_ok=True)
    (vault / "Plans" / "Roadmap.md").write_text("# Roadmap\n\n## Goals\n\nShip the garden "
                                                "planner before spring.\n")
    picture(vault / "Attachments" / "refund-dashboard.png", (90, 140, 200))
    picture(vault / "Drawings" / "whiteboard.png", (200, 120, 60))
    (vault / "Boards").mkdir(exist_ok=True)
    (vault / "Boards" / "Payments.canvas").write_text(canvas())
    (vault / "Boards" / "Broken.canvas").write_text(canvas()[:300])
    (vault / "Drawings" / "Capacity.excalidraw.md").write_text(drawing(compressed=True))
    (vault / "Drawings" / "Legacy.excalidraw.md").write_text(drawing(compressed=False))
    (vault / "Diagrams").mkdir(exist_ok=True)
    (vault / "Diagrams" / "billing.drawio.svg").write_text(DRAWIO)
    (vault / "Diagrams" / "checkout.svg").write_text(MERMAID)
    (vault / "Diagrams" / "laughs.svg").write_text(LAUGHS)
    (vault / "Diagrams" / "entity.svg").write_text(EXTERNAL)
    (vault / "icons").mkdir(exist_ok=True)
    (vault / "icons" / "settings-gear.svg").write_text(ICON)
