"""bench/shots.py's generated screenshots, and bench/screenshots_bench.py end to end on three."""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import shots  # noqa: E402


def digest(vault: Path) -> dict[str, str]:
    return {str(p.relative_to(vault)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(vault.rglob("*")) if p.is_file()}


def test_the_same_seed_makes_the_same_vault_and_another_seed_another(tmp_path: Path) -> None:
    fonts = shots.Fonts()
    made = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        (tmp_path / name / "vault").mkdir(parents=True)
        made[name] = shots.generate(tmp_path / name / "vault", 8, seed, fonts)
    assert made["a"] == made["b"]
    assert digest(tmp_path / "a" / "vault") == digest(tmp_path / "b" / "vault")
    assert [s.phrase for s in made["a"]] != [s.phrase for s in made["c"]]
    assert digest(tmp_path / "a" / "vault") != digest(tmp_path / "c" / "vault")


def test_each_screenshot_decodes_is_placed_by_its_note_and_has_its_phrase(tmp_path: Path
                                                                         ) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    made = shots.generate(vault, 24, 3)
    truth = json.loads((tmp_path / "shots.json").read_text())
    assert [t["phrase"] for t in truth] == [s.phrase for s in made]
    assert len({s.phrase for s in made}) == len(made)
    assert len({s.kind for s in made}) >= 4 and {s.theme for s in made} == {"light", "dark"}
    for s in made:
        with Image.open(vault / s.image) as im:
            im.load()
            assert im.width >= 700 and im.height >= 480
            assert len(im.getcolors(1 << 20) or []) > 3  # something is drawn on it
        note = (vault / s.note).read_text(encoding="utf-8")
        placed = re.findall(r"!\[\[(Pasted image \d{14}\.png)\]\]", note)
        assert placed == [Path(s.image).name]
        assert Path(s.note).parent == Path(s.image).parent.parent
        assert len(s.phrase.split()) == 3 and all(w in shots.UNCOMMON for w in s.phrase.split())
        # only the picture's words can find it: the note's paragraphs do not say the phrase
        assert s.phrase not in note
        assert not any(w in note for w in s.phrase.split())


def test_a_missing_font_falls_back_to_pils_own(tmp_path: Path) -> None:
    fonts = shots.Fonts()
    fonts.sans, fonts.serif, fonts.mono, fonts.cjk = ["/nonexistent/Font.ttf"], [], [], None
    vault = tmp_path / "vault"
    vault.mkdir()
    made = shots.generate(vault, 6, 1, fonts)
    assert all((vault / s.image).stat().st_size > 0 for s in made)
    assert not any(s.cjk for s in made)


def test_the_process_tree_rss_includes_children() -> None:
    import screenshots_bench

    code = "b = bytearray(80 << 20); b[::4096] = b'x' * len(b[::4096]); print(1, flush=True); " \
        "input()"
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "1\n"
        assert child.pid in screenshots_bench.tree_pids(os.getpid())
        assert screenshots_bench.rss_mb(child.pid) > 70
        alone = sum(int(line.split()[1]) for line in Path("/proc/self/status").read_text()
                    .splitlines() if line.startswith("VmRSS:")) / 1024
        assert screenshots_bench.rss_mb(os.getpid()) > alone + 70
    finally:
        child.kill()
        child.wait()


@pytest.mark.slow
def test_the_bench_measures_three_screenshots_end_to_end(tmp_path: Path) -> None:
    """About 20-40 s on 2 cores (RapidOCR alone, then a daemon with e5-small)."""
    # found, not imported: RapidOCR runs in the bench's own processes (imported here, after
    # the libraries pytest has loaded, it crashed the process)
    if importlib.util.find_spec("rapidocr_onnxruntime") is None:
        pytest.skip("rapidocr_onnxruntime is not installed")
    import screenshots_bench

    args = argparse.Namespace(n=3, seed=0, model="e5-small", sample=200, qps=2.0, rest_s=0.5,
                              max_minutes=3.0, port=None, skip_baseline=False, baseline_n=0,
                              baseline_settings="daemon")
    res = screenshots_bench.run(args, tmp_path)
    assert res["finished"] and res["sample"] == 3
    assert res["rapidocr_phrase_read"] > 0.5
    assert res["top3"] > 0.5
    assert res["peak_rss_mb"] >= res["daemon_rest_rss_mb"] > 50
    assert res["rest_rss_mb"] >= res["daemon_rest_rss_mb"]
    assert res["rapidocr_settings"] == "daemon"
    assert res["peak_ocr_worker_mb"] > 50 and res["rest_ocr_workers_mb"]  # the urgent one
    assert res["shots_per_s"] > 0 and res["throughput_ratio"] > 0
    # the daemon's tree includes its model and OCR workers' work: more than OCR alone
    assert res["daemon_cpu_s"] > res["rapidocr_cpu_s_per_shot"] * 3 > 0
    assert res["cpu_ratio"] > 0
    assert "ocr" in res["stage_s"] and res["ocr_images"] == 3
    assert res["index_kb_per_shot"] > 0
    table = screenshots_bench.table(res)
    assert "top-1" in table and "RapidOCR alone" in table
