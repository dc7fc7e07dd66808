"""Delta maintenance of a mart's decomposable aggregates, planned from its SQL with sqlglot.

A mart of ONE aggregating SELECT over inner joins of silver relations, whose aggregates are
sum, count(*), count(x), avg (as sum/count), each with an optional FILTER, and expressions over
them and the grain, keeps per group, in <mart>__state (gold_state_relation), the sums and
counts those aggregates are made of ("atoms"): sum(x) as its sum and its count of non-null
values (a sum of only NULLs stays NULL), count(*) of the group's lines (the group vanishes at
0). A build adds, per group, the atoms over the changed lines as silver holds them now minus
the same over the changed lines as the last build saw silver. A line is a row of the SELECT's
FROM/JOIN/WHERE before GROUP BY; it is changed when a row of any relation in it has a key
bronze changed: a line none of whose rows changed is the same line before and after, so it
cancels out of the difference, and a group's other lines are never read. The mart's rows of
the groups the changes reach are then derived from the state (HAVING applied there).

Sums over floating types are not exact under subtraction (found at build time from the
state's column types: gold_plain_delta_ok); those marts, and any other shape (min/max,
count(distinct), outer joins, several aggregating blocks, a subquery in FROM...), raise
Untraceable with the reason, and plan.py's touched-group recompute maintains them.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from medallion.gold.errors import Untraceable
from medallion.gold.sqlshape import _group_map, _key_filter, _parse, _relation_name, _swap

ROWS = "gold_rows"  # count(*) of a group's lines in the state


def _q(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("postgres")


def _sql(node: exp.Expression) -> str:
    return node.sql("postgres", normalize_functions=False)


def _shape(tree: exp.Expression, relations: dict) -> exp.Select:
    """The one aggregating SELECT of the mart, or Untraceable naming what keeps it off the delta path."""
    if not isinstance(tree, exp.Select) or not tree.args.get("group"):
        raise Untraceable("an aggregate below the top SELECT")
    if tree.args.get("with_"):
        raise Untraceable("a WITH clause")
    if tree.args.get("distinct"):
        raise Untraceable("SELECT DISTINCT")
    if len(list(tree.find_all(exp.Select))) > 1:
        raise Untraceable("several SELECTs")
    for join in tree.args.get("joins") or []:
        if join.side or join.kind not in ("", "INNER", "CROSS"):
            raise Untraceable(f"an outer join ({(join.side or join.kind).lower()} join)")
    for table in tree.find_all(exp.Table):
        info = relations.get(_relation_name(table))
        if not info or not info.get("as_of") or not info.get("key"):
            raise Untraceable(f"{_sql(table)} read without a history")
    return tree


def _aggregate_parts(node: exp.Expression) -> tuple[exp.AggFunc, exp.Expression | None]:
    """(the aggregate, its FILTER condition or None)."""
    if isinstance(node, exp.Filter):
        return node.this, node.expression.this
    return node, None


def _aggregates(tree: exp.Select) -> list[exp.Expression]:
    """The outermost aggregate calls (a FILTER wrapping one counts as the call) of the select list and HAVING."""
    found: list[exp.Expression] = []
    places = list(tree.expressions) + ([tree.args["having"]] if tree.args.get("having") else [])
    for place in places:
        for node in place.find_all(exp.AggFunc, exp.Filter):
            if isinstance(node, exp.AggFunc) and isinstance(node.parent, exp.Filter):
                continue  # the FILTER around it is the call
            if isinstance(node, exp.Filter) and not isinstance(node.this, exp.AggFunc):
                continue
            found.append(node)
    return found


class _Atoms:
    """The distinct sums and counts a mart's aggregates are made of, named gold_sum_i, gold_count_i, gold_n_i."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []  # {name, kind: sum|count|n, arg, cond}
        self.args: list[str] = []
        self.conds: list[str] = []

    def add(self, kind: str, arg: exp.Expression | None, cond: exp.Expression | None) -> str:
        a = _sql(arg) if arg is not None else None
        c = _sql(cond) if cond is not None else None
        if kind == "n" and c is None:
            return ROWS
        for item in self.items:
            if (item["kind"], item["arg"], item["cond"]) == (kind, a, c):
                return item["name"]
        if a is not None and a not in self.args:
            self.args.append(a)
        if c is not None and c not in self.conds:
            self.conds.append(c)
        name = f"gold_{kind}_{len(self.items) + 1}"
        self.items.append({"name": name, "kind": kind, "arg": a, "cond": c})
        return name


