"""One exception class per failure. Each message is one line that names the object and the fix."""

from __future__ import annotations


class MedallionError(Exception):
    """A failure the user can act on; the CLI prints its message as one line and exits 1."""


class TransientError(MedallionError):
    """Worth retrying as it is: the condition is expected to clear by itself."""


class ClusterError(MedallionError):
    """The embedded PostgreSQL cluster could not be created, started or stopped."""


class ConnectionFailed(MedallionError):
    """A DSN does not reach a server."""


class PagilaFilesMissing(MedallionError):
    """PAGILA_DIR does not hold the Pagila files, or a download failed its checksum."""


class SourceNotReady(MedallionError):
    """The source server or its tables cannot be captured as they are (wal_level, wal2json, identity)."""


class SlotBusy(TransientError):
    """Another ingester holds the replication slot."""


class BronzeMismatch(MedallionError):
    """The warehouse's bronze was captured from another source or slot than the one configured."""


class BuildFailed(MedallionError):
    """A dbt model or test of the transform project failed; node names the first that did."""

    def __init__(self, message: str, node: str | None, failed: list[str]) -> None:
        super().__init__(message)
        self.node = node
        self.failed = failed
