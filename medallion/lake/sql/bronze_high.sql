-- The newest commit position of a bronze table now: this export goes up to here and no further.
select coalesce(max(commit_lsn), -1) from {table}
