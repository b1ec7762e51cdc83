{#- is_incremental_with(columns): is_incremental(), and the existing table already has these
    columns (the ones the incremental filter reads). A model that became incremental, or
    gained its watermark column, in a newer recon then rebuilds in full on its first run
    instead of failing on the older table (delete+insert models only: a full batch replaces
    every key). -#}
{% macro is_incremental_with(columns) -%}
    {%- if not is_incremental() -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set existing = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
    {%- for column in columns -%}
        {%- if (column | lower) not in existing -%}
            {{ log('recon: ' ~ this ~ ' has no column ' ~ column ~ '; rebuilding it in full', info=true) }}
            {{ return(false) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(true) }}
{%- endmacro %}

{#- built_since_last_build(relation): in an incremental build of a model over the subscription
    versions, a condition keeping the versions (``relation``: their alias) rebuilt since the
    newest this model holds (``built_at`` is the build's start, the same in every model). -#}
{% macro built_since_last_build(relation) -%}
    {{ relation }}.built_at > {{ recon.last_built_at() }}
{%- endmacro %}

{#- landed_since_built(raw_column, built_column): in an incremental build of a staging table
    over a raw table merged on its key (rows replaced, never deleted), a filter keeping the
    raw rows landed since the newest this table holds (that landing's rows are read again:
    delete+insert on the key makes that harmless); nothing in a full build. ``keyword``:
    ``and`` after a ``where`` of the model's own. -#}
{% macro landed_since_built(raw_column='_recon_fetched_at', built_column='fetched_at', keyword='where') -%}
    {%- if recon.is_incremental_with([built_column]) -%}
        {{ keyword }} {{ raw_column }} >= (
            select coalesce(max(built.{{ built_column }}), {{ recon.epoch_timestamp() }})
            from {{ this }} as built
        )
    {%- endif -%}
{%- endmacro %}

{#- delete_key_markers(columns): the post-hook of an incremental model whose batch carries one
    key marker row per replaced key (these columns null, see stg_hubspot__associations): deletes
    the markers once delete+insert has used them to replace the key's rows. -#}
{% macro delete_key_markers(columns) -%}
    delete from {{ this }}
    where {% for column in columns %}{{ column }} is null{% if not loop.last %} and {% endif %}{% endfor %}
{%- endmacro %}

{#- delete_versions_gone(): the post-hook of an incremental model with a row or more per
    subscription version (`version_id`): deletes the rows of the versions
    int_subscription_versions_unioned no longer has (delete+insert replaces only the keys a
    build writes). -#}
{% macro delete_versions_gone() -%}
    delete from {{ this }} as known
    where not exists (
        select 1
        from {{ ref('int_subscription_versions_unioned') }} as versions
        where versions.version_id = known.version_id
    )
{%- endmacro %}

{#- build_started_at(): the start of this dbt invocation as a timestamp, the same in every model
    of a build: what `built_at` and `changed_at` columns hold. -#}
{% macro build_started_at() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}

{#- row_md5(exprs): an md5 of the values as text, each prefixed with its length (a null is an
    empty field, apart from any text): a fingerprint of a row that changes with any of them. -#}
{% macro row_md5(exprs) -%}
    md5(concat(
        {%- for expr in exprs %}
            length(cast({{ expr }} as varchar)), ':', cast({{ expr }} as varchar){% if not loop.last %}, '|',{% endif %}
        {%- endfor %}
    ))
{%- endmacro %}

{#- last_built_at(): in an incremental build, the newest `built_at` this model holds (the start
    of its last build); the epoch when it holds no row (a build with no data yet: everything
    is newer). -#}
{% macro last_built_at() -%}
    (select coalesce(max(known.built_at), {{ recon.epoch_timestamp(with_time_zone=false) }}) from {{ this }} as known)
{%- endmacro %}

{#- in_rebuild_scope(month_expr, key_expr, changed): in the incremental build of an MRR model
    (int_subscription_mrr_snapshotted, fct_mrr), whether a row is in the scope it recomputes:
    its month is at or after the model's `rebuild_scope.from_month`, or its key (subscription
    or customer) is in the CTE ``changed`` (column ``key``). -#}
{% macro in_rebuild_scope(month_expr, key_expr, changed, key) -%}
    (
        {{ month_expr }} >= (select rebuild_scope.from_month from rebuild_scope)
        or {{ key_expr }} in (select {{ changed }}.{{ key }} from {{ changed }})
    )
{%- endmacro %}

{#- rebuild_scope_markers(row_columns, key, changed, computed, computed_filter): in the
    incremental build of an MRR model, `union all` one key marker (these columns of the kept
    row, `built_at` null) for every row it holds in the rebuilt scope (in_rebuild_scope) that
    ``computed`` (the rows this build makes, by ``key`` and month, where ``computed_filter``
    holds) no longer has; delete+insert replaces the row with the marker, and the post-hook
    (delete_key_markers) deletes the marker. -#}
{% macro rebuild_scope_markers(row_columns, key, changed, computed, computed_filter=none) -%}
    union all
    select
        {% for column in row_columns %}known.{{ column }},{% endfor %}
        cast(null as timestamp) as built_at
    from {{ this }} as known
    where
        {{ recon.in_rebuild_scope('known.month', 'known.' ~ key, changed, key) }}
        and not exists (
            select 1
            from {{ computed }}
            where
                {{ computed }}.{{ key }} = known.{{ key }}
                and {{ computed }}.month = known.month
                {% if computed_filter %}and ({{ computed_filter }}){% endif %}
        )
{%- endmacro %}

{#- rebuild_scope_from_month(): in the incremental build of an MRR model, the body of its
    `rebuild_scope` CTE: the first month it recomputes for every key, the earlier of the newest
    month it holds and the current month (which moves with `as_of`; a month that ended is
    measured again at its end). -#}
{% macro rebuild_scope_from_month() -%}
    select
        least(
            coalesce((select max(known.month) from {{ this }} as known), max(reporting_months.month)),
            max(reporting_months.month)
        ) as from_month
    from {{ ref('int_reporting_months') }} as reporting_months
{%- endmacro %}

{#- changed_since_last_build(key): in the incremental build of an MRR model, the body of the
    CTE of its changed keys (``key``: subscription_id or customer_id): those whose MRR inputs
    changed since its last build (int_subscription_mrr_inputs). -#}
{% macro changed_since_last_build(key) -%}
    select distinct {{ key }}
    from {{ ref('int_subscription_mrr_inputs') }}
    where changed_at > {{ recon.last_built_at() }}
{%- endmacro %}
