"""Delta maintenance of a mart's aggregates, planned from its SQL with sqlglot.

A mart on this path is either ONE aggregating SELECT, or a SELECT that joins aggregating CTEs
("blocks") on the whole grain (USING or equal grain columns; inner, left or full joins), e.g.
Pagila's vw_store_scorecard. A block's lines come from silver relations joined inner or left
(on equal columns), or from a UNION ALL of such SELECTs in its FROM. Per block the state keeps,
per group, what its aggregates are made of ("atoms"):

- sum(x) as its sum and its count of non-null values (a sum of only NULLs stays NULL), count(*)
  and count(x) as counts, avg as sum/count, each with an optional FILTER: one row per group in
  the block's state table, moved by the same aggregates over the changed lines as silver holds
  them now minus as the last build saw them; the group vanishes when its line count reaches 0;
- min(x), max(x) and count(distinct x): per group, its values and how many lines hold each (two
  arrays in a table of its own, a row per group: a group's distinct values, not its lines),
  moved by the changed lines; for the groups the block's changed lines touched, the
  aggregate is then taken again from the values still held and kept in the block's state row,
  so deriving a touched group never reads the values of a block that did not change.

A line is a row of the block's FROM/JOIN/WHERE (or of its UNION ALL, tagged with its branch)
before GROUP BY; it is changed when a row in it has a key bronze changed in a column the line
reads (sqlshape.ChangedKeys): a line none of whose rows changed is the same line before and
after, so it cancels out of the difference, and a group's other lines are never read. The
touched groups' mart rows are then derived from the states: the mart's own SQL with each
block read from its state (HAVING applied there).

Sums over floating types are not exact under subtraction (found at build time from the
state's column types: gold_plain_delta_check); those marts, and any other shape (right/full
joins inside a block, a block over another block, sum(distinct)...), raise Untraceable with
the reason, and plan.py's touched-group recompute maintains them.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

from medallion.gold.errors import Untraceable
from medallion.gold.sqlshape import ChangedKeys, as_last_seen, _group_map, _parse, _relation_name, _sql, _swap, filter_lines

ROWS = "gold_rows"  # count(*) of a group's lines in the state
# a group's values of a min/max/count(distinct), and how many of its lines hold each
_VALUE_ARRAYS = "array_agg(gold_value order by gold_value) as gold_values, array_agg(gold_n order by gold_value) as gold_counts"


def _q(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("postgres")


def _blocks(tree: exp.Expression, grain: list[str]) -> tuple[dict[str | None, exp.Select], exp.Select | None]:
    """{CTE name (None: the top SELECT): the aggregating block}, and the top SELECT when it joins
    blocks (None when the top SELECT is the one block); Untraceable naming what keeps it off."""
    if not isinstance(tree, exp.Select):
        raise Untraceable(f"a {type(tree).__name__.upper()} at the top")
    if tree.args.get("distinct"):
        raise Untraceable("SELECT DISTINCT")
    if tree.args.get("group"):
        return {None: tree}, None
    ctes = {cte.alias_or_name: cte.this for cte in (tree.args.get("with_") or exp.With()).expressions}
    sources = [tree.args["from_"].this] + [join.this for join in tree.args.get("joins") or []]
    blocks: dict[str | None, exp.Select] = {}
    for source in sources:
        body = ctes.get(source.name) if isinstance(source, exp.Table) and not source.db else None
        if not isinstance(body, exp.Select) or not body.args.get("group"):
            raise Untraceable(f"{_sql(source)} joined after the aggregation that is not an aggregate of the grain")
        blocks[source.name] = body
    for item in tree.expressions:
        if item.find(exp.AggFunc):
            raise Untraceable("an aggregate over the blocks' results")
    for join in tree.args.get("joins") or []:
        if join.kind not in ("", "OUTER", "INNER") or join.side not in ("", None, "LEFT", "FULL", "RIGHT"):
            raise Untraceable(f"a {join.kind.lower()} join of the aggregates")
        using = [c.name for c in join.args.get("using") or []]
        names = []
        for equal in (join.args.get("on") or exp.true()).find_all(exp.EQ):
            if isinstance(equal.this, exp.Column) and isinstance(equal.expression, exp.Column) \
                    and equal.this.name == equal.expression.name and equal.this.table != equal.expression.table:
                names.append(equal.this.name)
        if sorted(using or names) != sorted(grain):
            raise Untraceable(f"aggregates joined on other columns than the grain ({', '.join(grain)})")
    return blocks, tree


def _branches(block: exp.Select) -> tuple[list[exp.Select], exp.Subquery | None]:
    """The SELECTs a block's lines come from: itself (its FROM and JOINs are silver relations),
    or each branch of the UNION ALL in its FROM (with that derived table)."""
    source = block.args["from_"].this
    if not isinstance(source, exp.Subquery):
        return [block], None
    if block.args.get("joins"):
        raise Untraceable("a derived table joined inside an aggregate")
    if source.args.get("alias") and source.args["alias"].args.get("columns"):
        raise Untraceable("a derived table with a column list")
    branches: list[exp.Select] = []
    todo = [source.this]
    while todo:
        node = todo.pop(0)
        if isinstance(node, exp.Union) and not node.args.get("distinct"):
            todo[:0] = [node.this, node.expression]
        elif isinstance(node, exp.Select) and not node.args.get("group") and not node.args.get("distinct"):
            branches.append(node)
        else:
            raise Untraceable("a derived table inside an aggregate that is not a UNION ALL of joins")
    return branches, source


def _check_branch(branch: exp.Select, relations: dict) -> list[exp.Table]:
    tables = [t for t in [branch.args["from_"].this] + [j.this for j in branch.args.get("joins") or []]]
    for table in tables:
        info = relations.get(_relation_name(table)) if isinstance(table, exp.Table) else None
        if not info or not info.get("as_of") or not info.get("key"):
            raise Untraceable(f"{_sql(table)} read without a history")
    for join in branch.args.get("joins") or []:
        if join.side not in ("", None, "LEFT") or join.kind not in ("", "INNER", "CROSS", "OUTER"):
            raise Untraceable(f"a {(join.side or join.kind).lower()} join inside an aggregate")
    return tables


def _inline(tree: exp.Expression) -> exp.Expression:
    """A block reading a CTE that does not aggregate reads it as a derived table instead."""
    ctes = {cte.alias_or_name: cte.this for cte in (tree.args.get("with_") or exp.With()).expressions}
    for select in list(tree.find_all(exp.Select)):
        source = (select.args.get("from_") or exp.From()).this
        if select.args.get("group") and isinstance(source, exp.Table) and not source.db \
                and source.name in ctes and not ctes[source.name].args.get("group"):
            source.replace(exp.Subquery(this=ctes[source.name].copy(),
                                        alias=exp.TableAlias(this=exp.to_identifier(source.alias_or_name))))
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
    """The distinct sums and counts a block's aggregates are made of, named gold_sum_i,
    gold_count_i, gold_n_i; and the values its min/max/count(distinct) keep, gold_value_i."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []  # {name, kind: sum|count|n, arg, cond}
        self.values: list[dict[str, Any]] = []  # {name, kind: min|max|distinct, arg, cond}
        self.args: list[str] = []
        self.conds: list[str] = []

    def _find_or_add(self, found: list[dict[str, Any]], prefix: str, kind: str, a: str | None, c: str | None) -> str:
        """The name of the item (kind, argument, condition) in `found`, added when new."""
        for item in found:
            if (item["kind"], item["arg"], item["cond"]) == (kind, a, c):
                return item["name"]
        if a is not None and a not in self.args:
            self.args.append(a)
        if c is not None and c not in self.conds:
            self.conds.append(c)
        name = f"{prefix}_{len(found) + 1}"
        found.append({"name": name, "kind": kind, "arg": a, "cond": c})
        return name

    def add(self, kind: str, arg: exp.Expression | None, cond: exp.Expression | None) -> str:
        a = _sql(arg) if arg is not None else None
        c = _sql(cond) if cond is not None else None
        if kind == "n" and c is None:
            return ROWS
        return self._find_or_add(self.items, f"gold_{kind}", kind, a, c)

    def add_value(self, kind: str, arg: exp.Expression, cond: exp.Expression | None) -> str:
        return self._find_or_add(self.values, "gold_value", kind, _sql(arg), _sql(cond) if cond is not None else None)


