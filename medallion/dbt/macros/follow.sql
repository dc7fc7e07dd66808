{#-
    `medallion run --follow` applies bronze to silver and gold in small steps without starting
    dbt for each one. dbt stays the single definition of every model: each incremental build of
    a history, a current-state table or a gold mart stores here the very statements it would run
    for its next batch, with the batch's bounds left as placeholders (__lo__, __hi__: bronze
    commit positions, integers the follower fills in). The follower (medallion/follow.py) runs
    them after each bronze commit; whatever a stored step cannot carry (a schema change, a
    truncate, a re-sync epoch: needs_build_sql says so) sends it back to a dbt build, which
    stores the steps anew. So a follow step and a build apply the very same SQL to the very same
    rows, and a later `medallion build` continues from the watermark the follower left.
-#}

{% macro medallion_prepare_follow() %}
    create table if not exists {{ medallion.medallion_follow_step_relation() }} (
        model           text        primary key,  -- schema.table the step refreshes
        layer           smallint    not null,     -- 1 silver, 2 gold: the order steps run in
        lock_sql        text        not null,     -- one refresh at a time per model
        high_sql        text,                     -- how far bronze is complete (given __lo__); gold: null
        needs_build_sql text,                     -- true when (__lo__, __hi__] needs a dbt build
        step_sql        text,                     -- the batch's statements; null: next build stores them
        idle_sql        text                      -- nothing new: move the horizon only
    );
    -- the project (files, versions) the storing build ran: a build without dbt (stored_build.py)
    -- runs a step only if the project is still that one
    alter table {{ medallion.medallion_follow_step_relation() }} add column if not exists project_fingerprint text;
{% endmacro %}


{% macro medallion_store_follow_step(relation, layer, lock_sql, step_sql, high_sql=none, needs_build_sql=none,
                                     idle_sql=none) %}
    {#- called inside the build's transaction: the stored step and the model it refreshes change
        together. The model's own pre- and post-hooks run with its step, as dbt runs them with
        each build. -#}
    {%- set model = medallion.medallion_literal(relation.schema ~ '.' ~ relation.identifier) -%}
    {%- if step_sql is not none and (pre_hooks or post_hooks) -%}
        {%- set step_sql = medallion.medallion_hooks_sql(pre_hooks) ~ step_sql ~ medallion.medallion_hooks_sql(post_hooks) -%}
    {%- endif -%}
    {% call statement('medallion_store_follow_step') -%}
        insert into {{ medallion.medallion_follow_step_relation() }} (model, layer, lock_sql, high_sql, needs_build_sql, step_sql, idle_sql,
                                        project_fingerprint)
        values ({{ model }}, {{ layer }}, {{ medallion.medallion_dollar(lock_sql) }}, {{ medallion.medallion_dollar(high_sql) }},
                {{ medallion.medallion_dollar(needs_build_sql) }}, {{ medallion.medallion_dollar(step_sql) }},
                {{ medallion.medallion_dollar(idle_sql) }}, {{ medallion.medallion_dollar(medallion.medallion_project_fingerprint()) }})
        on conflict (model) do update
            set layer = excluded.layer, lock_sql = excluded.lock_sql, high_sql = excluded.high_sql,
                needs_build_sql = excluded.needs_build_sql, step_sql = excluded.step_sql,
                idle_sql = excluded.idle_sql, project_fingerprint = excluded.project_fingerprint
    {%- endcall %}
{% endmacro %}


{% macro medallion_hooks_sql(hooks) -%}
    {%- for hook in hooks or [] -%}
        {%- set rendered = render(hook.get('sql')) | trim -%}
        {%- if rendered %}
{{ rendered }};
{% endif -%}
    {%- endfor -%}
{%- endmacro %}


{% macro medallion_dollar(text) -%}
    {#- a string constant for SQL text that holds quotes and $tags$ of its own: null when none -#}
    {%- if text is none -%}null{%- else -%}
    {%- set tag = '$medallion_step_' ~ (text | length) ~ '$' -%}
    {{ tag }}{{ text }}{{ tag }}
    {%- endif -%}
{%- endmacro %}


{% macro medallion_needs_build_sql(bronze_relation, lo, hi) %}
    {#- a batch a stored step cannot apply: a truncate or a re-sync epoch in it (rare; the build's
        seed and epoch passes handle them) or a schema event of the table (the build evolves the
        table and stores new steps for the new columns) -#}
    select exists (select from {{ bronze_relation }}
                   where commit_lsn > {{ lo }} and commit_lsn <= {{ hi }} and op in ('T', 'E'))
        or exists (select from bronze.table_schema
                   where bronze_table = {{ medallion.medallion_literal(bronze_relation.identifier) }}
                     and commit_lsn > {{ lo }} and commit_lsn <= {{ hi }})
{% endmacro %}


{% macro medallion_project_fingerprint() %}
    {#- the project the stored step belongs to (stored_build.py): `medallion build` gives it
        (modules.medallion.given, not --vars, which would cost dbt's partial parsing); a plain `dbt
        build` in your own project (medallion dbt-setup) computes the same from the same files, so
        the next `medallion build` runs its steps without dbt. Elsewhere (e.g. the build project
        run by Dagster) none: its steps are not taken for medallion build's. -#}
    {%- set given = var('medallion_project_fingerprint', none) -%}
    {%- if given is none and modules.medallion is defined -%}{%- set given = modules.medallion.given('fingerprint') -%}{%- endif -%}
    {%- if given is not none or modules.medallion is not defined or not execute -%}{{ return(given) }}{%- endif -%}
    {%- set schemas = run_query(modules.medallion.schemas_sql()).columns[0].values()[0] -%}
    {{- return(modules.medallion.project_fingerprint(schemas)) -}}
{% endmacro %}
