-- An interrupted initial snapshot: its chunks not copied are left to the online snapshot.
update bronze.snapshot_chunk set state = 'online', finished_at = now() where slot_name = %(slot)s and state = 'planned'
