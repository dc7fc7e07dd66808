{#-
    The Spark engine's building blocks: names, literals, types, and the incremental bookkeeping
    of models whose tables are Iceberg tables in the lake. PostgreSQL's counterparts are in
    ../watermark.sql and ../silver/history.sql.

    Bookkeeping: silver.build_watermark (an Iceberg table) holds, per incremental model, the last
    bronze commit_lsn it applied AND the Iceberg snapshot its table was left at. Iceberg has no
    transaction over two tables, so a crash between a model's write and its watermark's leaves
    the table at a snapshot the watermark does not name: the next build sees that and rebuilds
    the model from all of bronze (the same result), instead of applying a batch twice.
-#}

{% macro spark_quote(name) -%}
    `{{ name | replace('`', '``') }}`
{%- endmacro %}


{% macro spark_literal(value) -%}
    {#- Spark string literals treat backslash as an escape -#}
    '{{ value | string | replace('\\', '\\\\') | replace("'", "\\'") }}'
{%- endmacro %}


{% macro spark_column_list(names, prefix='') -%}
    {%- for name in names -%}{{ prefix }}{{ spark_quote(name) }}{{ ", " if not loop.last }}{%- endfor -%}
{%- endmacro %}


{% macro spark_keys_equal(key, left, right) -%}
    {%- for k in key %}{{ left }}.{{ spark_quote(k) }} = {{ right }}.{{ spark_quote(k) }}{{ " and " if not loop.last }}{% endfor -%}
{%- endmacro %}


{% macro spark_far_future() -%}
    {#- PostgreSQL's 'infinity' for an open version: the largest timestamp Spark holds -#}
    timestamp'9999-12-31 23:59:59.999999'
{%- endmacro %}


{% macro spark_type(warehouse_type) -%}
    {#- The Spark type of a column whose PostgreSQL (warehouse) type bronze recorded. Types without
        a Spark counterpart (uuid, json, arrays, intervals, ...) keep PostgreSQL's text form. -#}
    {%- set t = warehouse_type | lower -%}
    {%- if t in ('smallint', 'integer', 'bigint', 'boolean', 'date') -%}{{ 'int' if t == 'integer' else t }}
    {%- elif t == 'real' -%}float
    {%- elif t == 'double precision' -%}double
    {%- elif t.startswith('numeric(') -%}decimal{{ t[7:] }}
    {%- elif t == 'numeric' -%}decimal(38,10)
    {%- elif t.startswith('timestamp') and 'without' not in t -%}timestamp
    {%- elif t.startswith('timestamp') -%}timestamp_ntz
    {%- elif t == 'bytea' -%}binary
    {%- else -%}string
    {%- endif -%}
{%- endmacro %}


{% macro spark_typed(text, warehouse_type) -%}
    {#- A bronze value (wal2json's text or JSON number) as its Spark type. bytea arrives as bare hex. -#}
    {%- set t = spark_type(warehouse_type) -%}
    {%- if t == 'string' -%}{{ text }}
    {%- elif t == 'binary' -%}unhex(case when left({{ text }}, 2) = '\\x' then substr({{ text }}, 3) else {{ text }} end)
    {%- else -%}cast({{ text }} as {{ t }})
    {%- endif -%}
{%- endmacro %}


{% macro spark_bronze_columns(bronze_relation) %}
    {#- {column: warehouse type} in the source's order, from the lake's copy of bronze.table_schema
        (exported with bronze: medallion/lake/export.py) -#}
    {%- set result = run_query(
        "select columns from bronze.table_schema where bronze_table = " ~ spark_literal(bronze_relation.identifier)
        ~ " order by commit_lsn desc, ordinal desc limit 1") -%}
    {%- if result.rows | length == 0 -%}
        {{ exceptions.raise_compiler_error("the lake has no recorded schema for " ~ bronze_relation
                                           ~ ": run 'medallion export' (or 'medallion run') first") }}
    {%- endif -%}
    {%- set columns = {} -%}
    {%- for column in fromjson(result.rows[0][0]) -%}{%- do columns.update({column['name']: column['warehouse_type']}) -%}{%- endfor -%}
    {{- return(columns) -}}
{% endmacro %}


{% macro spark_prepare_lake() %}
    create table if not exists silver.build_watermark (
        model           string,  -- schema.table of the incremental model
        bronze_table    string,  -- the bronze table it reads
        last_commit_lsn bigint,  -- every bronze row up to here is applied
        table_snapshot  bigint   -- the Iceberg snapshot the model's table was left at
    ) using iceberg
{% endmacro %}


{% macro spark_snapshot(relation) %}
    {#- The current snapshot of an Iceberg table (none before its first write) -#}
    {%- set result = run_query("select snapshot_id from " ~ relation ~ ".refs where name = 'main'") -%}
    {{- return(result.rows[0][0] if result.rows | length > 0 else none) -}}
{% endmacro %}


{% macro spark_watermark(relation) %}
    {#- (last commit_lsn applied, snapshot recorded) for relation; (-1, none) before its first build -#}
    {%- set result = run_query("select last_commit_lsn, table_snapshot from silver.build_watermark where model = "
                               ~ spark_literal(relation.schema ~ '.' ~ relation.identifier)) -%}
    {%- if result.rows | length == 0 -%}{{ return((-1, none)) }}{%- endif -%}
    {{- return((result.rows[0][0] | int, result.rows[0][1])) -}}
{% endmacro %}


{% macro spark_needs_rebuild(relation) %}
    {#- The model's table changed after its watermark was written (a crash in between): rebuild. -#}
    {%- set watermark = spark_watermark(relation) -%}
    {%- set current = spark_snapshot(relation) -%}
    {%- if watermark[0] == -1 -%}{{ return(current is not none) }}{%- endif -%}
    {{- return(current is not none and (current | string) != (watermark[1] | string)) -}}
{% endmacro %}


{% macro spark_set_watermark(relation, bronze_relation, lsn) %}
    {%- set snapshot = spark_snapshot(relation) -%}
    {% do run_query(
        "merge into silver.build_watermark as w using (select "
        ~ spark_literal(relation.schema ~ '.' ~ relation.identifier) ~ " as model, "
        ~ spark_literal(bronze_relation | string) ~ " as bronze_table, "
        ~ lsn ~ " as last_commit_lsn, "
        ~ (snapshot if snapshot is not none else 'cast(null as bigint)') ~ " as table_snapshot) as s "
        ~ "on w.model = s.model "
        ~ "when matched then update set * when not matched then insert *") %}
{% endmacro %}


{% macro spark_forget_watermark(relation) %}
    {% do run_query("delete from silver.build_watermark where model = "
                    ~ spark_literal(relation.schema ~ '.' ~ relation.identifier)) %}
{% endmacro %}


{% macro spark_bronze_high(bronze_relation, floor) %}
    {%- set result = run_query("select coalesce(max(commit_lsn), " ~ floor ~ ") from " ~ bronze_relation) -%}
    {{- return(result.rows[0][0] | int) -}}
{% endmacro %}


{% macro spark_as_of(relation, ts) -%}
    {#- The rows of a history valid at ts (sys_start <= ts < sys_end): Spark's as-of, a macro for
        models (Spark SQL has no table functions); analysts use FOR SYSTEM_TIME (medallion query). -#}
    (select * from {{ relation }} where sys_start <= {{ ts }} and sys_end > {{ ts }})
{%- endmacro %}
