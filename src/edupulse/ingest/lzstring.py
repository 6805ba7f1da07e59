"""lz-string's decompressFromBase64 (pieroxy/lz-string, MIT), which older posthog-js versions use for the
`compression=lz64` request bodies. Tested against the lz-string npm package itself (tests/test_lzstring.py)."""

from __future__ import annotations

_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_VALUE = {c: i for i, c in enumerate(_BASE64)}


class LZStringError(ValueError):
    """The text is not lz-string base64 output."""


class _Bits:
    def __init__(self, text: str) -> None:
        try:
            self.values = [_VALUE[c] for c in text]
        except KeyError as exc:
            raise LZStringError(f"{exc.args[0]!r} is not a base64 character") from None
        self.val = self.values[0]
        self.position = 32
        self.index = 1

    def read(self, count: int) -> int:
        bits, power = 0, 1
        for _ in range(count):
            resb = self.val & self.position
            self.position >>= 1
            if self.position == 0:
                self.position = 32
                if self.index >= len(self.values):
                    raise LZStringError("the data ends too early")
                self.val = self.values[self.index]
                self.index += 1
            if resb:
                bits |= power
            power <<= 1
        return bits


def decompress_from_base64(text: str) -> str:
    """The text lz-string's compressToBase64 compressed into `text`; LZStringError when it is not such output."""
    text = text.strip()
    if not text:
        raise LZStringError("no data")
    data = _Bits(text)
    dictionary: list[str] = ["", "", ""]
    first = data.read(2)
    if first == 2:
        return ""
    if first not in (0, 1):
        raise LZStringError("bad header")
    w = chr(data.read(8 if first == 0 else 16))
    dictionary.append(w)
    result = [w]
    enlarge_in, num_bits = 4, 3
    while True:
        if data.index > len(data.values):
            raise LZStringError("the data ends without its end mark")
        code = data.read(num_bits)
        if code in (0, 1):
            dictionary.append(chr(data.read(8 if code == 0 else 16)))
            code = len(dictionary) - 1
            enlarge_in -= 1
        elif code == 2:
            return _utf16("".join(result))
        if enlarge_in == 0:
            enlarge_in = 1 << num_bits
            num_bits += 1
        if code < len(dictionary):
            entry = dictionary[code]
        elif code == len(dictionary):
            entry = w + w[0]
        else:
            raise LZStringError(f"bad back-reference {code}")
        result.append(entry)
        dictionary.append(w + entry[0])
        enlarge_in -= 1
        w = entry
        if enlarge_in == 0:
            enlarge_in = 1 << num_bits
            num_bits += 1


def _utf16(text: str) -> str:
    """JavaScript strings are UTF-16 code units: join the surrogate pairs into characters."""
    try:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        raise LZStringError("the data is not valid UTF-16 text") from None
