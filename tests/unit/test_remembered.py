"""shared/platform/remembered.py: what a steady request is handed again, and when it is not."""

from shared.platform import remembered


def test_a_set_is_handed_back_until_an_entry_changes_or_its_time_passes_and_the_memory_is_bounded():
    sets = remembered.BySet(size=2)
    sets.keep("a", sets.generation, until=10.0, value=["A"])
    assert sets.get("a", 9.9) == ["A"] and sets.get("a", 10.0) is None
    sets.changed()
    assert sets.get("a", 1.0) is None
    sets.keep("a", sets.generation, 10.0, 1)
    sets.keep("b", sets.generation, 10.0, 2)
    sets.keep("c", sets.generation, 10.0, 3)  # past the size: the others are forgotten together
    assert (sets.get("a", 1.0), sets.get("b", 1.0), sets.get("c", 1.0)) == (None, None, 3)


def test_a_value_is_remembered_by_its_owners_identity_and_key():
    by_identity, calls = remembered.ByIdentity(size=8), []
    owner, twin = [1, 2], [1, 2]

    def compute():
        calls.append(1)
        return sum(owner)

    assert by_identity.get(owner, "k", compute) == 3 and by_identity.get(owner, "k", compute) == 3
    assert len(calls) == 1 and len(by_identity) == 1
    by_identity.get(twin, "k", compute)  # equal but not the same object: computed again
    by_identity.get(owner, "other", compute)
    assert len(calls) == 3
