{#-
    Gold marts on Spark: a mart's plain SQL is computed in full at every build (the incremental
    plan of plain_mart.sql, its changed keys and as-of histories, is PostgreSQL's). The mart's
    properties record the snapshot it was built at (spark_set_watermark), as every lake model's.
-#}

{% macro spark__medallion_build_gold_mart() %}
    {%- set target_relation = this.incorporate(type='table') -%}
    {% call statement('main') -%}
        create or replace table {{ target_relation }} using iceberg tblproperties ({{ medallion.spark_write_properties() }}) as
        select * from ({{ sql }}) as mart
    {%- endcall %}
    {% do medallion.spark_set_watermark(target_relation, -1) %}
    {{ return(target_relation) }}
{% endmacro %}
