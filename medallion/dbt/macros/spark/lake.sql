{#-
    The Spark engine's building blocks: names, literals, types, and the incremental bookkeeping
    of models whose tables are Iceberg tables in the lake. PostgreSQL's counterparts are in
    ../watermark.sql and ../silver/history.sql.

    Bookkeeping: each incremental model's Iceberg table carries its watermark in its own table
    properties: the last bronze commit_lsn it applied AND the snapshot its build left it at
    (medallion.watermark, medallion.watermark-snapshot). Setting properties is a second commit
    after the data's, so a crash in between leaves the table at a snapshot the watermark does
    not name: the next build sees that and rebuilds the model from all of bronze (the same
    result) instead of applying a batch twice. Reading them is metadata only (no Spark job).
-#}

{% macro spark_quote(name) -%}
    `{{ name | replace('`', '``') }}`
{%- endmacro %}


{% macro spark_literal(value) -%}
    {#- Spark string literals treat backslash as an escape -#}
    '{{ value | string | replace('\\', '\\\\') | replace("'", "\\'") }}'
{%- endmacro %}


{% macro spark_column_list(names, prefix='') -%}
    {%- for name in names -%}{{ prefix }}{{ medallion.spark_quote(name) }}{{ ", " if not loop.last }}{%- endfor -%}
{%- endmacro %}


{% macro spark_keys_equal(key, left, right) -%}
    {%- for k in key %}{{ left }}.{{ medallion.spark_quote(k) }} = {{ right }}.{{ medallion.spark_quote(k) }}{{ " and " if not loop.last }}{% endfor -%}
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
    {%- set t = medallion.spark_type(warehouse_type) -%}
    {%- if t == 'string' -%}{{ text }}
    {%- elif t == 'binary' -%}unhex(case when left({{ text }}, 2) = '\\x' then substr({{ text }}, 3) else {{ text }} end)
    {%- else -%}cast({{ text }} as {{ t }})
    {%- endif -%}
{%- endmacro %}


{% macro spark_prepare_lake() %}
    create namespace if not exists silver
{% endmacro %}


{% macro spark_table_properties(relation) %}
    {#- An Iceberg table's properties, its current snapshot among them: metadata, no Spark job -#}
    {%- set properties = {} -%}
    {%- for row in run_query("show tblproperties " ~ relation).rows -%}
        {%- do properties.update({row[0]: row[1]}) -%}
    {%- endfor -%}
    {{- return(properties) -}}
{% endmacro %}


{% macro spark_watermark(relation) %}
    {#- (last bronze commit_lsn applied, the snapshot its build left, the current snapshot) from
        the table's properties; (-1, none, ...) before its first build -#}
    {%- set properties = medallion.spark_table_properties(relation) -%}
    {{- return((properties.get('medallion.watermark', -1) | int, properties.get('medallion.watermark-snapshot'),
                properties.get('current-snapshot-id', 'none'))) -}}
{% endmacro %}


{% macro spark_needs_rebuild(relation) %}
    {#- The table changed after its watermark was written (a crash in between): rebuild it. -#}
    {%- if load_relation(relation) is none -%}{{ return(false) }}{%- endif -%}
    {%- set watermark = medallion.spark_watermark(relation) -%}
    {{- return(watermark[2] != 'none' and watermark[1] != watermark[2]) -}}
{% endmacro %}


{% macro spark_set_watermark(relation, lsn) %}
    {#- A metadata-only commit: the table's snapshot does not change, so the pair stays true -#}
    {%- set current = medallion.spark_table_properties(relation).get('current-snapshot-id', 'none') -%}
    {% do run_query("alter table " ~ relation ~ " set tblproperties ('medallion.watermark' = '" ~ lsn
                    ~ "', 'medallion.watermark-snapshot' = '" ~ current ~ "')") %}
{% endmacro %}


{% macro spark_write_properties() -%}
    {#- Writes without a shuffle before them (small batches; a cluster may prefer 'hash') -#}
    'format-version' = '2', 'write.distribution-mode' = 'none', 'write.merge.distribution-mode' = 'none',
    'write.update.distribution-mode' = 'none', 'write.delete.distribution-mode' = 'none'
{%- endmacro %}


{% macro spark_bronze_high(bronze_relation, floor) %}
    {#- How far the lake's bronze is complete, as medallion_bronze_high on PostgreSQL: the ingest
        state's position the last export recorded (medallion.bronze.complete-lsn on the lake's
        bronze.table_schema: every source transaction up to it is in the lake, a DDL that changed
        no row too), or further when the table's own rows go further. -#}
    {%- set complete = medallion.spark_table_properties('bronze.table_schema').get('medallion.bronze.complete-lsn', -1) | int -%}
    {%- set result = run_query("select coalesce(max(commit_lsn), -1) from " ~ bronze_relation) -%}
    {{- return([result.rows[0][0] | int, complete, floor] | max) -}}
{% endmacro %}


{% macro spark_as_of(relation, ts) -%}
    {#- The rows of a history valid at ts (sys_start <= ts < sys_end): Spark's as-of, a macro for
        models (Spark SQL has no table functions); analysts use FOR SYSTEM_TIME (medallion query). -#}
    (select * from {{ relation }} where sys_start <= {{ ts }} and sys_end > {{ ts }})
{%- endmacro %}
