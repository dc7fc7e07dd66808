"""The sqlglot helpers both of gold's planners read a mart's SQL with (plan.py: touched groups;
delta.py: per-group state): a leaf, so neither planner imports the other's module to share them."""

from __future__ import annotations

from collections.abc import Callable

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


def as_last_seen(info: dict) -> str:
    """The arguments of a relation's as-of function that give silver as the mart's last build saw
    it: its history as known at the load time of the last change that build applied."""
    return f"'infinity', current_setting('medallion.gold_known_{info['dep']}')::timestamptz"


def _swap(tree: exp.Expression, relations: dict, args: str | Callable[[dict], str]) -> None:
    """Every silver relation read becomes its history's as-of function, keeping its alias."""
    for table in list(tree.find_all(exp.Table)):
        info = relations.get(_relation_name(table))
        if info is None or not info.get("as_of") or not isinstance(table.parent, (exp.From, exp.Join)):
            continue
        alias = table.alias_or_name
        call = _parse(f"select * from {info['as_of']}({args(info) if callable(args) else args}) "
                      f"as {exp.to_identifier(alias).sql('postgres', normalize_functions=False)}").args["from_"].this
        table.replace(call)


def _sql(node: exp.Expression) -> str:
    """The node as PostgreSQL. Without sqlglot's copy first: the planners generate SQL from
    trees hundreds of times per mart, and copying them was half its time (1.2 s of Pagila's
    marts at every dbt build); none of them is changed by generating it (the planners' output
    is the same text, compared)."""
    return node.sql("postgres", normalize_functions=False, copy=False)


def _columns_read(scope: Scope, table: exp.Table) -> list[str] | None:
    """The columns of `table` its scope's SELECT reads (select list, joins, WHERE, GROUP BY,
    HAVING), sorted; None when that cannot be told from the SQL alone (a star, USING, a column
    without its table's alias beside another source)."""
    select = scope.expression
    if not isinstance(select, exp.Select) or any(j.args.get("using") for j in select.args.get("joins") or []):
        return None
    alias = table.alias_or_name
    alone = len(scope.selected_sources) == 1
    found: set[str] = set()
    for column in select.find_all(exp.Column, exp.Star):
        if column.find_ancestor(exp.Select) is not select:
            continue
        if isinstance(column, exp.Star) and isinstance(column.parent, exp.AggFunc):
            continue  # count(*)
        if isinstance(column, exp.Star) or isinstance(column.this, exp.Star):
            return None
        if not column.table and column.name in scope.selected_sources:
            return None  # a whole row (`t`, e.g. row_to_json(t)) reads every column
        if column.table == alias or (not column.table and alone):
            found.add(_folded(column.this))
        elif not column.table:
            return None
    return sorted(found)


def _folded(identifier: exp.Identifier) -> str:
    """A column's name as PostgreSQL stores it: an unquoted identifier folds to lower case."""
    return identifier.name if identifier.quoted else identifier.name.lower()


