"""The sqlglot helpers both of gold's planners read a mart's SQL with (plan.py: touched groups;
delta.py: per-group state): a leaf, so neither planner imports the other's module to share them."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from medallion.gold.errors import Untraceable


def _relation_name(table: exp.Table) -> str:
    return f"{table.db}.{table.name}" if table.db else table.name


def _parse(sql: str) -> exp.Expression:
    return sqlglot.parse_one(sql, read="postgres")


def _tables(scope: Scope) -> list[exp.Table]:
    return [source for _, source in scope.selected_sources.values() if isinstance(source, exp.Table)]


def _group_map(select: exp.Select, grain: list[str] | None) -> dict[str, exp.Expression]:
    """{grain column: its expression} of an aggregating block; Untraceable if it groups otherwise."""
    items = {e.alias_or_name: (e.this if isinstance(e, exp.Alias) else e) for e in select.expressions}
    positions = list(items)
    names: list[str] = []
    for group in select.args["group"].expressions:
        if isinstance(group, exp.Literal) and group.is_int:
            names.append(positions[int(group.this) - 1])
        elif isinstance(group, exp.Column) and not group.table and group.name in items:
            names.append(group.name)
        else:
            match = [name for name, e in items.items() if e == group]
            if not match:
                raise Untraceable(f"GROUP BY {group.sql('postgres', normalize_functions=False)} that is not a selected column")
            names.append(match[0])
    if grain is not None and sorted(names) != sorted(grain):
        raise Untraceable(f"an aggregate grouped by ({', '.join(names)}), not by the mart's grain "
                          f"({', '.join(grain)})")
    return {name: items[name] for name in names}


def _key_filter(alias: str, info: dict) -> exp.Expression:
    columns = ", ".join(exp.column(k, table=alias, quoted=True).sql("postgres", normalize_functions=False) for k in info["key"])
    casts = ", ".join(f"(key ->> {exp.Literal.string(k).sql('postgres', normalize_functions=False)})::{t}"
                      for k, t in zip(info["key"], info["types"]))
    return sqlglot.condition(f"({columns}) in (select {casts} from gold_changed_keys where dep = {info['dep']})",
                             dialect="postgres")


def _swap(tree: exp.Expression, relations: dict, args: str) -> None:
    """Every silver relation read becomes its history's as-of function, keeping its alias."""
    for table in list(tree.find_all(exp.Table)):
        info = relations.get(_relation_name(table))
        if info is None or not info.get("as_of") or not isinstance(table.parent, (exp.From, exp.Join)):
            continue
        alias = table.alias_or_name
        call = _parse(f"select * from {info['as_of']}({args(info) if callable(args) else args}) "
                      f"as {exp.to_identifier(alias).sql('postgres', normalize_functions=False)}").args["from_"].this
        table.replace(call)
