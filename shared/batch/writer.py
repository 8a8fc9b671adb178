"""Create many flat documents in one atomic commit, with the write protobufs built directly.

The SDK's batch.create() costs about 100 us a document on these machines (proto-plus wrapping of
every field); building the raw protobufs costs a few. The batch scorer creates millions of
episodes, and on two cores the CPU it saves goes to the database.

Same semantics as a WriteBatch of create()s: all or nothing, and the whole commit fails with
google.api_core.exceptions.AlreadyExists (a Conflict) when any document exists.
"""

import datetime

from google.cloud import firestore

from shared import sdk_private


def create_documents(db: firestore.Client, collection: str, documents: dict[str, dict]) -> None:
    """Create `documents` (id -> fields) in `collection`. Field values may be str, int, float,
    bool, None or an aware datetime; anything else is a TypeError naming the field."""
    database = sdk_private.database_path(db)
    prefix = f"{database}/documents/{collection}/"
    request = sdk_private.CommitRequest(database=database)
    for document_id, fields in documents.items():
        write = request.writes.add()
        write.update.name = prefix + document_id
        write.current_document.exists = False
        for name, value in fields.items():
            _set_value(write.update.fields[name], name, value)
    sdk_private.commit_raw(db, request)


def _set_value(target, name: str, value) -> None:
    if value is None:
        target.null_value = 0
    elif isinstance(value, bool):
        target.boolean_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, int):
        target.integer_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, datetime.datetime) and value.tzinfo is not None:
        target.timestamp_value.FromDatetime(value)
    else:
        raise TypeError(f"field {name!r}: {type(value).__name__} is not supported by bulk_create")
