"""SQL:2011 `FOR SYSTEM_TIME` on PostgreSQL: rewrite each clause into a predicate on sys_start/sys_end.

PostgreSQL has no system-time syntax. sqlglot parses it into Table.args["version"] (an
exp.Version whose kind is the form), so a query can be rewritten as a tree, not as text.
Each versioned table reference becomes a derived table that filters the history first:

    silver.dim_customer_hist FOR SYSTEM_TIME AS OF t AS c
    -> (SELECT * FROM silver.dim_customer_hist WHERE sys_start <= t AND sys_end > t) AS c

Filtering inside the derived table (rather than adding to the outer WHERE) binds the
predicate to its own table: it stays right in outer joins, subqueries and CTEs, and two
references to one table can each have their own time. PostgreSQL flattens such derived
tables, so the predicate still reaches the indexes.

Periods are half-open [sys_start, sys_end): a version that ends at t is not AS OF t.
"""

from __future__ import annotations

import logging
import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from medallion.errors import NotSystemVersioned, QueryParseError, UnknownTable, UnsupportedTemporalClause
from medallion.query.catalog import Catalog, QualifiedName, display_name

DIALECT = "postgres"
# sqlglot logs "contains unsupported syntax. Falling back to parsing as a 'Command'" for SET, RESET,
# DO and the like, once per parse (a query is parsed more than once): such a statement has no
# FOR SYSTEM_TIME and goes to PostgreSQL as written, so the warning tells the analyst nothing.
logging.getLogger("sqlglot").setLevel(logging.ERROR)
SYS_START = "sys_start"
SYS_END = "sys_end"
SYS_KNOWN_FROM = "sys_known_from"
SYS_KNOWN_TO = "sys_known_to"

# The standard's forms, as sqlglot spells Version.kind, with the number of instants each takes.
FORMS: dict[str, int] = {"AS OF": 1, "FROM": 2, "BETWEEN": 2, "CONTAINED IN": 2, "ALL": 0}


def parse(sql_text: str) -> exp.Expression:
    """Exactly one statement, or a one-line error that points at the problem."""
    try:
        statements = [s for s in sqlglot.parse(sql_text, read=DIALECT) if s is not None]
    except ParseError as exc:
        raise QueryParseError(_parse_message(exc, sql_text)) from None
    except TokenError as exc:
        raise QueryParseError(f"cannot parse the query: {_first_line(str(exc))}") from None
    if len(statements) != 1:
        raise QueryParseError(f"expected one SQL statement, got {len(statements)}: run them one at a time")
    return statements[0]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "unknown error"


def _parse_message(exc: ParseError, sql_text: str) -> str:
    if not exc.errors:
        return f"cannot parse the query: {_first_line(str(exc))}"
    first = exc.errors[0]
    # sqlglot's description embeds a token repr ("but got <Token ...>"): the position says it better.
    description = re.sub(r"\s*but got <Token .*>", "", str(first.get("description", "syntax error")))
    near = first.get("highlight") or ""
    # sqlglot's col is where the offending token ends; people count from where it starts.
    column = int(first.get("col") or 1) - max(len(near) - 1, 0)
    where = f"line {first.get('line')}, column {column}" + (f" near {near!r}" if near else "")
    hint = ""
    if re.search(r"\bas\s+\w+\s+for\s+system_time\b", sql_text, re.IGNORECASE):
        hint = "; the alias goes after the clause: t FOR SYSTEM_TIME AS OF x AS a"
    return f"cannot parse the query at {where}: {description}{hint}"


def has_system_time(tree: exp.Expression) -> bool:
    """Whether any table reference carries a FOR SYSTEM_TIME clause."""
    return any(table.args.get("version") for table in tree.find_all(exp.Table))


def known_at(text: str | None) -> exp.Expression | None:
    """--known-at: an instant as SQL (a literal, or e.g. now() - interval '1 day'), as timestamptz."""
    if text is None:
        return None
    if re.match(r"^\s*\d", text):  # a timestamp written as it is: 2026-11-23 06:00+00
        return as_timestamptz(exp.Literal.string(text.strip()))
    try:
        value = sqlglot.parse_one(text, read=DIALECT)
    except (ParseError, TokenError) as exc:
        raise QueryParseError(not_an_instant(text, _first_line(str(exc)))) from None
    if value.find(exp.Column) is not None or isinstance(value, exp.Command):  # a bare word: no instant names a column
        raise QueryParseError(not_an_instant(text, "it names no time"))
    return as_timestamptz(value)


