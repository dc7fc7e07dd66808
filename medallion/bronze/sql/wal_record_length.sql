-- The length of the WAL record that starts at %(lsn)s (its header's xl_tot_len, the first four
-- bytes, in the server's byte order), read from the segment file: a commit record's end from its
-- start (medallion/bronze/early.py). Records are 8-byte aligned, so these bytes never straddle a
-- page. Needs pg_read_server_files (or a superuser); the caller guesses without it.
select pg_read_binary_file('pg_wal/' || file_name, file_offset, 4)
from pg_walfile_name_offset(%(lsn)s::pg_lsn)