def _rewrite(aggregate: exp.Expression, atoms: _Atoms) -> exp.Expression:
    """The aggregate as an expression over the state's atoms."""
    function, cond = _aggregate_parts(aggregate)
    arg = function.this
    if isinstance(arg, exp.Distinct) or function.args.get("distinct"):
        raise Untraceable(f"{function.key}(distinct)")
    if isinstance(function, exp.Count):
        if isinstance(arg, exp.Star) or arg is None:
            return exp.column(atoms.add("n", None, cond), quoted=True)
        return exp.column(atoms.add("count", arg, cond), quoted=True)
    if isinstance(function, (exp.Sum, exp.Avg)):
        total = _q(atoms.add("sum", arg, cond))
        count = _q(atoms.add("count", arg, cond))
        text = (f"case when {count} > 0 then {total} end" if isinstance(function, exp.Sum)
                else f"{total}::numeric / nullif({count}, 0)")
        return exp.paren(_parse(f"select {text}").expressions[0], copy=False)
    raise Untraceable(f"{function.key}() (only sum, count and avg are maintained from the changed lines)")


def plan_delta(sql: str, relations: dict, grain: list[str]) -> dict[str, Any]:
    """The delta plan of a mart (see the module's docstring): plain data for Jinja, or Untraceable."""
    tree = _shape(_parse(sql), relations)
    groups = _group_map(tree, grain)
    atoms = _Atoms()
    replaced: dict[int, exp.Expression] = {}
    for aggregate in _aggregates(tree):
        replaced[id(aggregate)] = _rewrite(aggregate, atoms)

    state_columns = set(grain) | {ROWS} | {item["name"] for item in atoms.items}
    items: list[str] = []
    for item in tree.expressions:
        name = item.alias_or_name
        value = item.this if isinstance(item, exp.Alias) else item
        derived = _derive(value, replaced, groups)
        for column in derived.find_all(exp.Column):
            if column.table or column.name not in state_columns:
                raise Untraceable(f"a selected column neither grouped nor aggregated ({_sql(value)})")
        items.append(f"{_sql(derived)} as {_q(name)}")
    having = None
    if tree.args.get("having"):
        having = _sql(_derive(tree.args["having"].this, replaced, groups))

    g = ", ".join(_q(c) for c in grain)
    group_exprs = [groups[c] for c in grain]
    # the state of every group, from all lines (a full build)
    state = tree.copy()
    state.set("expressions", [exp.alias_(e.copy(), c, quoted=True) for c, e in zip(grain, group_exprs)]
              + [_parse(f"select count(*) as {ROWS}").expressions[0]]
              + [_parse(f"select {_atom_sql(item)} as {_q(item['name'])}").expressions[0] for item in atoms.items])
    state.set("group", exp.Group(expressions=[e.copy() for e in group_exprs]))
    for part in ("having", "order", "limit", "offset"):
        state.set(part, None)

    # the changed lines, now and as the last build saw silver: per relation read, the lines
    # holding one of its changed keys; a union (the keys of every row make a line's identity)
    def lines(old: bool) -> str:
        queries = []
        tables = _tables_of(tree)
        for index in range(len(tables)):
            query = _parse(sql)
            read = _tables_of(query)
            table = read[index]
            query.where(_key_filter(table.alias_or_name, relations[_relation_name(table)]), copy=False)
            found = _group_map(query, grain)
            columns = [exp.alias_(found[c].copy(), c, quoted=True) for c in grain]
            columns += [exp.alias_(_parse(f"select {a}").expressions[0], f"gold_arg_{i}", quoted=True)
                        for i, a in enumerate(atoms.args)]
            columns += [exp.alias_(_parse(f"select ({c}) is true").expressions[0], f"gold_cond_{i}", quoted=True)
                        for i, c in enumerate(atoms.conds)]
            for t_index, t in enumerate(read):
                columns += [exp.alias_(exp.column(k, table=t.alias_or_name, quoted=True), f"gold_key_{t_index}_{j}",
                                       quoted=True) for j, k in enumerate(relations[_relation_name(t)]["key"])]
            if old:
                _swap(query, relations,
                      lambda i: f"'infinity', current_setting('medallion.gold_known_{i['dep']}')::timestamptz")
            query.set("expressions", columns)
            for part in ("having", "order", "limit", "offset", "group"):
                query.set(part, None)
            queries.append(_sql(query))
        return "\nunion\n".join(queries)

    signed = ", ".join([f"sum(gold_sign) as {ROWS}"] + [f"{_delta_sql(item, atoms)} as {_q(item['name'])}"
                                                        for item in atoms.items])
    delta = (f"select {g}, {signed}\nfrom (\n"
             f"select 1 as gold_sign, new_lines.* from (\n{lines(False)}\n) as new_lines\n"
             f"union all\n"
             f"select -1, old_lines.* from (\n{lines(True)}\n) as old_lines\n"
             f") as changed_lines\ngroup by {g}")
    return {"state_sql": _sql(state), "delta_sql": delta, "atoms": atoms.items, "rows": ROWS,
            "derived": ", ".join(items), "having": having,
            "sums": [item["name"] for item in atoms.items if item["kind"] == "sum"]}


