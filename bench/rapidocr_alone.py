"""RapidOCR alone, the baseline of screenshots_bench.py: one process reading its share of a
list of images (every ``procs``-th from ``index``), one onnxruntime thread, as the daemon's
bulk OCR workers. Prints a JSON list of [image, text]. It imports nothing of vaultlens: the
daemon's OCR workers are fresh processes too. SETTINGS (JSON, optional): RapidOCR's keyword
arguments beyond its defaults (the bench passes the daemon's for ``--baseline-settings
daemon``).

    python bench/rapidocr_alone.py LISTFILE INDEX PROCS [SETTINGS]
"""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
from PIL import Image
from rapidocr_onnxruntime import RapidOCR


def main() -> None:
    listfile, index, procs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    settings = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    for name in ("RapidOCR", "rapidocr_onnxruntime", "onnxruntime"):
        logging.getLogger(name).setLevel(logging.WARNING)
    engine = RapidOCR(intra_op_num_threads=1, **settings)
    with open(listfile, encoding="utf-8") as fh:
        paths = fh.read().splitlines()[index::procs]
    out = []
    for path in paths:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        result, _ = engine(np.ascontiguousarray(rgb[:, :, ::-1]))  # it expects BGR
        out.append([path, " ".join(r[1] for r in result or [])])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
