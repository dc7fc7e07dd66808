"""The reshaping of one wal2json change into a bronze row, on wal2json's real output forms."""

from __future__ import annotations

import json

import pytest

from medallion.bronze.rows import bronze_row

PREFIX = '{"action":"%s","xid":7,"timestamp":"2026-11-26 04:35:10.68+00","schema":"public","table":"t"'


def change(op: str, columns: str | None = None, identity: str | None = None) -> str:
    parts = [PREFIX % op]
    if columns is not None:
        parts.append(f',"columns":{columns}')
    if identity is not None:
        parts.append(f',"identity":{identity}')
    return "".join(parts) + "}"


def test_values_are_copied_verbatim_numbers_and_escapes_included() -> None:
    columns = ('[{"name":"id","value":12345678901234567890},{"name":"amount","value":3.50},'
               '{"name":"ratio","value":1.0000000000000000001},'
               '{"name":"note","value":"a \\"quoted\\" },{\\"name\\": \\u00e9 \\\\ tab\\t"},'
               '{"name":"value","value":"value"},{"name":"flag","value":true},{"name":"gone","value":null}]')
    full_row, old_row = bronze_row(change("I", columns), "I")
    assert old_row is None
    assert full_row == ('{"id":12345678901234567890,"amount":3.50,"ratio":1.0000000000000000001,'
                        '"note":"a \\"quoted\\" },{\\"name\\": \\u00e9 \\\\ tab\\t","value":"value",'
                        '"flag":true,"gone":null}')
    assert json.loads(full_row)["note"] == 'a "quoted" },{"name": é \\ tab\t'


def test_update_lists_the_old_row_first_so_unchanged_toasted_columns_survive() -> None:
    columns = '[{"name":"film_id","value":5},{"name":"rental_rate","value":0.49}]'
    identity = ('[{"name":"film_id","value":5},{"name":"description","value":"long"},'
                '{"name":"rental_rate","value":2.99}]')
    full_row, old_row = bronze_row(change("U", columns, identity), "U")
    # duplicated keys: jsonb (like json.loads) keeps the last, the new row's value
    assert json.loads(full_row) == {"film_id": 5, "description": "long", "rental_rate": 0.49}
    assert json.loads(old_row) == {"film_id": 5, "description": "long", "rental_rate": 2.99}


def test_update_without_identity_is_the_new_row() -> None:
    full_row, old_row = bronze_row(change("U", '[{"name":"id","value":1}]'), "U")
    assert (full_row, old_row) == ('{"id":1}', None)


def test_delete_keeps_the_old_row_and_truncate_has_none() -> None:
    assert bronze_row(change("D", identity='[{"name":"id","value":7}]'), "D") == ('{"id":7}', None)
    assert bronze_row(change("T"), "T") == (None, None)


def test_an_unexpected_shape_is_an_error_not_a_wrong_row() -> None:
    with pytest.raises(ValueError, match="unexpected wal2json column list"):
        bronze_row(change("I", '[{"name": "id", "value": 1}]'), "I")
