-- Layers are schemas with fixed names (silver, gold), not "<target schema>_<layer>".
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
