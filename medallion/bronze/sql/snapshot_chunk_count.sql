-- The rows of one chunk (snapshot_chunk_select.sql's range), counted when the snapshot is planned:
-- a chunk's first ordinal is the table's rows before it.
select count(*) from {relation} where {range}
