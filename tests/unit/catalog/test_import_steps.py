"""An import's text is decoded and split a step at a time (so that a 40 MB line never holds the GIL against the
event loop for long): the result must be exactly what one whole decode and a line reader give."""

import io
import random

import pytest

from trooply.catalog import imports
from trooply.errors import InvalidRequest

PIECES = ("ab", "\r", "\n", "\r\n", "é", "€", "😀", "x" * 9)
BAD = (b"\xff", b"\x80", b"\x80\x80\x80\x80\x80", b"\xe2\x82", b"\xc3", b"\xf0\x9f\x98")


def _decoded(data: bytes) -> tuple[str, object]:
    try:
        return "text", data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return "byte", error.start


def _ours(data: bytes) -> tuple[str, object]:
    try:
        return "text", imports.decode_text(data)
    except InvalidRequest as error:
        assert error.code == "invalid_import_file"
        return "byte", int(error.message.rsplit("byte ", 1)[1].rstrip(")"))


@pytest.mark.parametrize("step", [5, 6, 7, 8, 13])
def test_steps_give_the_lines_and_the_decoding_of_the_whole_text(monkeypatch, step: int) -> None:
    monkeypatch.setattr(imports, "_STEP", step)
    rng = random.Random(step)
    for _ in range(3000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 30)))
        assert list(imports._lines_of(text)) == list(io.StringIO(text, newline=""))
        data = text.encode()
        for _ in range(rng.choice((0, 0, 1, 2))):
            at = rng.randrange(len(data) + 1)
            data = data[:at] + rng.choice(BAD) + data[at:]
        if rng.random() < 0.2:
            data = b"\xef\xbb\xbf" + data  # a BOM: dropped, and the byte of an error counted after it
        assert _ours(data) == _decoded(data), data


def test_a_line_many_steps_long_comes_back_whole(monkeypatch) -> None:
    monkeypatch.setattr(imports, "_STEP", 1024)
    line = "[" + "1," * 50_000 + "1]"
    text = '{"id": "a"}\r\n' + line + "\r" + line + "\n" + "x"
    assert list(imports._lines_of(text)) == ['{"id": "a"}\r\n', line + "\r", line + "\n", "x"]
    assert imports.decode_text(("é" * 3000).encode()) == "é" * 3000
