"""What a gold mart's plain SQL needs to be refreshed incrementally, read with sqlglot.

A mart is one SELECT over silver relations (through `ref`). The gold_mart materialization
(medallion/dbt/macros/gold/gold_mart.sql) hands this module the compiled SQL and, for every
relation the model refs, what silver knows of it (its key, its key's types, its history's as-of
function), and gets back the statements of an incremental build:

- the grain: the GROUP BY columns of the aggregating blocks (every SELECT with a GROUP BY),
  which all group by the mart's key under the same output names;
- touched_sql: the groups a change reaches. For every aggregating block and every silver
  relation under it, the block's lines (group keys and the columns it reads) over the rows
  whose key changed since the last build, on silver now and on silver as the last build saw it
  (each relation swapped for its history as known at that build: `<name>_as_of('infinity',
  known)`); the groups of the lines on one side only. A line that moved between groups is
  found in both; a deleted one in the old state; a change in a dimension only through the
  join; a change to a column no block reads touches nothing;
- scoped_sql: the same SQL with every aggregating block filtered to the groups in gold_scope,
  so only touched groups are recomputed;
- join_columns / group_columns: per silver relation, the columns the SQL joins it through and
  its grain columns, which the materialization indexes (gold_plain_indexes_sql) so that the
  two queries above look rows up instead of reading relations whole;
- as_of_sql / as_of_known_sql: the same SQL over the histories' as-of functions, for
  gold.<mart>_as_of(ts[, known]);
- delta (medallion/gold/delta.py): for a mart of one aggregating SELECT of inner joins whose
  aggregates are sum/count/avg (with FILTER), the per-group state those aggregates are
  maintained in from the changed lines' old and new values, without reading a group's other
  lines; otherwise `recompute` names why the touched groups are recomputed instead.

What it cannot maintain that way (a window function, LIMIT, a subquery outside FROM, a
relation joined after the aggregation, a volatile function, no GROUP BY...) makes `full` name
the construct: the mart is then computed in full at every build, and the build says so.
A relation that is not a traceable silver relation is an `error` naming it.
"""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from medallion.gold.errors import Untraceable
from medallion.gold.notes import NOTES
from medallion.gold.sqlshape import ChangedKeys, as_last_seen, _group_map, _parse, _relation_name, _sql, _swap, _tables, filter_lines

VOLATILE = {"now", "random", "clock_timestamp", "current_timestamp", "statement_timestamp", "timeofday",
            "gen_random_uuid", "txid_current", "nextval"}


def _scopes(tree: exp.Expression) -> list[Scope]:
    return list(traverse_scope(tree))


def _reach(scope: Scope) -> list[Scope]:
    """Every scope whose rows reach this one's FROM: derived tables, CTEs read, union branches."""
    seen: list[Scope] = []
    todo = [scope]
    while todo:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        # the sources its FROM and JOINs name (scope.sources also lists every CTE in sight)
        todo += [source for _, source in current.selected_sources.values() if isinstance(source, Scope)]
        todo += list(current.set_operation_scopes)
    return seen


def _check(tree: exp.Expression) -> None:
    """Constructs whose result a recompute of touched groups would not reproduce."""
    if tree.find(exp.Window):
        raise Untraceable("a window function")
    for select in tree.find_all(exp.Select):
        if select.args.get("limit") or select.args.get("offset"):
            raise Untraceable("LIMIT/OFFSET")
    for function in tree.find_all(exp.Anonymous, exp.CurrentTimestamp, exp.Rand):
        name = function.name.lower() if isinstance(function, exp.Anonymous) else type(function).__name__.lower()
        if name in VOLATILE or isinstance(function, (exp.CurrentTimestamp, exp.Rand)):
            raise Untraceable(f"the volatile function {function.sql('postgres', normalize_functions=False)}")
    for subquery in tree.find_all(exp.Subquery, exp.Exists):
        if isinstance(subquery, exp.Exists) or not isinstance(subquery.parent, (exp.From, exp.Join)):
            if not (isinstance(subquery, exp.Subquery) and isinstance(subquery.parent, (exp.Union,))):
                raise Untraceable("a subquery outside FROM")
    for node in tree.find_all(exp.In):
        if node.args.get("query"):
            raise Untraceable("a subquery outside FROM")


