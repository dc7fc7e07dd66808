"""The two output plugins' messages -> one stream of capture events (medallion.bronze.events).

Begin, Change (a row change), Commit, RelationSeen (pgoutput's columns of a relation) and
Message (a transactional logical message), in the order they arrive. Both plugins give the same
commit_lsn for a transaction (the end of its commit record, which is also what the slot is
confirmed to), so a bronze started with one plugin can be read on with the other.
"""

from __future__ import annotations

import json
import re
import struct

import orjson

from medallion.bronze import pgoutput
from medallion.bronze.events import Begin, Change, Commit, Event, Message, RelationRef, RelationSeen
from medallion.bronze.rows import bronze_row


_OID = struct.Struct(">I").unpack_from
_OPS = {73: "I", 85: "U", 68: "D"}


class PgoutputDecoder:
    """pgoutput protocol version 1: binary messages, column values as the types' text output."""

    plugin = "pgoutput"

    def __init__(self) -> None:
        self.relations: dict[int, pgoutput.Relation] = {}
        self._refs: dict[int, RelationRef] = {}
        self._templates: dict[int, list[bytes]] = {}  # oid -> pgoutput.row_template of its columns

    def options(self, publication: str, server_version: int) -> dict[str, str]:
        options = {"proto_version": "1", "publication_names": publication}
        if server_version >= 140000:  # logical messages: the DDL trigger's announcements
            options["messages"] = "true"
        return options

    def _ref(self, oid: int) -> tuple[RelationRef, pgoutput.Relation]:
        relation = self.relations.get(oid)
        if relation is None:
            raise pgoutput.ProtocolError(f"a change to relation {oid} before its Relation message")
        return self._refs[oid], relation

    @staticmethod
    def _row(columns: tuple[str, ...], values: list, fill: list | None = None) -> str:
        if pgoutput.UNCHANGED in values:
            if fill is not None:  # unchanged TOASTed values come from the old row (REPLICA IDENTITY FULL)
                values = [fill[i] if v is pgoutput.UNCHANGED else v for i, v in enumerate(values)]
            row = {name: value for name, value in zip(columns, values) if value is not pgoutput.UNCHANGED}
        else:
            row = dict(zip(columns, values))
        return orjson.dumps(row).decode("utf-8")

    def feed(self, payload: bytes, lsn: int) -> list[Event]:
        kind = payload[0]
        # hot path: an insert, an update that kept its key (no old tuple) or a delete with the
        # whole old row, all of whose values are plain text (pgoutput.text_row); else the general one
        if (kind == 73 or kind == 85) and payload[5] == 78 or kind == 68 and payload[5] == 79:
            oid = _OID(payload, 1)[0]
            template = self._templates.get(oid)
            if template is not None and (row := pgoutput.text_row(payload, 6, template)) is not None:
                return [Change(self._refs[oid], _OPS[kind], row, None, lsn)]
        message = pgoutput.parse(payload)
        kind = message[0]
        if kind == "I":
            ref, rel = self._ref(message[1])
            return [Change(ref, "I", self._row(rel.columns, message[2]), None, lsn)]
        if kind == "U":
            ref, rel = self._ref(message[1])
            old = message[3]
            full_old = message[2] == "O"
            new = self._row(rel.columns, message[4], old if full_old else None)
            if full_old:
                old_row = self._row(rel.columns, old)
            elif message[2] == "K":  # the key changed: the old key, so the old row can be ended and found
                old_row = orjson.dumps({c: v for c, v, k in zip(rel.columns, old, rel.key_flags) if k}).decode()
            else:
                old_row = None
            if not full_old and pgoutput.UNCHANGED in message[4]:
                missing = tuple(c for c, v in zip(rel.columns, message[4]) if v is pgoutput.UNCHANGED)
                return [Change(ref, "U", new, old_row, lsn, missing)]
            return [Change(ref, "U", new, old_row, lsn)]
        if kind == "D":
            ref, rel = self._ref(message[1])
            return [Change(ref, "D", self._row(rel.columns, message[2]), None, lsn)]
        if kind == "B":
            return [Begin(message[3], pgoutput.timestamp(message[2]), message[1])]
        if kind == "C":
            return [Commit(message[1], pgoutput.timestamp(message[2]))]
        if kind == "R":
            rel = message[1]
            self.relations[rel.oid] = rel
            self._refs[rel.oid] = RelationRef(rel.oid, rel.namespace, rel.name)
            self._templates[rel.oid] = pgoutput.row_template(rel.columns)
            return [RelationSeen(rel)]
        if kind == "T":
            return [Change(self._ref(oid)[0], "T", None, None, lsn) for oid in message[1]]
        if kind == "M" and message[1]:
            return [Message(message[2], message[3])]
        return []  # Type, Origin, non-transactional messages: nothing for bronze


_PREFIX = '{"action":"'
_RELATION = re.compile(r'"schema":"((?:[^"\\]|\\.)*)","table":"((?:[^"\\]|\\.)*)"')
_TIMESTAMP = re.compile(r'"timestamp":"([^"]+)"')
_NEXTLSN = re.compile(r'"nextlsn":"([0-9A-F]+/[0-9A-F]+)"')


def _unescape(name: str) -> str:
    return json.loads(f'"{name}"') if "\\" in name else name


def lsn_to_int(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def int_to_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


class Wal2jsonDecoder:
    """wal2json format-version 2: one JSON object per change; values in wal2json's forms (numbers
    and booleans as JSON, bytea as bare hex, others as text), reshaped by medallion.bronze.rows."""

    plugin = "wal2json"

    def options(self, publication: str, server_version: int) -> dict[str, str]:
        return {"format-version": "2", "include-timestamp": "true", "include-xids": "true",
                "include-lsn": "true", "include-types": "false"}

    def feed(self, payload: bytes | str, lsn: int) -> list[Event]:
        data = payload.decode("utf-8") if isinstance(payload, bytes | bytearray | memoryview) else payload
        if not data.startswith(_PREFIX):
            raise ValueError(f"not wal2json format-version 2 output at LSN {int_to_lsn(lsn)}: {data[:80]!r}")
        action = data[len(_PREFIX)]
        if action in "IUDT":
            match = _RELATION.search(data)
            if match is None:
                raise ValueError(f"change without schema/table at LSN {int_to_lsn(lsn)}")
            ref = RelationRef(None, _unescape(match.group(1)), _unescape(match.group(2)))
            full_row, old_row = bronze_row(data, action)
            return [Change(ref, action, full_row, old_row, lsn)]
        if action == "B":
            xid = json.loads(data).get("xid")
            return [Begin(xid, None)]
        if action == "C":
            stamp = _TIMESTAMP.search(data)
            nextlsn = _NEXTLSN.search(data)
            if stamp is None:
                raise ValueError(f"commit without timestamp at LSN {int_to_lsn(lsn)}: enable include-timestamp")
            return [Commit(lsn_to_int(nextlsn.group(1)) if nextlsn else lsn, stamp.group(1))]
        if action == "M":
            message = json.loads(data)
            if message.get("transactional"):
                return [Message(message.get("prefix"), message.get("content"))]
        return []


def decoder_for(plugin: str) -> PgoutputDecoder | Wal2jsonDecoder:
    return PgoutputDecoder() if plugin == "pgoutput" else Wal2jsonDecoder()
