{# The snapshot lands in exactly the schema it names (bench_snapshots), not silver_bench_snapshots. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name if custom_schema_name else target.schema }}
{%- endmacro %}