def _rewrite(aggregate: exp.Expression, atoms: _Atoms) -> exp.Expression:
    """The aggregate as an expression over the block's state."""
    function, cond = _aggregate_parts(aggregate)
    arg = function.this
    if isinstance(function, exp.Count) and isinstance(arg, exp.Distinct):
        if len(arg.expressions) != 1:
            raise Untraceable("count(distinct) of several columns")
        name = atoms.add_value("distinct", arg.expressions[0], cond)
        return exp.paren(_parse(f"select coalesce({_q(name)}, 0)").expressions[0], copy=False)
    if isinstance(arg, exp.Distinct) or function.args.get("distinct"):
        raise Untraceable(f"{function.key}(distinct)")
    if isinstance(function, (exp.Max, exp.Min)) and arg is not None and not function.expressions:
        return exp.column(atoms.add_value(function.key, arg, cond), quoted=True)
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
    raise Untraceable(f"{function.key}() (sum, count, avg, min, max and count(distinct) are maintained)")


class _Names:
    """The state tables of a mart: block 0's is <mart>__state itself, block b's <mart>__state_b,
    and the values of block b's min/max/count(distinct) i <mart>__state_b_vi."""

    def __init__(self, state: list[str]) -> None:
        self.database, self.schema, self.identifier = state

    def table(self, block: int, value: int | None = None) -> str:
        name = self.identifier + (f"_{block}" if block or value is not None else "") + (f"_v{value}" if value else "")
        return ".".join(_q(part) for part in (self.database, self.schema, name) if part)


