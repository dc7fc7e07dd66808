"""Gold plans kept on disk (medallion/gold/plan_cache.py): a plan read back is the plan the
planner makes, what it says of a mart built in full is said again, and a damaged or foreign
file is planned over, never trusted. The planner is pure Python: no cluster is needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medallion.gold import plan_cache
from medallion.gold.notes import NOTES
from medallion.gold.plan import plan_mart

RELATIONS = {
    'silver.fact_sale': {"dep": 0, "key": ["sale_id"], "types": ["integer"], "model": "fact_sale",
                                  "as_of": '"wh"."silver"."fact_sale_hist_as_of"'},
    'silver.dim_store': {"dep": 1, "key": ["Store Id"], "types": ["text"], "model": "dim_store",
                                  "as_of": '"wh"."silver"."dim_store_hist_as_of"'},
}
DELTA = ('select st."Store Id", count(*) as n, sum(s.amount) as amount, max(st.city) as city '
         'from "wh"."silver"."fact_sale" as s join "wh"."silver"."dim_store" as st on st."Store Id" = s.store '
         'group by st."Store Id"')
WINDOW = ('select s.store, sum(s.amount) over (partition by s.store) as running '
          'from "wh"."silver"."fact_sale" as s')
STATE = ["wh", "medallion", "mart__state"]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MEDALLION_PLAN_CACHE", str(tmp_path / "plans"))
    NOTES.clear()
    return tmp_path / "plans"


def test_a_plan_read_back_is_the_plan_made(cache: Path) -> None:
    made = plan_cache.cached_plan_mart("mart", DELTA, RELATIONS, None, STATE)
    assert made == plan_mart("mart", DELTA, RELATIONS, None, STATE)
    assert made["delta"] and not made["full"], made
    files = list(cache.glob("*.json"))
    assert len(files) == 1
    read = plan_cache.cached_plan_mart("mart", DELTA, RELATIONS, None, STATE)
    assert read == made
    # another relation's key is another plan, not the first one read back
    other = {**RELATIONS, 'silver.dim_store': {**RELATIONS['silver.dim_store'], "key": ["city"]}}
    assert plan_cache.cached_plan_mart("mart", DELTA, other, None, STATE) == plan_mart("mart", DELTA, other, None, STATE)
    assert len(list(cache.glob("*.json"))) == 2


def test_a_full_build_is_named_again_when_its_plan_is_read_back(cache: Path) -> None:
    first = plan_cache.cached_plan_mart("running", WINDOW, RELATIONS, None, STATE)
    assert first["full"] == "a window function" and first["note"] in NOTES
    NOTES.clear()  # the next build, in a new process
    again = plan_cache.cached_plan_mart("running", WINDOW, RELATIONS, None, STATE)
    assert again == first and NOTES == [first["note"]], NOTES


@pytest.mark.parametrize("damage", ["{not json", json.dumps(["a", "list"]), ""])
def test_a_damaged_plan_file_is_planned_again(cache: Path, damage: str) -> None:
    made = plan_cache.cached_plan_mart("mart", DELTA, RELATIONS, None, STATE)
    [path] = cache.glob("*.json")
    path.write_text(damage)
    assert plan_cache.cached_plan_mart("mart", DELTA, RELATIONS, None, STATE) == made
    assert json.loads(path.read_text()) == made


def test_an_unwritable_cache_costs_time_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv("MEDALLION_PLAN_CACHE", str(blocker / "plans"))  # its parent is a file
    assert plan_cache.cached_plan_mart("mart", DELTA, RELATIONS, None, STATE) == plan_mart("mart", DELTA, RELATIONS,
                                                                                           None, STATE)
