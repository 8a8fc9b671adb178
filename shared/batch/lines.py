"""The lines of one byte range of an uploaded file, as the CSV reader wants them, with byte offsets.

The parallel engine gives each task a byte range of the file; a task must know where every record
starts and ends in bytes, which a text stream cannot say cheaply. `ByteLines` reads the bytes
itself and behaves like csv_io's `_BoundedLines` over a text stream opened with newline="" and
errors="surrogateescape": lines end at \\n, \\r\\n or \\r; a line longer than MAX_LINE_CHARS
characters is dropped (read in bounded pieces, never held whole), given to the reader as empty and
remembered in `overlong`; a UTF-8 BOM at the very start of the file is skipped.

A range [start, end) owns the records that START in it. The task begins at the first line that
starts at or after `start` (`first_line_start`), and stops before the first record that starts at
or after `end`: the caller sets `at_record_start` before asking the CSV reader for a record, so a
record whose quoted field runs over several lines is read to its end even past `end`. Where the
task stopped is `offset`; the next range's task must have started exactly there, which the job
checks (a quoted line break across a boundary makes it rescore the file as one range).
"""

import re
from typing import BinaryIO

from shared.batch.csv_io import MAX_LINE_CHARS

BLOCK_BYTES = 1 << 20
MAX_LINE_BYTES = 4 * MAX_LINE_CHARS + 4  # a line over this many bytes has over MAX_LINE_CHARS characters
_END_OF_LINE = re.compile(rb"\r\n?|\n")


def first_line_start(stream: BinaryIO, start: int) -> int:
    """The offset of the first line that starts at or after `start`; `stream` is positioned at
    `start - 1` (or 0). Lines start after \\n, after \\r\\n, and after a \\r not followed by \\n."""
    if start == 0:
        return 0
    position = start - 1
    previous = b""
    while True:
        block = stream.read(BLOCK_BYTES)
        if not block:
            return position + len(previous)  # no further line: the range is empty
        data = previous + block
        base = position
        for match in _END_OF_LINE.finditer(data):
            if match.group() == b"\r" and match.end() == len(data):
                break  # a \r at the end of what was read may be the first half of \r\n
            if base + match.end() >= start:
                return base + match.end()
        cut = len(data) - 1 if data.endswith(b"\r") else len(data)
        previous = data[cut:]
        position = base + cut


class ByteLines:
    """Decoded lines from `stream` (positioned at `offset`), stopping before a record that starts at
    or after `end` (None: at the end of the file). Lines are split a block at a time (C speed)."""

    def __init__(self, stream: BinaryIO, offset: int, end: int | None = None):
        self.stream = stream
        self.offset = offset  # byte offset of the next line's start
        self.end = end
        self.number = 0
        self.overlong: int | None = None
        self.at_record_start = True
        self.record_offset = offset  # where the record being read started
        self._ready: list[bytes] = []
        self._next = 0
        self._dropped: dict[int, int] = {}  # bytes of an over-long line that were read past, by its index
        self._carry = b""  # the start of a line whose end is not read yet
        self._eof = False
        self._skip_bom = offset == 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self.at_record_start:
            if self.end is not None and self.offset >= self.end:
                raise StopIteration
            self.record_offset = self.offset
            self.at_record_start = False
        if self._next == len(self._ready) and not self._refill():
            raise StopIteration
        line = self._ready[self._next]
        self._next += 1
        self.offset += len(line) + self._dropped.pop(self._next - 1, 0)
        self.number += 1
        if len(line) > MAX_LINE_CHARS:  # a character is at least one byte: only long lines are measured
            content = line.rstrip(b"\r\n")
            if len(content) > MAX_LINE_BYTES or len(content.decode("utf-8", "surrogateescape")) > MAX_LINE_CHARS:
                self.overlong = self.number
                return "\n"
        text = line.decode("utf-8", "surrogateescape")
        if self._skip_bom:  # as the utf-8-sig codec: a BOM at the start of the file is no character
            self._skip_bom = False
            text = text.removeprefix("\ufeff")
        return text

    def _refill(self) -> bool:
        """Split the next block into lines; False at the end of the stream."""
        self._ready, self._next, self._dropped = [], 0, {}
        while not self._ready:
            if self._eof:
                if not self._carry:
                    return False
                self._ready, self._carry = [self._carry], b""
                return True
            block = self.stream.read(BLOCK_BYTES)
            if not block:
                self._eof = True
                continue
            data = self._carry + block
            lines = data.splitlines(keepends=True)
            last = lines[-1]
            # a last line without its terminator, or ending in \r (maybe the first half of \r\n), waits
            self._carry = lines.pop() if not last.endswith(b"\n") else b""
            if len(self._carry) > MAX_LINE_BYTES:
                kept, dropped = self._cut_overlong()
                self._dropped[len(lines)] = dropped
                lines.append(kept)
            self._ready = lines
        return True

    def _cut_overlong(self) -> tuple[bytes, int]:
        """The carried line is over MAX_LINE_BYTES long: keep that much (enough to be reported as
        over-long) and drop the rest of the line, reading it in blocks; (kept, bytes dropped)."""
        kept, rest = self._carry[:MAX_LINE_BYTES], self._carry[MAX_LINE_BYTES:]
        dropped = 0
        while True:
            match = _END_OF_LINE.search(rest)
            if match and (match.end() < len(rest) or match.group() != b"\r"):
                self._carry = rest[match.end() :]
                return kept, dropped + match.end()
            if match is None or match.group() == b"\r" and match.end() == len(rest):
                keep_tail = rest[-1:] if rest.endswith(b"\r") else b""
                dropped += len(rest) - len(keep_tail)
                block = self.stream.read(BLOCK_BYTES)
                if not block:
                    self._eof = True
                    self._carry = b""
                    return kept, dropped + len(keep_tail)
                rest = keep_tail + block