class ChangedKeys:
    """The changed keys a mart's line filters read, per silver relation and the columns one
    scope of its SQL reads of it. A key whose row holds the same values of those columns now as
    when the last build saw it (a film's rental_rate changed; the scope reads its title) changes
    none of the lines that scope makes: they are the same before and after, so both sides leave
    them out and none is looked up. Each such set is a temporary table (`sql()`), made once per
    step after gold_changed_keys, and read by every filter over the same columns."""

    def __init__(self, relations: dict) -> None:
        self.relations = relations
        self.tables: dict[tuple[str, tuple[str, ...]], tuple[str, exp.Table]] = {}
        self.joins: dict[tuple[str, str, tuple[str, ...]], tuple[str, exp.Table]] = {}

    def keys_sql(self, scope: Scope, table: exp.Table) -> str:
        """A SELECT of the typed key columns of the changed keys that matter to this scope."""
        name = _relation_name(table)
        info = self.relations[name]
        casts = ", ".join(f"(key ->> {exp.Literal.string(k).sql('postgres')})::{t}" for k, t in zip(info["key"], info["types"]))
        columns = _columns_read(scope, table)
        if columns is None or not info.get("as_of"):
            return f"select {casts} from gold_changed_keys where dep = {info['dep']}"
        found = self.tables.setdefault((name, tuple(columns)), (f"gold_keys_{len(self.tables)}", table.copy()))
        return f"select {', '.join(_quote(k) for k in info['key'])} from {found[0]}"

    def rows_sql(self, scope: Scope, table: exp.Table, old: bool) -> str | None:
        """The rows of `table` holding a changed key that matters to this scope, now or (old) as
        the last build saw them, read from gold_rows_<dep> (already looked up once, with the
        relation's own row type), or None when this scope's keys are not kept there."""
        name = _relation_name(table)
        info = self.relations[name]
        columns = _columns_read(scope, table)
        if columns is None or not info.get("as_of") or (name, tuple(columns)) not in self.tables:
            return None
        keys = ", ".join(f"g.{_quote(k)}" for k in info["key"])
        side = "gold_then" if old else "gold_now"
        return (f"select ({side}).* from gold_rows_{info['dep']} as g "
                f"where ({keys}) in ({self.keys_sql(scope, table)}) and ({side}).{_quote(info['key'][0])} is not null")

    def join_values_sql(self, scope: Scope, table: exp.Table, columns: list[str]) -> str:
        """A SELECT of the values of `columns` the changed rows of `table` that matter to this
        scope hold, now and as the last build saw them (what a left join matches them on)."""
        keys = self.keys_sql(scope, table)
        name = _relation_name(table)
        found = self.joins.setdefault((name, keys, tuple(columns)), (f"gold_joins_{len(self.joins)}", table.copy()))
        return f"select {', '.join(_quote(c) for c in columns)} from {found[0]}"

    def sql(self) -> str:
        """The statements that make the temporary tables keys_sql reads (after gold_changed_keys):
        per relation, each changed key's row now and as last seen, read once (gold_rows_<dep>);
        per set of columns, the keys whose row differs in them, or exists on one side only."""
        statements = []
        for name in dict.fromkeys(name for name, _ in self.tables):
            info = self.relations[name]
            table = next(t for (n, _), (_, t) in self.tables.items() if n == name).copy()
            table.set("alias", None)
            keys = ", ".join(f"(c.key ->> {exp.Literal.string(k).sql('postgres')})::{t} as {_quote(k)}"
                             for k, t in zip(info["key"], info["types"]))
            match = " and ".join(f"r.{_quote(k)} = (c.key ->> {exp.Literal.string(k).sql('postgres')})::{t}"
                                 for k, t in zip(info["key"], info["types"]))
            then = f"{info['as_of']}({as_last_seen(info)})"
            statements.append(
                f"drop table if exists gold_rows_{info['dep']};\n"
                f"create temporary table gold_rows_{info['dep']} on commit drop as\n"
                f"select {keys}, (select r from {_sql(table)} as r where {match}) as gold_now,\n"
                f"       (select r from {then} as r where {match}) as gold_then\n"
                f"from gold_changed_keys as c where c.dep = {info['dep']};\n"
                f"analyze gold_rows_{info['dep']};\n")
        for (name, columns), (temp, _) in self.tables.items():
            info = self.relations[name]
            # a row on one side only (its key is never null), else the columns' text forms
            side = lambda row: ", ".join([f"({row}).{_quote(info['key'][0])} is null"]
                                         + [f"({row}).{_quote(c)}::text" for c in columns])
            statements.append(
                f"drop table if exists {temp};\n"
                f"create temporary table {temp} on commit drop as\n"
                f"select {', '.join(_quote(k) for k in info['key'])} from gold_rows_{info['dep']}\n"
                f"where ({side('gold_now')}) is distinct from ({side('gold_then')});\n"
                f"analyze {temp};\n")
        for (name, keys, columns), (temp, table) in self.joins.items():
            info = self.relations[name]
            table.set("alias", None)
            key = ", ".join(f"r.{_quote(k)}" for k in info["key"])
            mine = ", ".join(f"r.{_quote(c)}" for c in columns)
            then = f"{info['as_of']}({as_last_seen(info)})"
            statements.append(
                f"drop table if exists {temp};\n"
                f"create temporary table {temp} on commit drop as\n"
                f"select {mine} from {_sql(table)} as r where ({key}) in ({keys})\n"
                f"union select {mine} from {then} as r where ({key}) in ({keys});\n"
                f"analyze {temp};\n")
        return "".join(statements)


