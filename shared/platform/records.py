"""Typed records from stored documents, one reader for every product: a record (a frozen dataclass)
takes each field from the document's field of the same name. A document written before a field
existed lacks it: the field's default applies, and a record whose older documents need more than a
default (a value derived from other fields) passes it in `given`."""

import dataclasses
from collections.abc import Mapping
from typing import TypeVar

Record = TypeVar("Record")


def from_document(cls: type[Record], document: Mapping, **given) -> Record:
    """`cls` with the `given` values, the rest read from `document` by name; KeyError names a field
    the document lacks that has no default."""
    values = dict(given)
    for field in dataclasses.fields(cls):
        if field.name in values:
            continue
        if field.name in document:
            values[field.name] = document[field.name]
        elif field.default is not dataclasses.MISSING:
            values[field.name] = field.default
        else:
            raise KeyError(field.name)
    return cls(**values)
