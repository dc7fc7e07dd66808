{#-
    medallion's four materializations, each ONE skeleton for every engine (dbt-adapters' way):
    the hooks, the engine's build step, the engine's finish, the relation built. Only the steps
    differ per engine, and they are dispatched (adapter.dispatch, namespace medallion):

        medallion_build_<kind>()   builds the relation, returns it
            postgres__: silver/history_materialization.sql, silver/current_state_materialization.sql,
                        silver/current_state.sql (current_view), gold/plain_mart.sql
            spark__:    silver/spark/history.sql, silver/spark/current.sql, gold/spark/gold_mart.sql
        medallion_finish(relation) postgres: the model's docs, then commit; Spark: nothing
                                   (no transactions)

    A new engine adds its steps under its adapter's prefix; the skeleton stays.
-#}

{% macro medallion_materialize(kind) %}
    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {%- set target_relation = adapter.dispatch('medallion_build_' ~ kind, 'medallion')() -%}
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
    {{ return(medallion.medallion_materialize('history')) }}
{% endmaterialization %}


{% materialization current_state, default %}
    {{ return(medallion.medallion_materialize('current_state')) }}
{% endmaterialization %}


{% materialization current_view, default %}
    {{ return(medallion.medallion_materialize('current_view')) }}
{% endmaterialization %}


{% materialization gold_mart, default %}
    {{ return(medallion.medallion_materialize('gold_mart')) }}
{% endmaterialization %}
