-- One chunk of the initial snapshot: the rows of one leaf in a block range, as COPY text of
-- destination.SNAPSHOT_COLUMNS. A TID range scan reads only those blocks, in block order, so
-- row_number() numbers them in the same order however the table is chunked. The row is
-- row_to_json over a lateral row of the values in the stream's forms (snapshot.row_values):
-- several times cheaper than jsonb_build_object with a to_jsonb per column. Placeholders are
-- filled by psycopg.sql; the leaf's name is a constant (no join to the catalog per row). {relation}
-- is `only <leaf> as t`, or `<root> as t` with the leaf's tableoid in {range} (a leaf the role
-- may not read itself: snapshot_chunks.Chunk.via_root).
select {lsn}::bigint, {first} + row_number() over (), {lsn}::bigint, null::bigint, 'R',
       row_to_json(v.*), {source_table}, {ts}::timestamptz, {loaded}::timestamptz
from {relation} cross join lateral (select {values}) as v
where {range}