def not_an_instant(text: str, why: str) -> str:
    return (f"--known-at {text!r} is not an instant: {why}; write a timestamp (2026-11-23 06:00+00) or an "
            "expression (now() - interval '1 day')")


def rewrite(sql_text: str, catalog: Catalog, known: exp.Expression | None = None) -> str:
    """The PostgreSQL text for a query that may hold FOR SYSTEM_TIME clauses.

    A query without any clause is returned unchanged, so plain SQL never goes through a
    parse/generate round trip. known (see known_at) answers every clause as the warehouse knew
    it then. Raises QueryParseError, UnknownTable, NotSystemVersioned or
    UnsupportedTemporalClause, each with a one-line message naming the table."""
    tree = parse(sql_text)
    if not has_system_time(tree):
        return sql_text
    return rewrite_tree(tree, catalog, known).sql(dialect=DIALECT)


def explain(sql_text: str, catalog: Catalog, known: exp.Expression | None = None) -> str:
    """The statement run_query would run, formatted for people when it was rewritten (--explain)."""
    tree = parse(sql_text)
    if not has_system_time(tree):
        return sql_text
    return rewrite_tree(tree, catalog, known).sql(dialect=DIALECT, pretty=True)


def latest_instants(sql_text: str) -> list[str]:
    """The latest instant each clause asks about (AS OF t: t; FROM/BETWEEN/CONTAINED IN: the
    end), as SQL, for comparing with silver's horizon; instants that read a column are left out."""
    tree = parse(sql_text)
    latest = []
    for table in tree.find_all(exp.Table):
        version = table.args.get("version")
        if not version or version.text("kind").upper() not in FORMS or version.text("kind").upper() == "ALL":
            continue
        instants = _instants(table, version)
        if instants and instants[-1].find(exp.Column) is None:
            latest.append(instants[-1].sql(dialect=DIALECT))
    return latest


def earliest_instants(sql_text: str) -> list[tuple[str, str]]:
    """(table as written, the earliest instant its clause asks about, as SQL), for comparing with
    where a table's history begins to be whole; instants that read a column are left out."""
    tree = parse(sql_text)
    earliest = []
    for table in tree.find_all(exp.Table):
        version = table.args.get("version")
        if not version or version.text("kind").upper() not in FORMS or version.text("kind").upper() == "ALL":
            continue
        instants = _instants(table, version)
        if instants and instants[0].find(exp.Column) is None:
            earliest.append((table.name, instants[0].sql(dialect=DIALECT)))
    return earliest


def rewrite_tree(tree: exp.Expression, catalog: Catalog, known: exp.Expression | None = None) -> exp.Expression:
    """Replace every versioned table reference in the tree (in place) and return the tree."""
    cte_names = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    versioned = [t for t in tree.find_all(exp.Table, bfs=False) if t.args.get("version")]
    # Innermost first: a clause's instant may itself be a subquery with a clause, and it
    # must already be rewritten when the outer reference copies it.
    for table in reversed(versioned):
        resolved = _resolve(table, catalog, cte_names)
        _replace(tree, table, resolved, known, catalog)
    return tree


def _identifier_name(node: exp.Expression | None) -> str | None:
    """The name PostgreSQL looks up: unquoted identifiers fold to lower case."""
    if node is None:
        return None
    if isinstance(node, exp.Identifier):
        return node.this if node.quoted else node.this.lower()
    return node.name.lower()


def _written_name(table: exp.Table) -> str:
    return exp.table_(table.this.copy(), db=table.args["db"].copy() if table.args.get("db") else None).sql(DIALECT)


def _resolve(table: exp.Table, catalog: Catalog, cte_names: set[str]) -> QualifiedName:
    """The history table a clause is on; errors name the table as the user wrote it."""
    version: exp.Version = table.args["version"]
    form = version.text("kind").upper()
    if version.text("this").upper() != "TIMESTAMP" or form not in FORMS:
        raise UnsupportedTemporalClause(
            f"{_written_name(table)}: only FOR SYSTEM_TIME AS OF / FROM..TO / BETWEEN..AND / CONTAINED IN / ALL "
            f"are supported, not {version.sql(DIALECT)}")
    schema = _identifier_name(table.args.get("db"))
    name = _identifier_name(table.this) or table.name
    if schema is None and table.name in cte_names:
        raise UnsupportedTemporalClause(
            f"{table.name} is a CTE: put FOR SYSTEM_TIME on the history table inside the CTE")
    resolved = catalog.resolve(schema, name)
    if resolved is None:
        raise UnknownTable(_written_name(table))
    if resolved not in catalog.versioned and catalog.mart_function(resolved) is None:
        suggestion = catalog.history_table_for(resolved)
        raise NotSystemVersioned(display_name(resolved), display_name(suggestion) if suggestion else None)
    return resolved


