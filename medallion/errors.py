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


class QueryParseError(MedallionError):
    """A `medallion query` text is not one SQL statement sqlglot can read."""


class UnknownTable(MedallionError):
    """A FOR SYSTEM_TIME clause names a table the warehouse does not have."""

    def __init__(self, table: str) -> None:
        self.table = table
        super().__init__(f"{table} does not exist in the warehouse: check the name and schema "
                         "(e.g. silver.dim_customer_hist)")


class NotSystemVersioned(MedallionError):
    """A FOR SYSTEM_TIME clause is on a relation without sys_start/sys_end history."""

    def __init__(self, table: str, suggestion: str | None = None) -> None:
        self.table = table
        self.suggestion = suggestion
        fix = f": use {suggestion}" if suggestion else ": FOR SYSTEM_TIME needs a history table"
        super().__init__(f"{table} has no system-time history (no sys_start/sys_end timestamptz columns){fix}")


class UnsupportedTemporalClause(MedallionError):
    """A FOR ... clause that is not SQL:2011 system time (e.g. FOR VERSION AS OF, or on a CTE)."""


class QueryFailed(MedallionError):
    """PostgreSQL rejected a (rewritten) `medallion query` statement."""


class BuildFailed(MedallionError):
    """A dbt model or test of the transform project failed; node names the first that did."""

    def __init__(self, message: str, node: str | None, failed: list[str]) -> None:
        super().__init__(message)
        self.node = node
        self.failed = failed


class ConfigError(MedallionError):
    """medallion.toml cannot be read or says something that cannot hold."""


class SelectionError(MedallionError):
    """The selection does not fit the source: an include matching nothing, a key that is not there."""


class ConnectionLost(TransientError):
    """A connection to the source or the warehouse broke (a restart, a network cut): following
    reconnects and resumes from bronze's recorded position."""


class SlotLost(MedallionError):
    """The slot bronze reads from was dropped or invalidated: `medallion resync` takes a new epoch."""


class InvalidDsn(MedallionError):
    """A DSN that libpq cannot read (bad quoting, a port that is not a number, an unknown keyword)."""


class CaptureReset(MedallionError):
    """The slot or bronze was dropped under a running ingester (a reset or load-pagila meanwhile)."""


class IngesterRunning(TransientError):
    """A reset was asked for while an ingester still holds the slot: it would recreate what reset drops."""


class WarehouseInUse(TransientError):
    """A reset was asked for while `run --follow` or a build works on the warehouse (medallion.locks)."""


class RoleSetupFailed(MedallionError):
    """`medallion grant` could not create or grant a role (the DSN's role is not an admin, typically)."""


class Unexpected(MedallionError):
    """A failure medallion has no name for; its traceback was written to a log file for a bug report."""


class HorizonExceeded(MedallionError):
    """A query asked (with --strict) about a source time past silver's horizon."""


class LakeNotConfigured(MedallionError):
    """A lake command ran without a [lake] section in medallion.toml."""


class LakeUnavailable(MedallionError):
    """A package, jar or program the lake needs (pyiceberg, pyspark, the Iceberg jar, Java) is missing."""


class LakeExportFailed(MedallionError):
    """An Iceberg table of the lake does not match the bronze it is exported from."""


class SparkQueryFailed(MedallionError):
    """Spark rejected a (rewritten) `medallion query --engine spark` statement."""


class BuildInterrupted(MedallionError):
    """Ctrl-C (or SIGTERM) stopped a dbt build: each model is as its last finished statement left it."""