def plan_mart(mart: str, sql: str, relations: dict[str, dict], grain: list[str] | None = None,
              state: list[str] | None = None) -> dict[str, Any]:
    """The incremental plan of one mart (see the module's docstring); plain data for Jinja.
    state: [database, schema, identifier] of <mart>__state, the delta path's first table."""
    plan: dict[str, Any] = {"error": None, "full": None, "grain": None, "touched_sql": None, "keys_sql": "",
                            "scoped_sql": None, "as_of_sql": None, "as_of_known_sql": None, "deps": [], "note": None,
                            "delta": None, "recompute": None, "join_columns": {},
                            "group_columns": {}}
    try:
        tree = _parse(sql)
    except sqlglot.errors.ParseError as error:
        plan["error"] = f"{mart}: its SQL cannot be read ({str(error).splitlines()[0]})"
        return plan
    for table in tree.find_all(exp.Table):
        if isinstance(table.parent, (exp.From, exp.Join)) and _relation_name(table) not in relations \
                and not any(cte.alias_or_name == table.name for cte in tree.find_all(exp.CTE)):
            plan["error"] = (f"{mart} reads {table.sql('postgres', normalize_functions=False)}, which is not a silver relation the engine can "
                             "trace (read silver through ref('<silver model>'))")
            return plan
    for name, info in relations.items():
        if info.get("untraceable"):
            plan["error"] = f"{mart} reads {info['untraceable']}: the engine cannot trace its changes to silver keys"
            return plan
    try:
        as_of = tree.copy()
        _swap(as_of, relations, "ts")
        as_of_known = tree.copy()
        _swap(as_of_known, relations, "ts, known")
        plan["as_of_sql"] = _sql(as_of)
        plan["as_of_known_sql"] = _sql(as_of_known)
    except (KeyError, TypeError):
        pass
    changed = ChangedKeys(relations)
    try:
        _plan_incremental(tree, sql, relations, grain, plan, changed)
        from medallion.gold.delta import plan_delta

        try:
            plan["delta"] = plan_delta(sql, relations, plan["grain"], changed, state or ["", "medallion", f"{mart}__state"])
        except Untraceable as reason:
            plan["recompute"] = str(reason)
        plan["keys_sql"] = changed.sql()
    except Untraceable as reason:
        plan["full"] = str(reason)
        plan["grain"] = plan["grain"] or grain
        note = f"{mart} is built in full at every build: its SQL has {reason}"
        plan["note"] = note
        if note not in NOTES:
            NOTES.append(note)
    return plan


