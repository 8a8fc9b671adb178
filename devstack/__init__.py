"""The local stack: emulators, the one-URL gateway and the storage-event bridge."""
