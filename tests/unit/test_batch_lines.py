"""Byte ranges of a file read as the whole file is: ByteLines against the text stream's reader, and
ranges that join up exactly where the records are (shared/batch/lines.py)."""

import io
import random

import pytest

from shared.batch.csv_io import MAX_LINE_CHARS, records, records_of
from shared.batch.lines import ByteLines, first_line_start


def text_records(data: bytes) -> list:
    stream = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", errors="surrogateescape", newline="")
    return list(records(stream))


def byte_records(data: bytes, start: int = 0, end: int | None = None) -> tuple[list, ByteLines]:
    stream = io.BytesIO(data)
    stream.seek(start)
    lines = ByteLines(stream, start, end)
    return list(records_of(lines)), lines


SAMPLES = [
    b"a,b\r\n1,2\r\n3,4\r\n",
    b"\xef\xbb\xbfa,b\n1,2\n\n3,4",  # BOM, blank line, no final newline
    b"a,b\r1,2\r3,4\r",  # old Mac line ends
    b'a,b\n"multi\nline",2\n"x ""quoted"" y",3\n',
    b"a,b\n" + b"y" * 70_000 + b",1\r\nok,2\n",  # an over-long line, then a good one
    b"a,b\nbad\xff,1\n\xe2\x82\xac,2\n",  # undecodable and multi-byte characters
    b'a,b\n"unclosed,1\n' + b"x\n" * 10,
]


@pytest.mark.parametrize("data", SAMPLES)
def test_the_whole_file_reads_as_the_text_stream_reads_it(data):
    found, lines = byte_records(data)
    assert found == text_records(data)
    assert lines.offset == len(data)


def test_a_line_over_the_limit_is_dropped_without_being_held_whole():
    data = b"a,b\n" + b"z" * (20 * 1024 * 1024) + b"\r\nok,1\n"
    found, _ = byte_records(data)
    assert found[1] == (2, found[1][1]) and "longer than" in found[1][1].reason
    assert found[2] == (3, ["ok", "1"])
    exactly = b"a,b\n" + b"z" * MAX_LINE_CHARS + b"\nok,1\n"  # at the limit: kept
    assert byte_records(exactly)[0] == text_records(exactly)


@pytest.mark.parametrize("data", [b"x\ny\n", b"x\r\ny\r\n", b"x\ry\r", b"xy"])
def test_first_line_start_is_the_first_line_at_or_after_the_offset(data):
    starts = [0] + [
        i + 1
        for i in range(len(data))
        if data[i : i + 1] == b"\n" or (data[i : i + 1] == b"\r" and data[i + 1 : i + 2] != b"\n")
    ]
    for offset in range(len(data) + 1):
        stream = io.BytesIO(data)
        stream.seek(max(0, offset - 1))
        expected = min([s for s in starts if s >= offset], default=len(data))
        assert first_line_start(stream, offset) == expected, offset


def split_read(data: bytes, cuts: list[int]) -> tuple[list, list[tuple[int, int, int]]]:
    """Records of the ranges [cuts[i], cuts[i+1]) read as the score tasks read them, with each
    range's (first, end, lines)."""
    found, spans = [], []
    for index, (start, end) in enumerate(zip(cuts, cuts[1:], strict=False)):
        stream = io.BytesIO(data)
        stream.seek(max(0, start - 1))
        first = start if index == 0 else first_line_start(stream, start)
        last = index == len(cuts) - 2
        records_, lines = byte_records(data, first, None if last else end)
        found += [cells for _, cells in records_]
        spans.append((first, lines.offset, lines.number))
    return found, spans


def test_ranges_join_up_and_give_every_record_once():
    rng = random.Random(7)
    rows = [f"{i},{rng.choice(['Asia', '', 'x' * rng.randint(0, 300)])}" for i in range(2000)]
    data = ("a,b\r\n" + "\r\n".join(rows) + "\r\n").encode()
    whole = [cells for _, cells in text_records(data)]
    for parts in (1, 2, 7, 64):
        cuts = [len(data) * k // parts for k in range(parts)] + [len(data)]
        found, spans = split_read(data, cuts)
        assert found == whole
        assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))
        assert sum(lines for _, _, lines in spans) == data.count(b"\n")


def test_a_quoted_line_break_across_a_boundary_shows_as_ranges_that_do_not_join():
    data = b'a,b\n1,"first half\nsecond half"\n2,x\n'
    cut = data.index(b"second")  # inside the quoted field
    _, spans = split_read(data, [0, cut, len(data)])
    assert spans[0][1] != spans[1][0]  # the job sees it and scores the file as one range
    whole, _ = split_read(data, [0, len(data)])
    assert whole == [cells for _, cells in text_records(data)]