def _quote(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("postgres")


def line_filter(scope: Scope, table: exp.Table, relations: dict, changed: ChangedKeys,
                strict: bool = False) -> exp.Expression:
    """The condition that keeps, in one scope, the lines holding a changed key of `table`, now
    and as the last build saw silver alike. A table on the nullable side of a LEFT JOIN is found
    through the other side's join columns (the values its changed rows join on, before and
    after): a line that had no match before and has one now, or the reverse, is found on both
    sides. strict: Untraceable where that cannot be done (the delta path needs both sides;
    a recompute only the touched groups)."""
    alias = table.alias_or_name
    info = relations[_relation_name(table)]
    keys = changed.keys_sql(scope, table)
    join = table.parent if isinstance(table.parent, exp.Join) else None
    sides = {join.side for join in scope.expression.args.get("joins") or []} if isinstance(scope.expression, exp.Select) else set()
    if strict and (sides & {"RIGHT", "FULL"}):
        raise Untraceable(f"a {(sides & {'RIGHT', 'FULL'}).pop().lower()} join inside an aggregate")
    own_key = sqlglot.condition(f"({', '.join(_sql(exp.column(k, table=alias, quoted=True)) for k in info['key'])}) "
                                f"in ({keys})", dialect="postgres")
    if join is None or join.side != "LEFT":
        return own_key
    pairs: list[tuple[str, exp.Column]] = []
    for equal in (join.args.get("on") or exp.true()).find_all(exp.EQ):
        ends = [equal.this, equal.expression]
        if all(isinstance(e, exp.Column) for e in ends) and sum(e.table == alias for e in ends) == 1:
            mine, other = ends if ends[0].table == alias else ends[::-1]
            if other.table:
                pairs.append((_folded(mine.this), other))
    if not pairs or not info.get("as_of"):
        if strict:
            raise Untraceable(f"a left join of {alias} not on equal columns")
        return own_key
    others = ", ".join(_sql(o) for _, o in pairs)
    return sqlglot.condition(f"({others}) in ({changed.join_values_sql(scope, table, [c for c, _ in pairs])})",
                             dialect="postgres")


def filter_lines(scope: Scope, table: exp.Table, relations: dict, changed: ChangedKeys, strict: bool = False,
                 old: bool | None = None) -> None:
    """Keep, in place, only the scope's lines that hold a changed key of `table` (line_filter).
    A filter on the table's own key becomes a derived table of its own rows, fenced with OFFSET
    0: the planner then finds those few rows first and joins the rest to them by index. Left as
    a WHERE, a change in estimates (an autoanalyze) was seen to flip the plan to joining every
    row of the relations first and filtering last (3 s instead of 0.15). old (True: as the last
    build saw silver; False: now): those rows are read from what ChangedKeys already looked up,
    where it did, instead of being looked up again."""
    condition = line_filter(scope, table, relations, changed, strict)
    join = table.parent if isinstance(table.parent, exp.Join) else None
    if join is not None and join.side == "LEFT":  # filtered through the other side (line_filter)
        scope.expression.where(condition, copy=False)
        return
    bare = table.copy()
    bare.set("alias", None)
    alias = exp.to_identifier(table.alias_or_name, quoted=True).sql("postgres")
    rows = changed.rows_sql(scope, table, old) if old is not None else None
    fenced = _parse(f"{rows} offset 0" if rows else f"select * from {_sql(bare)} as {alias} where {_sql(condition)} offset 0")
    table.replace(exp.Subquery(this=fenced, alias=exp.TableAlias(this=exp.to_identifier(table.alias_or_name))))
