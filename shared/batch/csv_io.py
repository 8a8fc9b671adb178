"""Client CSVs in and out, without I/O of its own: the header understood, each row parsed into a
customer or a rejection, and cells made safe to open in a spreadsheet.

Input: UTF-8 with or without BOM (decode with errors="surrogateescape" so one bad byte rejects
its row, not the file), any line ending, columns in any order, header names trimmed and
case-insensitive, blank lines skipped. Fields are read with the API's own normalisers. Lines
(MAX_LINE_CHARS) and fields (MAX_FIELD_CHARS) are bounded, so memory is bounded whatever the file
holds: an over-long line or field rejects its record (or, on the header, the file) and names why.

Output cells never start a formula: a cell beginning with = + - @ TAB or CR gets a leading
apostrophe (OWASP's CSV-injection rule). It applies to every cell alike, numbers included, so a
customer id "-42" is written as "'-42"; all our own cells (offers, dates, ids, counts) never start
with those characters, so in practice only client-supplied text and product names change.
"""

import csv
import io
import operator
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from pydantic import TypeAdapter, ValidationError

from shared.batch.rules import OFFER_COLUMN, ClientRules
from shared.customer import segments
from shared.customer.models import Timestamp, parse_age, parse_flag, parse_gender, parse_region

REQUIRED = ("customer_id", "age", "gender", "region")
OPTIONAL = ("timestamp",)
MAX_CUSTOMER_ID = 128
MAX_LINE_CHARS = 64 * 1024
MAX_FIELD_CHARS = 64 * 1024  # a runaway quoted field (over several lines) fails its row
MEMO_ENTRIES = 10_000  # parsed cells remembered per file (ages, genders, regions, dates, flags repeat)
RESULT_HEADER = (
    "customer_id",
    *(f"offer_{r}" for r in range(1, segments.SLATE_SIZE + 1)),
    *(f"product_{r}" for r in range(1, segments.SLATE_SIZE + 1)),
    "episode_id",
    "response_date",
)
ERROR_HEADER = ("line", "customer_id", "reason")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_timestamp = TypeAdapter(Timestamp)


class FileError(ValueError):
    """The file as a whole cannot be scored (e.g. its header lacks a required column)."""


@dataclass(frozen=True)
class Layout:
    """Where each field sits in a row, from the header."""

    width: int
    fields: dict[str, int]
    offers: tuple[tuple[str, int], ...]  # (OFFER_n, index), by offer number
    extras: tuple[tuple[str, int], ...]  # other columns, kept in the episode's states


@dataclass(slots=True)
class Customer:
    line: int
    customer_id: str
    timestamp: str | None
    age: float
    gender: str
    region: str
    states: dict
    eligible: list[str]