def _plan_incremental(tree: exp.Expression, sql: str, relations: dict, grain: list[str] | None,
                      plan: dict, changed: ChangedKeys) -> None:
    if not isinstance(tree, exp.Select):
        raise Untraceable(f"a {type(tree).__name__.upper()} at the top")
    _check(tree)
    for name, info in relations.items():
        if info.get("full"):
            raise Untraceable(info["full"])
    scopes = _scopes(tree)
    blocks = [i for i, s in enumerate(scopes) if isinstance(s.expression, exp.Select) and s.expression.args.get("group")]
    if not blocks:
        raise Untraceable("no GROUP BY (a mart is an aggregate by its grain)")
    root = scopes[-1]
    if root.expression is not tree:
        raise Untraceable("a top-level statement the engine cannot read")
    if grain is None:
        grain = list(_group_map(scopes[blocks[0]].expression, None))
    outputs = [e.alias_or_name for e in tree.expressions]
    missing = [g for g in grain if g not in outputs]
    if missing:
        raise Untraceable(f"no output column {missing[0]} of the grain")
    plan["grain"] = grain
    under_blocks: set[int] = set()
    for b in blocks:
        _group_map(scopes[b].expression, grain)
        under_blocks |= {i for i, s in enumerate(scopes) for r in _reach(scopes[b]) if r is s}
    for i, scope in enumerate(scopes):
        if _tables(scope) and i not in under_blocks:
            raise Untraceable(f"{_tables(scope)[0].sql('postgres', normalize_functions=False)} joined outside the aggregation")

    touched: list[str] = []
    deps: set[int] = set()
    for b in blocks:
        reached = [i for i, s in enumerate(scopes) for r in _reach(scopes[b]) if r is s]
        for u in reached:
            for t_index, table in enumerate(_tables(scopes[u])):
                info = relations[_relation_name(table)]
                deps.add(info["dep"])
                touched.append(_touched_diff(sql, b, u, t_index, grain, relations, changed))
    plan["deps"] = sorted(deps)
    plan["touched_sql"] = "\nunion\n".join(f"select * from ({q}) as touched_{i}" for i, q in enumerate(touched))
    plan["join_columns"] = join_columns(tree, relations)

    scoped = _parse(sql)
    scoped_scopes = _scopes(scoped)
    g = ", ".join(_sql(exp.to_identifier(c, quoted=True)) for c in grain)
    for b in blocks:
        select = scoped_scopes[b].expression
        groups = _group_map(select, grain)
        exprs = ", ".join(_sql(groups[c]) for c in grain)
        # `(...) is true` keeps the filter a hashed subplan on the block's rows: as a semi join the
        # planner may join gold_scope with one table first and multiply rows (measured: 67M rows)
        select.where(sqlglot.condition(f"(({exprs}) in (select {g} from gold_scope)) is true", dialect="postgres"),
                     copy=False)
        # and, per grain column that is a column of one silver relation (a film's id), the same
        # filter on that relation alone, which an index on the column (gold_plain_indexes_sql)
        # answers: the touched groups' rows are found by lookups. (Not an expression such as a
        # month of a timestamp: the planner cannot estimate how many rows its filter keeps, and
        # a wrong guess costs a nested loop over the whole relation, measured.)
        sources = {alias: source for alias, (_, source) in scoped_scopes[b].selected_sources.items()}
        for c in grain:
            found = groups[c]
            if not isinstance(found, exp.Column) or not isinstance(sources.get(found.table), exp.Table) \
                    or _relation_name(sources[found.table]) not in relations:
                continue
            column = exp.to_identifier(c, quoted=True).sql("postgres")
            select.where(sqlglot.condition(f"{found.sql('postgres', normalize_functions=False)} in "
                                           f"(select distinct {column} from gold_scope)", dialect="postgres"), copy=False)
            names = plan["group_columns"].setdefault(_relation_name(sources[found.table]), [])
            if found.name not in names:
                names.append(found.name)
    plan["scoped_sql"] = _sql(scoped)


def _touched_diff(sql: str, block: int, scope: int, table_index: int, grain: list[str], relations: dict,
                  changed: ChangedKeys) -> str:
    """The groups of one aggregating block whose lines holding a changed key of one relation it
    reads differ between silver now and silver as the last build saw it. A line is the block's
    group and every column the block reads (as text: equal values that print differently only
    touch a group more, never less); a line the change left as it was (a column the mart does
    not read changed, e.g. a film's rental_rate) is in both and touches nothing."""
    now = _touched_query(sql, block, scope, table_index, grain, relations, changed, old=False)
    then = _touched_query(sql, block, scope, table_index, grain, relations, changed, old=True)
    g = ", ".join(exp.to_identifier(c, quoted=True).sql("postgres") for c in grain)
    if now is None or then is None:  # a block whose lines cannot be listed: every group its changed keys reach
        now = _touched_query(sql, block, scope, table_index, grain, relations, changed, old=False, lines=False)
        then = _touched_query(sql, block, scope, table_index, grain, relations, changed, old=True, lines=False)
        return f"select * from ({now}) as gold_now\nunion\nselect * from ({then}) as gold_then"
    return (f"with gold_now as materialized ({now}), gold_then as materialized ({then})\n"
            f"select {g} from (select * from gold_now except all select * from gold_then) as appeared\n"
            f"union\nselect {g} from (select * from gold_then except all select * from gold_now) as gone")