def _tables_of(tree: exp.Select) -> list[exp.Table]:
    return [t for t in tree.find_all(exp.Table) if isinstance(t.parent, (exp.From, exp.Join))]


def _derive(value: exp.Expression, replaced: dict[int, exp.Expression], groups: dict[str, exp.Expression]) -> exp.Expression:
    """value with its aggregates as state expressions and its grouped expressions as grain columns."""
    def walk(node: exp.Expression) -> exp.Expression:
        if id(node) in replaced:
            return replaced[id(node)].copy()
        for name, expression in groups.items():
            if node == expression:
                return exp.column(name, quoted=True)
        copy = node.__class__(**{k: v for k, v in node.args.items()})
        for key, child in node.args.items():
            if isinstance(child, exp.Expression):
                copy.set(key, walk(child))
            elif isinstance(child, list):
                copy.set(key, [walk(c) if isinstance(c, exp.Expression) else c for c in child])
        return copy
    return walk(value)


def _atom_sql(item: dict) -> str:
    """An atom over all lines (the state's full build)."""
    cond = f" filter (where {item['cond']})" if item["cond"] else ""
    if item["kind"] == "n":
        return f"count(*){cond}"
    if item["kind"] == "count":
        return f"count({item['arg']}){cond}"
    return f"sum({item['arg']}){cond}"


def _delta_sql(item: dict, atoms: _Atoms) -> str:
    """An atom's change over the signed changed lines (+1 now, -1 as the last build saw them)."""
    conds = []
    if item["cond"]:
        conds.append(f"gold_cond_{atoms.conds.index(item['cond'])}")
    arg = f"gold_arg_{atoms.args.index(item['arg'])}" if item["arg"] else None
    if item["kind"] == "count":
        conds.append(f"{arg} is not null")
    where = f" filter (where {' and '.join(conds)})" if conds else ""
    if item["kind"] == "sum":
        return f"sum(gold_sign * {arg}){where}"
    return f"coalesce(sum(gold_sign){where}, 0)"