def plan_delta(sql: str, relations: dict, grain: list[str], changed: ChangedKeys, state: list[str]) -> dict[str, Any]:
    """The delta plan of a mart (see the module's docstring): plain data for Jinja, or Untraceable."""
    tree = _inline(_parse(sql))
    blocks, combiner = _blocks(tree, grain)
    names = _Names(state)
    g = ", ".join(_q(c) for c in grain)
    state_sql: list[str] = []
    delta_sql: list[str] = []
    probes: list[dict[str, Any]] = []
    derivations: dict[str | None, str] = {}
    for b, (where, block) in enumerate(blocks.items()):
        branches, _ = _branches(block)
        for branch in branches:
            _check_branch(branch, relations)
        groups = _group_map(block, grain)
        atoms = _Atoms()
        replaced = {id(aggregate): _rewrite(aggregate, atoms) for aggregate in _aggregates(block)}
        main = names.table(b)
        values = [names.table(b, v + 1) for v in range(len(atoms.values))]

        # the state from every line (a full build)
        full = block.copy()
        full.set("expressions", [exp.alias_(groups[c].copy(), c, quoted=True) for c in grain]
                 + [_parse(f"select count(*) as {ROWS}").expressions[0]]
                 + [_parse(f"select {_atom_sql(item)} as {_q(item['name'])}").expressions[0] for item in atoms.items]
                 + [_parse(f"select {_value_sql(item)} as {_q(item['name'])}").expressions[0] for item in atoms.values])
        full.set("group", exp.Group(expressions=[groups[c].copy() for c in grain]))
        for part in ("having", "order", "limit", "offset", "with_"):
            full.set(part, None)
        probes.append({"sql": _sql(full), "sums": [item["name"] for item in atoms.items if item["kind"] == "sum"]})
        state_sql.append(f"drop table if exists {main};\ncreate table {main} as\n{_sql(full)};\n"
                         f"alter table {main} add primary key ({g});\nanalyze {main};")
        for item, table in zip(atoms.values, values):
            kept = block.copy()
            value = _parse(f"select {item['arg']}").expressions[0]
            kept.set("expressions", [exp.alias_(groups[c].copy(), c, quoted=True) for c in grain]
                     + [exp.alias_(value.copy(), "gold_value", quoted=True),
                        _parse("select cast(count(*) as integer) as gold_n").expressions[0]])
            kept.set("group", exp.Group(expressions=[groups[c].copy() for c in grain] + [value.copy()]))
            for part in ("having", "order", "limit", "offset", "with_"):
                kept.set(part, None)
            kept.where(f"({item['arg']}) is not null" + (f" and ({item['cond']}) is true" if item["cond"] else ""),
                       dialect="postgres", copy=False)
            state_sql.append(f"drop table if exists {table};\ncreate table {table} as\n"
                             f"select {g}, {_VALUE_ARRAYS} from (\n{_sql(kept)}\n) as gold_kept group by {g};\n"
                             f"alter table {table} add primary key ({g});\nanalyze {table};")

        # the changed lines, now and as the last build saw silver: per branch and relation read,
        # the lines holding one of its changed keys; a union (a line's identity is its branch
        # and the keys of its rows)
        def lines(old: bool, where: str | None = where, b: int = b) -> str:
            queries = []
            for i, branch in enumerate(branches):
                for t in range(len(_check_branch(branch, relations))):
                    query = _locate(_inline(_parse(sql)), where)
                    mine, subquery = _branches(query)
                    target = mine[i]
                    scope = next(s for s in traverse_scope(query) if s.expression is target)
                    read = _check_branch(target, relations)
                    filter_lines(scope, read[t], relations, changed, strict=True, old=old)
                    identity = ", ".join([str(i)] + [_sql(exp.column(k, table=r.alias_or_name, quoted=True))
                                                     for r in read for k in relations[_relation_name(r)]["key"]])
                    line_id = f"row({identity})::text"
                    if subquery is not None:
                        # alone, a branch names its columns as the UNION's first branch does
                        outputs = [e.alias_or_name for e in mine[0].expressions]
                        target.set("expressions", [exp.alias_(e.this if isinstance(e, exp.Alias) else e, name)
                                                   for e, name in zip(target.expressions, outputs)]
                                   + [_parse(f"select {line_id} as gold_line_id").expressions[0]])
                        subquery.set("this", target)
                        line_id = f"{_q(subquery.alias_or_name)}.gold_line_id"
                    found = _group_map(query, grain)
                    columns = [exp.alias_(found[c].copy(), c, quoted=True) for c in grain]
                    columns += [exp.alias_(_parse(f"select {a}").expressions[0], f"gold_arg_{k}", quoted=True)
                                for k, a in enumerate(atoms.args)]
                    columns += [exp.alias_(_parse(f"select ({c}) is true").expressions[0], f"gold_cond_{k}", quoted=True)
                                for k, c in enumerate(atoms.conds)]
                    columns.append(exp.alias_(_parse(f"select {line_id}").expressions[0], "gold_line_id", quoted=True))
                    if old:
                        _swap(query, relations, as_last_seen)
                    query.set("expressions", columns)
                    for part in ("having", "order", "limit", "offset", "group", "with_"):
                        query.set(part, None)
                    queries.append(_sql(query))
            return "\nunion\n".join(queries)

        signed = ", ".join([f"sum(gold_sign) as {ROWS}"] + [f"{_delta_sql(item, atoms)} as {_q(item['name'])}"
                                                            for item in atoms.items])
        updates = [f"{_q(ROWS)} = state.{_q(ROWS)} + excluded.{_q(ROWS)}"] + [
            f"{_q(item['name'])} = coalesce(state.{_q(item['name'])}, 0) + coalesce(excluded.{_q(item['name'])}, 0)"
            if item["kind"] == "sum" else f"{_q(item['name'])} = state.{_q(item['name'])} + excluded.{_q(item['name'])}"
            for item in atoms.items]
        columns = ", ".join([g, _q(ROWS)] + [_q(item["name"]) for item in atoms.items])
        delta_sql.append(
            f"drop table if exists gold_lines_{b}, gold_delta_{b};\n"
            f"create temporary table gold_lines_{b} on commit drop as\n"
            f"select 1 as gold_sign, new_lines.* from (\n{lines(False)}\n) as new_lines\nunion all\n"
            f"select -1, old_lines.* from (\n{lines(True)}\n) as old_lines;\n"
            f"create temporary table gold_delta_{b} on commit drop as\n"
            f"select {g}, {signed} from gold_lines_{b} group by {g};\n"
            f"insert into {main} as state ({columns}) select {columns} from gold_delta_{b}\n"
            f"on conflict ({g}) do update set {', '.join(updates)};\n"
            f"delete from {main} where {_q(ROWS)} = 0 and ({g}) in (select {g} from gold_delta_{b});")
        for v, (item, table) in enumerate(zip(atoms.values, values)):
            # the values of the groups this block's lines touched, moved by those lines: the
            # group's arrays rewritten (a group's distinct values, not its lines)
            arg = f"gold_arg_{atoms.args.index(item['arg'])}"
            cond = f" and gold_cond_{atoms.conds.index(item['cond'])}" if item["cond"] else ""
            held = ", ".join(f"s.{_q(c)}" for c in grain)
            delta_sql.append(
                f"drop table if exists gold_values_{b}_{v};\n"
                f"create temporary table gold_values_{b}_{v} on commit drop as\n"
                f"select {g}, {_VALUE_ARRAYS} from (\n"
                f"    select {g}, gold_value, cast(sum(gold_n) as integer) as gold_n from (\n"
                f"        select {held}, u.gold_value, u.gold_n from {table} as s\n"
                f"        cross join lateral unnest(s.gold_values, s.gold_counts) as u(gold_value, gold_n)\n"
                f"        where ({held}) in (select {g} from gold_delta_{b})\n"
                f"        union all\n"
                f"        select {g}, {arg}, gold_sign from gold_lines_{b} where {arg} is not null{cond}\n"
                f"    ) as moved group by {g}, gold_value having sum(gold_n) <> 0\n"
                f") as kept group by {g};\n"
                f"delete from {table} where ({g}) in (select {g} from gold_delta_{b});\n"
                f"insert into {table} select * from gold_values_{b}_{v};")
        if atoms.values:
            # the groups this block's lines touched take their min/max/count(distinct) from the values held
            match = " and ".join(f"v.{_q(c)} = state.{_q(c)}" for c in grain)
            sets = ", ".join(
                f"{_q(item['name'])} = (select cardinality(v.gold_values) from {table} as v where {match})"
                if item["kind"] == "distinct" else
                f"{_q(item['name'])} = (select {item['kind']}(x) from {table} as v, unnest(v.gold_values) as x where {match})"
                for item, table in zip(atoms.values, values))
            delta_sql.append(f"update {main} as state set {sets}\nwhere ({g}) in (select {g} from gold_delta_{b});")

        # the block's rows of the touched groups, from its state
        state_columns = set(grain) | {ROWS} | {item["name"] for item in atoms.items + atoms.values}
        items = []
        for item in block.expressions:
            value = item.this if isinstance(item, exp.Alias) else item
            derived_value = _derive(value, replaced, groups)
            for column in derived_value.find_all(exp.Column):
                if column.table or column.name not in state_columns:
                    raise Untraceable(f"a selected column neither grouped nor aggregated ({_sql(value)})")
            items.append(f"{_sql(derived_value)} as {_q(item.alias_or_name)}")
        scope_filter = f"({g}) in (select {g} from gold_scope)"
        having = f" and ({_sql(_derive(block.args['having'].this, replaced, groups))})" if block.args.get("having") else ""
        derivations[where] = f"select {', '.join(items)}\nfrom {main} as gold_state\nwhere {scope_filter}{having}"

    if combiner is None:
        derived_sql = derivations[None]
    else:
        top = _inline(_parse(sql))
        for cte in top.args["with_"].expressions:
            if cte.alias_or_name in derivations:
                cte.set("this", _parse(derivations[cte.alias_or_name]))
        derived_sql = _sql(top)
    scope_sql = "\nunion\n".join(f"select {g} from gold_delta_{b}" for b in range(len(blocks)))
    return {"state_sql": "\n".join(state_sql), "probes": probes,
            "delta_sql": "\n".join(delta_sql) + f"\ncreate temporary table gold_scope on commit drop as\n{scope_sql};",
            "derived_sql": derived_sql, "keys_sql": changed.sql()}


def _locate(tree: exp.Expression, where: str | None) -> exp.Select:
    """The block of a freshly parsed mart: the top SELECT, or the CTE of that name (returned
    with its FROM's silver relations; the caller edits it in place)."""
    if where is None:
        return tree
    found = next(cte.this for cte in tree.args["with_"].expressions if cte.alias_or_name == where)
    return found


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


def _value_sql(item: dict) -> str:
    """A min/max/count(distinct) over all lines (the state's full build)."""
    cond = f" filter (where {item['cond']})" if item["cond"] else ""
    if item["kind"] == "distinct":
        return f"count(distinct {item['arg']}){cond}"
    return f"{item['kind']}({item['arg']}){cond}"


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