def _exclude_siblings(scopes: list[Scope], block: int, scope: int) -> None:
    """Under the block, the branches of a UNION that do not lead to `scope` add no line: the
    changed keys of a relation in one branch reach no row of the others. (Not under EXCEPT or
    INTERSECT, whose other branch decides which rows of this one remain.)"""
    def empty(branch: Scope) -> None:
        if isinstance(branch.expression, exp.Select):
            branch.expression.where("false", copy=False)
        for inner in branch.set_operation_scopes:
            empty(inner)

    for union in _reach(scopes[block]):
        if not union.set_operation_scopes or not isinstance(union.expression, exp.Union):
            continue
        for branch in union.set_operation_scopes:
            if not any(r is scopes[scope] for r in _reach(branch)):
                empty(branch)


def _touched_query(sql: str, block: int, scope: int, table_index: int, grain: list[str], relations: dict,
                   changed: ChangedKeys, old: bool, lines: bool = True) -> str | None:
    """The groups of one aggregating block reached by the changed keys of one relation it reads,
    now (old=False) or as the last build saw silver (old=True); with lines, each such line with
    the columns the block reads (gold_line), or None when the block reads a star."""
    tree = _parse(sql)
    scopes = _scopes(tree)
    table = _tables(scopes[scope])[table_index]
    filter_lines(scopes[scope], table, relations, changed, old=old)
    _exclude_siblings(scopes, block, scope)
    select = scopes[block].expression
    groups = _group_map(select, grain)
    read = _read_columns(select)
    if lines and read is None:
        return None
    if old:
        _swap(tree, relations, as_last_seen)
    query = select.copy()
    columns = [exp.alias_(groups[c].copy(), c, quoted=True) for c in grain]
    if lines:
        line = f"row({', '.join(read)})::text" if read else "''"
        columns.append(exp.alias_(sqlglot.parse_one(line, read="postgres"), "gold_line", quoted=True))
    query.set("expressions", columns)
    for part in ("having", "order", "limit", "offset", "distinct"):
        query.set(part, None)
    query.set("group", None)
    if select is not tree and tree.args.get("with_"):
        query.set("with_", tree.args["with_"].copy())
    return _sql(query)


def _read_columns(select: exp.Select) -> list[str] | None:
    """Every column a block's SELECT reads (select list, joins, WHERE, GROUP BY, HAVING), outside
    its subqueries, as SQL; None when it reads a star."""
    found: list[str] = []
    if any(isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))
           for e in select.expressions):
        return None
    for part in ("expressions", "joins", "where", "group", "having"):
        value = select.args.get(part)
        for node in value if isinstance(value, list) else [value] if value is not None else []:
            for column in node.find_all(exp.Column):
                if column.find_ancestor(exp.Select) is not select:
                    continue
                text = _sql(column)
                if text not in found:
                    found.append(text)
    return found


def join_columns(tree: exp.Expression, relations: dict) -> dict[str, list[str]]:
    """{silver relation: the columns through which the mart's SQL joins it to another}: the
    path a changed key takes to the lines and groups it reaches, and a group to its lines. The
    materialization makes sure each is indexed (gold_plain_indexes_sql), so finding them reads
    the few rows they name, not the relation whole."""
    found: dict[str, list[str]] = {}
    for scope in _scopes(tree):
        aliases = {alias: _relation_name(source) for alias, (_, source) in scope.selected_sources.items()
                   if isinstance(source, exp.Table) and _relation_name(source) in relations}
        for join in scope.expression.args.get("joins") or [] if isinstance(scope.expression, exp.Select) else []:
            for equal in (join.args.get("on") or exp.true()).find_all(exp.EQ):
                sides = [equal.this, equal.expression]
                if not all(isinstance(side, exp.Column) and side.table in aliases for side in sides):
                    continue
                for side in sides:
                    columns = found.setdefault(aliases[side.table], [])
                    if side.name not in columns and side.name not in relations[aliases[side.table]].get("key", []):
                        columns.append(side.name)
    return found
