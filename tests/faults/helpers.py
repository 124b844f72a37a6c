"""Builders of hostile inputs shared by the fault tests."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path


def bomb_png(path: Path, side: int = 30000) -> Path:
    """A valid 1-bit PNG of side x side black pixels: ~109 KB on disk for 30000 (900 megapixels)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    c = zlib.compressobj(9)
    rows_per_block = 1000
    idat = b"".join(c.compress(row * min(rows_per_block, side - i)) for i in range(0, side, rows_per_block))
    idat += c.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def yaml_bomb(levels: int = 9, width: int = 9) -> str:
    """A "billion laughs" flow list: `levels` anchors, each a list of `width` aliases of the previous one
    (9 x 9: under 500 bytes that stand for 9**9 = 387 million strings once expanded)."""
    items = ["&a0 [" + ",".join(["lol"] * width) + "]"]
    items += [f"&a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "[" + ", ".join(items) + "]"


def one_error_line(capsys) -> str:
    """The single `gankit: error:` line the CLI printed to stderr (asserting there is exactly one line)."""
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("gankit: error:")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]
