"""Which bronze table each change lands in, and what bronze records as the source's tables are
created, altered, renamed and dropped under capture.

A leaf partition's changes land in its root's table. A selected table bronze does not have yet
(created, published or selected after capture started) is captured from its first change on,
its earlier rows read by an online snapshot (medallion.bronze.online_snapshot). A table keeps
its bronze table across ALTER TABLE ... RENAME (and SET SCHEMA): it is known by its relid.
Schema changes are recorded at their place in the stream: announced by the DDL trigger
(medallion.bronze.ddl), or, without it, noticed in pgoutput's Relation messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import psycopg

from medallion.bronze import checks, ddl, online_snapshot, publication, store
from medallion.bronze.destination import SchemaEvent, Transaction
from medallion.bronze.events import RelationRef
from medallion.bronze.pgoutput import Relation
from medallion.config import ProjectConfig
from medallion.patterns import display
from medallion.selection import CapturedTable, bronze_name, recorded_from, resolve, selects
from medallion.source.catalog import SourceTable, read_tables

Target = tuple[str, str]  # (bronze table, the relation's qualified name)


class Router:
    """The routing of one ingest run: bronze's record as it stands, kept current as the stream goes."""

    def __init__(self, config: ProjectConfig, src: psycopg.Connection, online: online_snapshot.OnlineSnapshots,
                 notify: Callable[[str], None], say_once: Callable[[str], None]) -> None:
        self.config = config
        self.src = src
        self.online = online
        self.notify = notify
        self.say_once = say_once
        self.ddl_trigger = False  # the source announces DDL itself (medallion.bronze.ddl)
        # how a change names its relation -> where it lands, or None when it is not captured
        self._targets: dict[object, Target | None] = {}
        self.recorded: dict[tuple[str, str], str] = {}  # captured root -> bronze table
        self.recorded_tables: dict[str, store.RecordedTable] = {}
        self.uncaptured: set[int] = set()
        self._new: dict[str, SourceTable] = {}  # bronze table -> a table first captured by this run
        self._left_out: dict[int, SourceTable] = {}  # oid -> a table seen and not captured, to record
        self._catalog: dict[tuple[str, str], SourceTable] | None = None
        self._by_oid: dict[int, SourceTable] = {}
        self._warned: set[object] = set()

    def load(self, wh: psycopg.Connection, ddl_trigger: bool) -> None:
        """Bronze's record as the run starts."""
        self.ddl_trigger = ddl_trigger
        self.recorded_tables = store.recorded_tables(wh)
        self.recorded = {t.ident: t.bronze for t in self.recorded_tables.values()}
        self.uncaptured = store.uncaptured_oids(wh)

    def take_for_batch(self, txns: list[Transaction]) -> tuple[dict[str, SourceTable], dict[int, SourceTable]]:
        """(tables new to bronze that these transactions change, tables seen and left out since the
        last batch): recorded beside the batch, in its warehouse transaction."""
        targets = {t for txn in txns for t in txn.targets}
        new_tables = {t: self._new.pop(t) for t in targets if t in self._new}
        left_out, self._left_out = self._left_out, {}
        return new_tables, left_out

    # -- tables bronze does not have yet ------------------------------------------------------------

    def published_now(self) -> list[CapturedTable]:
        """The selection against the source's catalog now, this run's bronze names kept."""
        return resolve(self.config, read_tables(self.src), dict(self.recorded)).captured

    def capture_unrecorded(self, captured_tables: list[CapturedTable]) -> None:
        """Selected tables bronze does not have, whose CREATE the stream does not announce: captured
        from now on, their rows read by an online snapshot."""
        for captured in captured_tables:
            table = captured.table
            announced = self.ddl_trigger and table.oid not in self.uncaptured  # its CREATE is in the stream
            renamed = self._renamed(table) is not None  # known by its relid: its next change records the rename
            if table.ident not in self.recorded and table.persistence == "p" and not announced and not renamed:
                self.recorded[table.ident] = captured.bronze
                self._new[captured.bronze] = table
                self.notify(f"capturing {display(*table.ident)}, new to bronze, into bronze.{captured.bronze}")
                self.online.add(captured.bronze, table,
                                online_snapshot.chunk_key(table, self.config.options(*table.ident).key),
                                "selected later" if table.oid in self.uncaptured else "published later")

    def take_online_jobs(self, jobs: list[tuple]) -> None:
        """Open snapshots the warehouse lists (left unfinished, or asked for by `resync --table`)."""
        for _id, bronze, schema, name, reason, key, last_key, chunks, rows, started in jobs:
            table = self._refresh_catalog().get((schema, name))
            if table is None:
                self.notify(f"{display(schema, name)} is gone from the source: its online snapshot stops")
                continue
            if bronze not in self.recorded_tables and table.ident not in self.recorded:
                self.recorded[table.ident] = bronze  # no row of it is in bronze yet: new to bronze
                self._new[bronze] = table
            self.online.add(bronze, table, tuple(key), reason, after=last_key, chunks=chunks, rows=rows,
                            started=started)

    # -- which bronze table a change lands in ----------------------------------------------------

    def _refresh_catalog(self) -> dict[tuple[str, str], SourceTable]:
        tables = read_tables(self.src)
        self._catalog = {t.ident: t for t in tables}
        self._by_oid = {t.oid: t for t in tables}
        return self._catalog

    def _source_table(self, ref: RelationRef) -> SourceTable | None:
        """The source's table a change names: by OID when the plugin sends one (robust to renames)."""
        if self._catalog is None:
            self._refresh_catalog()
        if ref.oid is not None:
            if ref.oid not in self._by_oid:
                self._refresh_catalog()
            return self._by_oid.get(ref.oid)
        ident = (ref.schema, ref.table)
        if ident not in self._catalog:
            self._refresh_catalog()
        return self._catalog.get(ident)

    def route(self, ref: RelationRef, txn: Transaction) -> Target | None:
        """The bronze table a change to ref lands in, and the relation's qualified name, or None
        when it is not captured."""
        key = ref.oid if ref.oid is not None else (ref.schema, ref.table)
        if key in self._targets:
            return self._targets[key]
        source = self._source_table(ref)
        ident = (ref.schema, ref.table)
        if source is None and ident in self.recorded:  # dropped since; bronze knows its name
            recorded = self.recorded_tables.get(self.recorded[ident])
            qualified = recorded.qualified if recorded else display(*ident)
            self._targets[key] = (self.recorded[ident], qualified)
            return self._targets[key]
        if source is None:
            if key not in self._warned:
                self._warned.add(key)
                self.notify(f"a change to {display(*ident)}, which is no longer in the source: it cannot be "
                            "traced to a captured table and is skipped")
            self._targets[key] = None
            return None
        catalog = self._catalog or {}
        root = catalog.get(source.root, source)
        target = self.recorded.get(root.ident)
        if target is not None and selects(self.config, *root.ident) is not None:
            self._targets[key] = None  # in bronze, excluded since: captured no more (excluded_note)
            return None
        renamed = self._renamed(root) if target is None else None
        if renamed is not None:  # a change under its new name is the first bronze hears of a rename
            target = self._on_rename(txn, renamed, root)
            if target is None:
                self._left_out[root.oid] = root
        elif target is None and root.persistence == "p" and selects(self.config, *root.ident) is None:
            target = self._capture_new(root)
            self._new[target] = root  # created with the batch that holds its first change
            # its rows from before it reached the stream (published or selected later) are read online
            self.online.add(target, root, online_snapshot.chunk_key(root, self.config.options(*root.ident).key),
                            "selected later" if root.oid in self.uncaptured else "published later")
        elif target is None:
            self._left_out[root.oid] = root
        if target is not None and not publication.has_identity(source):
            self.say_once(checks.identity_problem(source) or "")
        self._targets[key] = (target, source.qualified) if target is not None else None
        return self._targets[key]

    def _capture_new(self, table: SourceTable) -> str:
        """A selected table new in the source: its bronze table (named by the capture plan), from now on."""
        bronze = bronze_name(table.ident, set(self.recorded.values()))
        self.recorded[table.ident] = bronze
        self.recorded_tables[bronze] = recorded_from(bronze, table)
        self.notify(f"capturing {display(*table.ident)}, new in the source, into bronze.{bronze}")
        return bronze

    # -- schema changes ------------------------------------------------------------------------

    def _forget(self, oid: int | None, ident: tuple[str, str] | None) -> None:
        """Drop what is cached about a relation: its next change resolves it afresh."""
        self._catalog = None
        for key in (oid, ident):
            if key is not None:
                self._targets.pop(key, None)

    def _renamed(self, table: SourceTable) -> str | None:
        """The bronze table of a captured table that bronze knows under another name: a table
        is the same table across ALTER TABLE ... RENAME (and SET SCHEMA) by its relid."""
        if table.oid is None or table.ident in self.recorded:
            return None
        for bronze, recorded in self.recorded_tables.items():
            if recorded.relid == table.oid and recorded.event != "drop" and recorded.ident != table.ident \
                    and self.recorded.get(recorded.ident) == bronze:
                return bronze
        return None

    def _on_rename(self, txn: Transaction, bronze: str, table: SourceTable) -> str | None:
        """A captured table renamed: its history continues in the same bronze table under the new
        name, recorded at this position (silver's names follow the latest record, see
        medallion.silver.renames). A new name the selection leaves out ends the history here, as
        a drop would, said in one line. Returns the bronze table changes now land in, or None."""
        old = self.recorded_tables[bronze]
        self.recorded.pop(old.ident, None)
        for key in (table.oid, old.ident, table.ident):
            self._targets.pop(key, None)
        why = selects(self.config, *table.ident)
        if why is not None:
            txn.schema_events.append(SchemaEvent(bronze, txn.ordinal, "drop", old.as_source_table(), False))
            self.recorded_tables[bronze] = replace(old, event="drop")
            self.notify(f"{old.qualified} was renamed to {table.qualified}, which {self.config.where} does not "
                        f"select ({why}): its history ends at the rename; to continue it, select "
                        f"{display(*table.ident)} and run 'medallion reset'")
            return None
        self.recorded[table.ident] = bronze
        self.recorded_tables[bronze] = recorded_from(bronze, table)
        txn.schema_events.append(SchemaEvent(bronze, txn.ordinal, "rename", table, False))
        self.notify(f"{old.qualified} was renamed to {table.qualified}: its history continues under the new name "
                    f"(bronze.{bronze}; silver's tables take the new name at the next build)")
        return bronze

    def on_ddl(self, txn: Transaction, event: ddl.DdlEvent | None) -> None:
        """A DDL announced by the source's trigger, at its own position in its transaction."""
        if event is None:
            return
        txn.ordinal += 1  # the DDL takes a place in the transaction's order, between its changes
        self._forget(event.oid, (event.schema, event.name) if event.schema else None)
        if event.event == "drop":
            bronze = self.recorded.get((event.schema, event.name))
            recorded = self.recorded_tables.get(bronze) if bronze else None
            if bronze is not None:
                table = recorded.as_source_table() if recorded else None
                if table is not None:
                    txn.schema_events.append(SchemaEvent(bronze, txn.ordinal, "drop", table, False))
                    self.notify(f"{display(event.schema, event.name)} was dropped in the source: its current "
                                "versions end at the drop")
            return
        table = event.table
        if table is None or table.is_partition:
            return  # a partition's changes land in its root, whose schema a partition does not change
        bronze = self.recorded.get(table.ident)
        renamed = self._renamed(table) if bronze is None else None
        if renamed is not None:
            self._on_rename(txn, renamed, table)
        elif bronze is not None:
            txn.schema_events.append(SchemaEvent(bronze, txn.ordinal, event.event, table, False))
            self.recorded_tables[bronze] = recorded_from(bronze, table)
        elif (event.event == "create" or event.published) and table.persistence == "p" \
                and selects(self.config, *table.ident) is None:
            if not publication.has_identity(table):
                # not published (medallion.bronze.publication): its rows are not sent until it has
                # an identity; if it gets one while empty, the trigger publishes it ("published")
                self._left_out[table.oid] = table
                self.uncaptured.add(table.oid)
                self.say_once(checks.identity_problem(table) or "")
                return
            self.uncaptured.discard(table.oid)
            bronze = self._capture_new(table)
            txn.schema_events.append(SchemaEvent(bronze, txn.ordinal, "create", table, True))

    def on_relation(self, txn: Transaction, relation: Relation) -> None:
        """Without the DDL trigger: a Relation message whose columns differ from bronze's record
        means the table changed since; its schema is recorded here, at the first change after."""
        source = self._by_oid.get(relation.oid) if self._by_oid else None
        ident = source.root if source is not None else (relation.namespace, relation.name)
        bronze = self.recorded.get(ident)
        recorded = self.recorded_tables.get(bronze) if bronze else None
        if recorded is not None and recorded.relid == relation.oid \
                and recorded.ident != (relation.namespace, relation.name):
            current = read_tables(self.src, relation.oid)
            if current:  # renamed since (the cached catalog still had the old name)
                txn.ordinal += 1
                self._on_rename(txn, bronze, current[0])
                self._forget(relation.oid, ident)
            return
        if recorded is None or tuple(c.name for c in recorded.columns) == tuple(relation.columns):
            return
        current = read_tables(self.src, recorded.relid) if recorded.relid else []
        if not current:
            return
        txn.ordinal += 1
        txn.schema_events.append(SchemaEvent(bronze, txn.ordinal, "observed", current[0], False))
        self.recorded_tables[bronze] = recorded_from(bronze, current[0])
        self._forget(relation.oid, ident)
        if bronze not in self._warned and not self.config.accept_no_ddl_trigger:
            self._warned.add(bronze)
            self.notify(f"{recorded.qualified} changed its columns; without the DDL trigger (run 'medallion "
                        "prepare-source' as a superuser) bronze records it at its first change after the ALTER, "
                        "not at the ALTER's own time ([capture] accept_no_ddl_trigger = true stops this note)")
