{#- Gold time travel on Spark. Spark SQL has no table functions, so there is no
    gold.<mart>_as_of(ts): the post-hook that creates it on PostgreSQL renders nothing here.
    As of a past time on Spark: FOR SYSTEM_TIME on the silver histories (`medallion query
    --engine spark`), spark_as_of(relation, ts) in a model, or Iceberg's own snapshots
    (`VERSION AS OF`, warehouse time; docs/scale-out.md). -#}

{% macro spark__gold_create_as_of_function(name, returns, body, body_known=none) %}
{% endmacro %}
