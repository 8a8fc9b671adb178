"""Per-process memories that let a steady request skip work it did a moment ago. Pure, no I/O;
not locked (each operation is one dict step, atomic in CPython; an owner with a lock calls them
under it). Both forget everything at once past their size, rather than keep an order.

- BySet: a value computed for a set of entries (a candidate set's cached copies, its context
  effects), handed out again while none of the owner's entries changed (`changed()` moves a
  generation) and until a time the owner gave.
- ByIdentity: a value computed from an object its callers never change (read-only statistics, the
  effects list a cache hands out), remembered by that object's identity and a key. The object is
  held, so its id cannot be reused by another while the value is remembered.
"""

from collections.abc import Callable, Hashable

MAX_SETS = 1024


class BySet:
    def __init__(self, size: int = MAX_SETS):
        self.size = size
        self.generation = 0
        self._sets: dict[Hashable, tuple[int, float, object]] = {}

    def changed(self) -> None:
        self.generation += 1

    def get(self, key: Hashable, now: float):
        """The value kept for `key` if no entry changed since and `now` is before its time; else None."""
        known = self._sets.get(key)
        if known is not None and known[0] == self.generation and now < known[1]:
            return known[2]
        return None

    def keep(self, key: Hashable, generation: int, until: float, value) -> None:
        """Keep `value`, computed from the entries as they stood at `generation`, until `until`."""
        if len(self._sets) >= self.size:
            self._sets.clear()
        self._sets[key] = (generation, until, value)


class ByIdentity:
    def __init__(self, size: int):
        self.size = size
        self._found: dict[tuple[int, Hashable], tuple[object, object]] = {}

    def get(self, owner: object, key: Hashable, compute: Callable[[], object]):
        found = self._found.get((id(owner), key))
        if found is not None and found[0] is owner:
            return found[1]
        value = compute()
        if len(self._found) >= self.size:
            self._found.clear()
        self._found[(id(owner), key)] = (owner, value)
        return value

    def clear(self) -> None:
        self._found.clear()

    def __len__(self) -> int:
        return len(self._found)
