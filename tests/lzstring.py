"""LZ-string's compressToBase64, as the Excalidraw plugin writes a drawing's
``compressed-json`` block: a port of lz-string 1.4.4's ``_compress`` (6 bits a character) and
its ``decompressFromBase64``, for tests that write drawings the way the plugin does."""

from __future__ import annotations

_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


class _Bits:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.value = 0
        self.position = 0

    def write(self, value: int, bits: int) -> None:
        for _ in range(bits):
            self.value = (self.value << 1) | (value & 1)
            if self.position == 5:
                self.position = 0
                self.out.append(_KEY[self.value])
                self.value = 0
            else:
                self.position += 1
            value >>= 1


def compress_to_base64(text: str) -> str:
    dictionary: dict[str, int] = {}
    to_create: set[str] = set()
    w = ""
    enlarge_in, dict_size, num_bits = 2, 3, 2
    bits = _Bits()

    def emit_w() -> None:
        nonlocal enlarge_in, num_bits
        if w in to_create:
            code = ord(w[0])
            if code < 256:
                bits.write(0, num_bits)
                bits.write(code, 8)
            else:
                bits.write(1, num_bits)
                bits.write(code, 16)
            enlarge_in -= 1
            if enlarge_in == 0:
                enlarge_in = 2 ** num_bits
                num_bits += 1
            to_create.discard(w)
        else:
            bits.write(dictionary[w], num_bits)
        enlarge_in -= 1
        if enlarge_in == 0:
            enlarge_in = 2 ** num_bits
            num_bits += 1

    for c in text:
        if c not in dictionary:
            dictionary[c] = dict_size
            dict_size += 1
            to_create.add(c)
        wc = w + c
        if wc in dictionary:
            w = wc
            continue
        emit_w()
        dictionary[wc] = dict_size
        dict_size += 1
        w = c
    if w:
        emit_w()
    bits.write(2, num_bits)  # the end of the stream
    while True:  # flush the last character
        bits.value <<= 1
        if bits.position == 5:
            bits.out.append(_KEY[bits.value])
            break
        bits.position += 1
    result = "".join(bits.out)
    return result + "=" * (-len(result) % 4)


def decompress_from_base64(data: str) -> str:
    """The inverse, to check the port against itself (and a drawing's block)."""
    values = [_KEY.index(ch) for ch in data if ch != "="]
    state = {"val": values[0] if values else 0, "pos": 32, "index": 1}

    def read(n: int) -> int:
        out, power = 0, 1
        for _ in range(n):
            bit = state["val"] & state["pos"]
            state["pos"] >>= 1
            if state["pos"] == 0:
                state["pos"] = 32
                state["val"] = values[state["index"]] if state["index"] < len(values) else 0
                state["index"] += 1
            out |= power if bit else 0
            power <<= 1
        return out

    dictionary: list[str] = ["", "", ""]
    enlarge_in, num_bits = 4, 3
    kind = read(2)
    if kind == 2:
        return ""
    c = chr(read(8 if kind == 0 else 16))
    dictionary.append(c)
    w, result = c, [c]
    while True:
        code = read(num_bits)
        if code in (0, 1):
            dictionary.append(chr(read(8 if code == 0 else 16)))
            code = len(dictionary) - 1
            enlarge_in -= 1
        elif code == 2:
            return "".join(result)
        if enlarge_in == 0:
            enlarge_in = 2 ** num_bits
            num_bits += 1
        entry = dictionary[code] if code < len(dictionary) else w + w[0]
        result.append(entry)
        dictionary.append(w + entry[0])
        enlarge_in -= 1
        w = entry
        if enlarge_in == 0:
            enlarge_in = 2 ** num_bits
            num_bits += 1