def _replace(tree: exp.Expression, table: exp.Table, resolved: QualifiedName,
             known: exp.Expression | None = None, catalog: Catalog | None = None) -> None:
    version: exp.Version = table.args["version"]
    instants = _instants(table, version)
    function = catalog.mart_function(resolved) if catalog is not None and resolved not in catalog.versioned else None
    if function is not None:
        _replace_mart(tree, table, resolved, function, version.text("kind").upper(), instants, known)
        return
    predicate = period_predicate(version.text("kind").upper(), instants, known)
    if predicate is None:  # ALL: every version, so the history table is read as it is
        table.set("version", None)
        return
    inner = table.copy()
    inner.set("version", None)
    inner.set("alias", None)
    select = exp.select("*").from_(inner).where(predicate)
    alias = table.args.get("alias") or exp.TableAlias(this=table.this.copy())
    if any(instant.find(exp.Column) is not None for instant in instants):
        # The instant reads a column of another FROM item ("AS OF r.rental_date"): only a
        # LATERAL derived table may refer to it.
        table.replace(exp.Lateral(this=exp.Subquery(this=select), alias=alias))
    else:
        table.replace(exp.Subquery(this=select, alias=alias))
    if table.args.get("db") is not None and table.args.get("alias") is None:
        _drop_schema_qualifiers(tree, resolved)


def _replace_mart(tree: exp.Expression, table: exp.Table, resolved: QualifiedName, function: str, form: str,
                  instants: list[exp.Expression], known: exp.Expression | None) -> None:
    """A gold mart AS OF t: its as-of function, gold.<mart>_as_of(t[, known]) (docs/gold.md)."""
    if form != "AS OF":
        raise UnsupportedTemporalClause(
            f"{display_name(resolved)}: a mart answers FOR SYSTEM_TIME AS OF only (from its as-of function "
            f"{resolved[0]}.{function}), not {form}")
    arguments = [instants[0].copy()] + ([known.copy()] if known is not None else [])
    # a plain name, unquoted: sqlglot upper-cases function names, which PostgreSQL folds back
    call = exp.Anonymous(this=function, expressions=arguments)
    alias = table.args.get("alias") or exp.TableAlias(this=table.this.copy())
    replacement = exp.Table(this=call, db=exp.to_identifier(resolved[0], quoted=True), alias=alias)
    if instants[0].find(exp.Column) is not None:
        table.replace(exp.Lateral(this=exp.Subquery(this=exp.select("*").from_(replacement.copy())), alias=alias))
    else:
        table.replace(replacement)
    if table.args.get("db") is not None and table.args.get("alias") is None:
        _drop_schema_qualifiers(tree, resolved)


def _drop_schema_qualifiers(tree: exp.Expression, resolved: QualifiedName) -> None:
    """silver.t.col -> t.col: the derived table is named t, and PostgreSQL would not find silver.t."""
    schema, name = resolved
    for column in tree.find_all(exp.Column):
        if _identifier_name(column.args.get("table")) == name and _identifier_name(column.args.get("db")) == schema:
            column.set("db", None)


def _split_interval_to(table: exp.Table, values: list[exp.Expression | None]) -> list[exp.Expression | None]:
    """Undo sqlglot's reading of `FROM now() - interval '30 days' TO now()`.

    sqlglot 30 takes `interval '30 days' TO now()` as an interval range (like DAY TO
    SECOND) and leaves the TO instant empty. When that range ends the FROM instant (is on
    its right-hand spine), its end is the TO instant; anywhere else the split is
    ambiguous, and the error says how to write it unambiguously."""
    if len(values) != 2 or values[1] is not None or values[0] is None:
        return values
    node: exp.Expression | None = values[0]
    while isinstance(node, exp.Binary):
        node = node.expression
    span = node.args.get("unit") if isinstance(node, exp.Interval) else None
    if isinstance(span, exp.IntervalSpan) and not isinstance(span.expression, exp.Var):
        assert isinstance(node, exp.Interval)
        node.set("unit", span.this)
        return [values[0], span.expression]
    raise UnsupportedTemporalClause(
        f"{_written_name(table)}: cannot tell where FROM ends and TO begins: put the FROM instant in "
        "parentheses, e.g. FOR SYSTEM_TIME FROM (now() - interval '30 days') TO now()")


