-- Layers are schemas with fixed names (silver, gold), not "<target schema>_<layer>".
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}


{#- The same where medallion is a package of your own dbt project: dbt's generate_schema_name
    dispatches to it, medallion's dbt plugin (dbt_medallion.py) putting this package after yours
    in the search order of the `dbt` namespace (a generate_schema_name of your own still wins). -#}
{% macro default__generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
