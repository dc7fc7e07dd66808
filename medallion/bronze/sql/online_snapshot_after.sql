-- After the last key done (a jsonb of typed values). jsonb_populate_record turns it back into
-- the columns' own types, so the comparison is the table's own order (its collations) and an
-- index on the key serves it.
where ({t_keys}) > (select {p_keys} from jsonb_populate_record(null::{table}, {after}::jsonb) as p)