@dataclass(slots=True)
class Rejected:
    line: int
    customer_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A record the CSV reader could not turn into cells, and why."""

    reason: str


class _BoundedLines:
    """The text's lines, none longer than MAX_LINE_CHARS: the rest of a longer line is read in
    bounded pieces and dropped, the line is given to the CSV reader as empty and remembered."""

    def __init__(self, text: TextIO):
        self.text = text
        self.number = 0
        self.overlong: int | None = None  # the number of the last over-long line not yet reported

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.text.readline(MAX_LINE_CHARS + 1)
        if not line:
            raise StopIteration
        self.number += 1
        if len(line) > MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            while (rest := self.text.readline(MAX_LINE_CHARS)) and not rest.endswith(("\n", "\r")):
                pass
            self.overlong = self.number
            return "\n"
        return line


def records(text: TextIO) -> Iterator[tuple[int, list[str] | Unreadable]]:
    """(line number, cells) for every non-blank record; Unreadable when the record is malformed."""
    return records_of(_BoundedLines(text))


def records_of(lines) -> Iterator[tuple[int, list[str] | Unreadable]]:
    """records() over a line source that bounds its lines itself (`_BoundedLines`, or
    shared/batch/lines.py's `ByteLines`, told where each record starts through `at_record_start`)."""
    reader = csv.reader(lines, strict=False)
    while True:
        lines.at_record_start = True
        limit = csv.field_size_limit(MAX_FIELD_CHARS)  # the limit is the csv module's global: restored
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            cells = Unreadable(f"malformed CSV record (unbalanced quotes or a field over {MAX_FIELD_CHARS} characters)")
        finally:
            csv.field_size_limit(limit)
        if lines.overlong is not None:
            cells = Unreadable(f"line {lines.overlong} is longer than {MAX_LINE_CHARS} characters")
            lines.overlong = None
        if isinstance(cells, Unreadable) or any(cell.strip() for cell in cells):
            yield reader.line_num, cells


def read_layout(header: list[str] | Unreadable) -> Layout:
    if isinstance(header, Unreadable):
        raise FileError(f"no header row: {header.reason}")
    if _UNDECODABLE.search("".join(header)):
        raise FileError("the header is not valid UTF-8")
    names = [name.strip().lower() for name in header]
    duplicates = sorted({name for name in names if name and names.count(name) > 1})
    if duplicates:
        raise FileError(f"duplicate columns: {', '.join(duplicates)}")
    missing = [name for name in REQUIRED if name not in names]
    if len(missing) == len(REQUIRED):
        raise FileError(
            f"no header row: the first line must name the columns ({', '.join(REQUIRED)}, OFFER_1, ...); "
            f"it holds: {', '.join(names)[:300]}"
        )
    if missing:
        raise FileError(f"missing columns: {', '.join(missing)} (the header has: {', '.join(names)[:300]})")
    offers = sorted(
        ((name.upper(), index) for index, name in enumerate(names) if OFFER_COLUMN.match(name)),
        key=lambda item: int(item[0].split("_")[1]),
    )
    if not offers:
        raise FileError("no offer columns (OFFER_1, OFFER_2, ...)")
    known = set(REQUIRED) | set(OPTIONAL)
    fields = {name: index for index, name in enumerate(names) if name in known}
    extras = tuple(
        (name, index) for index, name in enumerate(names) if name and name not in known and not OFFER_COLUMN.match(name)
    )
    return Layout(len(header), fields, tuple(offers), extras)


@dataclass
class RowParser:
    """Parses the rows of one file; remembers parsed cells per (column, spelling), since ages,
    genders, regions, dates and flags repeat on almost every row of a big file. Errors are not
    remembered and the memo is bounded (MEMO_ENTRIES)."""

    layout: Layout
    rules: ClientRules
    memo: dict[tuple, object] = field(default_factory=dict)
    _flag_cells: object = field(default=None, repr=False)

    def parse(self, line: int, cells: list[str] | Unreadable) -> Customer | Rejected:
        layout = self.layout
        if isinstance(cells, Unreadable):
            return Rejected(line, "", cells.reason)
        id_index = layout.fields["customer_id"]
        customer_id = cells[id_index].strip() if len(cells) > id_index else ""
        if _UNDECODABLE.search("".join(cells)):
            return Rejected(line, customer_id, "not valid UTF-8")
        if len(cells) < layout.width or any(cell.strip() for cell in cells[layout.width :]):
            return Rejected(line, customer_id, f"has {len(cells)} fields, the header has {layout.width}")
        if not customer_id:
            return Rejected(line, customer_id, "customer_id: missing")
        if len(customer_id) > MAX_CUSTOMER_ID:
            return Rejected(
                line, customer_id[:MAX_CUSTOMER_ID], f"customer_id: longer than {MAX_CUSTOMER_ID} characters"
            )
        try:
            age = self._field(cells, "age", parse_age)
            gender = self._field(cells, "gender", parse_gender)
            region = self._field(cells, "region", parse_region)
            timestamp = (
                self._field(cells, "timestamp", _timestamp.validate_python) if "timestamp" in layout.fields else None
            )
            offered = self._offered(cells)
        except ValueError as error:
            return Rejected(line, customer_id, str(error))
        eligible = self.rules.eligible(offered, age, gender, region)
        if not eligible:
            reason = "no eligible offer" + (" after the client's rules" if offered else ": every offer flag is false")
            return Rejected(line, customer_id, reason)
        states = {
            "age": age,
            "gender": gender,
            "region": region,
            **{name: cells[index].strip() for name, index in layout.extras},
        }
        return Customer(line, customer_id, timestamp, age, gender, region, states, eligible)

    def _field(self, cells: list[str], name: str, parse):
        value = cells[self.layout.fields[name]]
        known = self.memo.get((name, value))
        if known is not None:
            return known
        if not value.strip():
            raise ValueError(f"{name}: missing")
        try:
            parsed = parse(value)
        except (ValueError, ValidationError) as error:
            message = (
                error.errors()[0]["msg"].removeprefix("Value error, ")
                if isinstance(error, ValidationError)
                else str(error)
            )
            raise ValueError(f"{name} {_shown(value)}: {message}") from None
        self._remember((name, value), parsed)
        return parsed

    def _offered(self, cells: list[str]) -> list[str]:
        """The offers flagged true, remembered per spelling of the whole set of flags."""
        if self._flag_cells is None:
            self._flag_cells = operator.itemgetter(*(index for _, index in self.layout.offers))
        flags = self._flag_cells(cells)
        known = self.memo.get(("offered", flags))
        if known is None:
            known = [offer for offer, index in self.layout.offers if self._flag(offer, cells[index])]
            self._remember(("offered", flags), known)
        return known

    def _flag(self, offer: str, value: str) -> bool:
        known = self.memo.get(("flag", value))
        if known is not None:
            return known
        try:
            flag = parse_flag(value)
        except ValueError:
            raise ValueError(f"{offer} {_shown(value)}: must be true or false") from None
        self._remember(("flag", value), flag)
        return flag

    def _remember(self, key: tuple, value) -> None:
        if len(self.memo) < MEMO_ENTRIES:
            self.memo[key] = value


def _shown(value: str) -> str:
    return repr(value.strip()[:40])


def safe_cell(value) -> str:
    text = "" if value is None else str(value)
    if _UNDECODABLE.search(text):
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_bytes(rows: Iterable[Iterable], header: Iterable[str] | None = None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows([safe_cell(cell) for cell in row] for row in rows)
    return buffer.getvalue().encode("utf-8")
