"""A picture's words are read once per content: copies of a screenshot (the same bytes under
two names) reuse the first copy's words, even while it is still being read, and a copy whose
words and thumbnail exist is not decoded again."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from vaultlens.extract.ocr import OCRError
from vaultlens.index import extractor as extractor_module
from vaultlens.index.catalog import Catalog
from vaultlens.index.datadir import DataDir
from vaultlens.index.extractor import Extractor
from vaultlens.vault.vault import FileKind, VaultFile


class SlowOCR:
    """An OCR pool that takes a while and counts its reads; ``fail`` reads fail."""

    signature = "fake-ocr"

    def __init__(self, fail: int = 0) -> None:
        self.reads = 0
        self.fail = fail
        self.lock = threading.Lock()

    def read(self, image: Any, urgent: bool = False) -> str:
        with self.lock:
            self.reads += 1
            failing = self.reads <= self.fail
        time.sleep(0.3)
        if failing:
            raise OCRError("the OCR worker died")
        return f"words of a {image.size[0]} px picture"


def _vault(tmp_path: Path, names: list[str]) -> list[VaultFile]:
    vault = tmp_path / "vault"
    vault.mkdir()
    im = Image.new("RGB", (300, 120), "white")
    ImageDraw.Draw(im).text((10, 40), "Quarterly report", fill="black")
    out = []
    for name in names:
        im.save(vault / name)
        out.append(VaultFile(name, FileKind.IMAGE, (vault / name).stat().st_size, 0))
    return out


def _extractor(tmp_path: Path, ocr: SlowOCR) -> Extractor:
    data = DataDir(tmp_path / "data")
    data.folder.mkdir(parents=True, exist_ok=True)
    return Extractor(tmp_path / "vault", data, Catalog.open(tmp_path / "c.db"),
                     ocr, False, 10, 30.0)  # type: ignore[arg-type]


def test_copies_read_at_once_are_read_by_ocr_once(tmp_path: Path) -> None:
    files = _vault(tmp_path, ["a.png", "b.png", "c.png"])
    ocr = SlowOCR()
    extractor = _extractor(tmp_path, ocr)
    results: dict[str, Any] = {}
    threads = [threading.Thread(
        target=lambda f=f: results.update({f.path: extractor.read(f, None)})) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    texts = {path: got.ocr_text for path, got in results.items()}
    assert ocr.reads == 1, texts
    assert set(texts.values()) == {"words of a 300 px picture"}
    # the words are cached with the copy that read them, once
    assert sum(len(got.extracts) for got in results.values()) == 1


def test_a_copy_read_later_is_not_decoded_again(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = _vault(tmp_path, ["a.png", "b.png"])
    ocr = SlowOCR()
    extractor = _extractor(tmp_path, ocr)
    assert extractor.read(first, None).ocr_text == "words of a 300 px picture"
    decoded: list[object] = []
    real = extractor_module.open_image
    monkeypatch.setattr(extractor_module, "open_image",
                        lambda source: decoded.append(source) or real(source))
    got = extractor.read(second, None)
    assert (got.outcome, got.ocr_text) == ("read", "words of a 300 px picture")
    assert ocr.reads == 1 and decoded == []


def test_a_failed_read_lets_its_copy_try_again(tmp_path: Path) -> None:
    files = _vault(tmp_path, ["a.png", "b.png"])
    ocr = SlowOCR(fail=1)
    extractor = _extractor(tmp_path, ocr)
    results = []
    threads = [threading.Thread(target=lambda f=f: results.append(extractor.read(f, None)))
               for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ocr.reads == 2
    assert sorted(bool(got.failure) for got in results) == [False, True]
    assert {got.ocr_text for got in results} == {"", "words of a 300 px picture"}
