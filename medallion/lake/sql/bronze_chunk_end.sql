-- The commit position that ends the next chunk of a bronze table: the commit of the
-- chunk_rows-th row past the exported position, so a chunk always holds whole source
-- transactions (rows of one commit are never split across two Iceberg commits). Null when
-- fewer rows are left: the chunk then runs to the high mark. An index scan on (commit_lsn, ordinal).
select commit_lsn
from {table}
where commit_lsn > %(position)s and commit_lsn <= %(high)s
order by commit_lsn, ordinal
offset %(chunk_rows)s
limit 1
