"""The reshaping of one wal2json change into a bronze row, on wal2json's real output forms."""

from __future__ import annotations

import json

from medallion.bronze.rows import bronze_row


def test_numbers_keep_their_exact_text_and_strings_their_content() -> None:
    data = ('{"action":"I","schema":"public","table":"t","columns":['
            '{"name":"id","value":12345678901234567890},{"name":"amount","value":3.50},'
            '{"name":"ratio","value":1.0000000000000000001},{"name":"note","value":"a \\"quoted\\" \\u00e9 \\\\ tab\\t"},'
            '{"name":"flag","value":true},{"name":"gone","value":null}]}')
    op, full_row, old_row = bronze_row(data)
    assert (op, old_row) == ("I", None)
    assert full_row == ('{"id":12345678901234567890,"amount":3.50,"ratio":1.0000000000000000001,'
                        '"note":"a \\"quoted\\" é \\\\ tab\\t","flag":true,"gone":null}')
    assert json.loads(full_row)["note"] == 'a "quoted" é \\ tab\t'


def test_update_fills_unchanged_toasted_columns_from_the_old_row() -> None:
    data = ('{"action":"U","schema":"public","table":"film","columns":['
            '{"name":"film_id","value":5},{"name":"rental_rate","value":0.49}],'
            '"identity":[{"name":"film_id","value":5},{"name":"description","value":"long"},'
            '{"name":"rental_rate","value":2.99}]}')
    op, full_row, old_row = bronze_row(data)
    assert op == "U"
    assert json.loads(full_row) == {"film_id": 5, "description": "long", "rental_rate": 0.49}
    assert '"rental_rate":0.49' in full_row
    assert json.loads(old_row) == {"film_id": 5, "description": "long", "rental_rate": 2.99}


def test_delete_keeps_the_old_row_and_truncate_has_none() -> None:
    delete = '{"action":"D","schema":"public","table":"t","identity":[{"name":"id","value":7}]}'
    assert bronze_row(delete) == ("D", '{"id":7}', None)
    assert bronze_row('{"action":"T","schema":"public","table":"t"}') == ("T", None, None)
