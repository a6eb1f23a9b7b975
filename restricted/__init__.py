"""The keeper of the MASH restricted file: a store of its own, fed by the hub's
``restricted.file`` queue, that only the holder of the restricted-file key can read.

The hub forwards sealed restricted findings but can never open them, and the keeper needs
nothing of the hub's: not its database, not its keys. ``mash restricted receive`` runs
:class:`~restricted.keeper.Keeper` (verify the hub's signature, write durably, then ack);
``mash restricted read REF`` opens what the store holds with the restricted-file key and
records who read it, as the process's own identity says, in the store's own audit log.

- :mod:`restricted.store`: the keeper's SQLite file (folder 0700, file 0600).
- :mod:`restricted.keeper`: the service on the broker.
- :mod:`restricted.reader`: opening a contact's restricted findings, audited.
"""

from restricted.keeper import Keeper, KeeperSettings
from restricted.reader import ReadRefused, open_restricted, reader_identity
from restricted.store import KeeperStore, KeeperStoreError

__all__ = [
    "Keeper",
    "KeeperSettings",
    "KeeperStore",
    "KeeperStoreError",
    "ReadRefused",
    "open_restricted",
    "reader_identity",
]
