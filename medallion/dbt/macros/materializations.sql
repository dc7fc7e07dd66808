{#-
    medallion's four materializations, each ONE skeleton for every engine (dbt-adapters' way):
    the hooks, the engine's build step, the engine's finish, the relation built. Only the steps
    differ per engine, and they are dispatched (adapter.dispatch, namespace medallion; each
    materialization names its step literally, as dbt reads dispatch calls to find dependencies):

        medallion_build_<kind>()   builds the relation, returns it
            postgres__: silver/history_materialization.sql, silver/current_state_materialization.sql,
                        silver/current_state.sql (current_view), gold/plain_mart.sql
            spark__:    silver/spark/history.sql, silver/spark/current.sql, gold/spark/gold_mart.sql
        medallion_finish(relation) postgres: the model's docs, then commit; Spark: nothing
                                   (no transactions)

    A new engine adds its steps under its adapter's prefix; the skeleton stays.
-#}

{% macro medallion_materialize(build) %}
    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {%- set target_relation = build() -%}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {% do adapter.dispatch('medallion_finish', 'medallion')(target_relation) %}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmacro %}


{% macro postgres__medallion_finish(relation) %}
    {% do persist_docs(relation, model) %}
    {% do adapter.commit() %}
{% endmacro %}


{% macro default__medallion_finish(relation) %}
{% endmacro %}


{% materialization system_versioned, default %}
    {{ return(medallion.medallion_materialize(adapter.dispatch('medallion_build_history', 'medallion'))) }}
{% endmaterialization %}


{% materialization current_state, default %}
    {{ return(medallion.medallion_materialize(adapter.dispatch('medallion_build_current_state', 'medallion'))) }}
{% endmaterialization %}


{% materialization current_view, default %}
    {{ return(medallion.medallion_materialize(adapter.dispatch('medallion_build_current_view', 'medallion'))) }}
{% endmaterialization %}


{% materialization gold_mart, default %}
    {{ return(medallion.medallion_materialize(adapter.dispatch('medallion_build_gold_mart', 'medallion'))) }}
{% endmaterialization %}