def _instants(table: exp.Table, version: exp.Version) -> list[exp.Expression]:
    """The clause's instants, each cast to timestamptz so that text and parameters compare as instants."""
    form = version.text("kind").upper()
    found = version.args.get("expression")
    values = [] if found is None else list(found.expressions) if isinstance(found, exp.Tuple) else [found]
    if form == "FROM":
        values = _split_interval_to(table, values)
    if any(p.this is None for v in values if v is not None for p in v.find_all(exp.Placeholder)):
        # The predicates repeat an instant (AS OF t: twice) and reorder them (FROM a TO b
        # tests b first), so positional parameters would bind to the wrong places.
        raise UnsupportedTemporalClause(
            f"{_written_name(table)}: FOR SYSTEM_TIME cannot take a positional %s parameter: "
            "use a named one, e.g. AS OF %(at)s with params {'at': ...}")
    if len(values) != FORMS[form] or any(value is None for value in values):
        raise UnsupportedTemporalClause(
            f"{_written_name(table)}: FOR SYSTEM_TIME {form} takes {FORMS[form]} instant(s), got {len(values)}")
    return [as_timestamptz(value) for value in values if value is not None]


def as_timestamptz(value: exp.Expression) -> exp.Expression:
    """Cast an instant to timestamptz; a TIMESTAMP '...' literal keeps its UTC offset.

    PostgreSQL reads TIMESTAMP '2026-03-01 01:00+02' as timestamp WITHOUT time zone and
    drops the +02; the SQL standard types a literal with an offset as WITH time zone.
    Analysts mean the instant, so such a literal is cast straight to timestamptz."""
    if isinstance(value, exp.Cast) and value.to.is_type("timestamptz"):
        return value
    if isinstance(value, exp.Cast) and value.to.is_type("timestamp") and isinstance(value.this, exp.Literal):
        return exp.cast(value.this.copy(), "timestamptz")
    return exp.cast(value, "timestamptz")


def _compare(op: type[exp.Binary], column: str | exp.Expression, instant: exp.Expression) -> exp.Expression:
    return op(this=exp.column(column) if isinstance(column, str) else column.copy(), expression=instant.copy())


def period_predicate(form: str, instants: list[exp.Expression],
                     known: exp.Expression | None = None) -> exp.Expression | None:
    """The SQL:2011 semantics of each form on the half-open period [sys_start, sys_end).

    With known (the warehouse's time axis), only versions loaded by then count, and a version
    whose end was loaded later is open-ended, as it was then:
    end = CASE WHEN sys_known_to <= known THEN sys_end ELSE 'infinity' END."""
    end: str | exp.Expression = SYS_END
    if known is not None:
        end = exp.Case(ifs=[exp.If(this=exp.LTE(this=exp.column(SYS_KNOWN_TO), expression=known.copy()),
                                   true=exp.column(SYS_END))],
                       default=exp.cast(exp.Literal.string("infinity"), "timestamptz"))

    def period(start_op: type[exp.Binary], start_at: exp.Expression,
               end_op: type[exp.Binary], end_at: exp.Expression) -> exp.Expression:
        condition = exp.and_(_compare(start_op, SYS_START, start_at), _compare(end_op, end, end_at))
        if known is not None:
            condition = exp.and_(_compare(exp.LTE, SYS_KNOWN_FROM, known), condition)
        return condition

    if form == "ALL":
        return None if known is None else _compare(exp.LTE, SYS_KNOWN_FROM, known)
    if form == "AS OF":  # the version valid at t
        (t,) = instants
        return period(exp.LTE, t, exp.GT, t)
    a, b = instants
    if form == "FROM":  # overlaps [a, b)
        return period(exp.LT, b, exp.GT, a)
    if form == "BETWEEN":  # overlaps [a, b]
        return period(exp.LTE, b, exp.GT, a)
    if form == "CONTAINED IN":  # lies within [a, b)
        return period(exp.GTE, a, exp.LTE, b)
    raise UnsupportedTemporalClause(f"unknown FOR SYSTEM_TIME form {form}")
