"""The root of every mash-hub exception, and the one a handler raises to dead-letter a message.

Every exception the project defines descends from :class:`MashError`, so a caller that only
needs "mash-hub said no" catches one class: the ``mash`` command prints such an error as one
line and exits with its :attr:`~MashError.exit_code`, never with a traceback. Where callers
rely on a builtin's meaning (a bad value, a lost connection, a timeout) the class keeps that
builtin as a second base. A message handler that finds its message bad raises
:class:`Rejected` (or a subclass): it is the only exception the consumer turns into a dead
letter, with its ``reason`` in the headers (``broker.consumer``).

This module imports nothing, so any package may import it without a cycle, and
``mash --help`` stays cheap. The tree (module, then the builtin kept as a second base)::

    MashError
    ├── Rejected                      mash.errors      a message to dead-letter with a reason
    │   ├── DecodeError               schemas.codec    ValueError
    │   └── SignatureRefused          broker.signing
    ├── SettingsInvalid               broker.settings  ValueError   (exit code 2)
    ├── FileRefused                   broker.files     ValueError
    ├── BrokerConfigError             broker.connection ValueError
    ├── BrokerRefused                 broker.connection ConnectionError
    ├── BrokerUnreachable             ops.connection   ConnectionError
    ├── ConsumeRefused                broker.consumer  PermissionError
    ├── TopologyRefused               broker.topology  PermissionError
    ├── TopologyConflict              broker.topology  ValueError
    ├── TracingSettingsInvalid        telemetry.otel   ValueError   (exit code 2)
    ├── PublishFailed                 broker.publisher RuntimeError
    │   └── PublishRefused            broker.publisher
    ├── ProvisionError                broker.provision RuntimeError
    ├── ManagementRefused             broker.stats     ValueError
    ├── KeyringError                  broker.keyring   ValueError
    │   └── SigningKeyUnavailable     broker.signing
    ├── SealError                     broker.sealed    ValueError
    ├── SchemaSourceError             schemas.registry ValueError
    ├── EvolutionError                schemas.evolution ValueError
    ├── ContactFileError              hub.intake       ValueError   (exit code 2)
    ├── OutOfBounds                   hub.intake       ValueError
    ├── HubDidNotAnswer               hub.client       TimeoutError (exit code 3)
    ├── InstanceRefused               hub.instance     RuntimeError
    ├── CheckpointError               hub.audit        ValueError
    ├── StoreError                    hub.store        RuntimeError
    │   ├── DatabaseFault             hub.store
    │   └── RefsNotReserved           hub.store
    ├── NotFound                      ops.deadletters  LookupError
    ├── ReadRefused                   restricted.reader
    ├── KeeperStoreError              restricted.store
    ├── UnknownAgency                 adapters.registry LookupError
    ├── ExportError                   adapters.kit.matching ValueError
    ├── HarnessError                  adapters.kit.harness RuntimeError
    ├── ScaffoldError                 adapters.kit.scaffold ValueError
    ├── SourceUnavailable             adapters.kit.sources._base ConnectionError
    ├── LoginRefused                  console.auth
    ├── ConsoleUnavailable            console.feed     RuntimeError
    ├── BenchError                    bench.processes  RuntimeError
    ├── BackupError                   scripts.hub_backup
    ├── RabbitNodeError               faults.rabbit_node RuntimeError
    └── PoisonRefused                 faults.poison    RuntimeError

``tests/unit/test_errors.py`` walks every module and fails on an exception class outside the
tree, or on a class missing from this drawing.
"""

from __future__ import annotations

__all__ = ["MashError", "Rejected"]


class MashError(Exception):
    """Something mash-hub refuses or cannot do; the message is one line for the operator
    (never a child's details: it may be printed or logged)."""

    #: What the ``mash`` command exits with when this reaches it.
    exit_code: int = 1


class Rejected(MashError):
    """The message can never be handled; dead-letter it with this reason.

    ``reason`` is a short code for the dead-letter header and the metrics label; ``detail``
    says more, for the operator reading the dead letter.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
