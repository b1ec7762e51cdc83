{#- Time. Stripe sends instants as unix seconds; models compare instants as bigint unix
    seconds (exact on every engine) and show them as UTC timestamps without time zone. -#}

{#- from_unix(expr): unix seconds -> UTC timestamp (without time zone). -#}
{% macro from_unix(expr) -%}
    {{ return(adapter.dispatch('from_unix', 'recon')(expr)) }}
{%- endmacro %}

{% macro default__from_unix(expr) -%}
    make_timestamp(cast({{ expr }} as bigint) * 1000000)
{%- endmacro %}

{% macro postgres__from_unix(expr) -%}
    cast(to_timestamp(cast({{ expr }} as bigint)) at time zone 'UTC' as timestamp)
{%- endmacro %}


{#- to_unix(expr): a timestamp with time zone (an absolute instant), or a timestamp without
    time zone read as UTC -> whole unix seconds (bigint, floored). Never casts between the
    two, so the session's time zone plays no part. -#}
{% macro to_unix(expr) -%}
    {{ return(adapter.dispatch('to_unix', 'recon')(expr)) }}
{%- endmacro %}

{% macro default__to_unix(expr) -%}
    cast(floor(epoch({{ expr }})) as bigint)
{%- endmacro %}

{% macro postgres__to_unix(expr) -%}
    cast(floor(extract(epoch from {{ expr }})) as bigint)
{%- endmacro %}


{#- date_to_unix(expr): midnight UTC of a date -> unix seconds. -#}
{% macro date_to_unix(expr) -%}
    {{ recon.to_unix('cast(' ~ expr ~ ' as timestamp)') }}
{%- endmacro %}


{#- iso_to_unix(text): an ISO-8601 literal known at compile time ('2026-06-30T12:00:00Z';
    without a zone it is read as UTC) -> unix seconds. -#}
{% macro iso_to_unix(text) -%}
    {%- set value = text | string | trim -%}
    {%- set time_part = value.split('T')[1] if 'T' in value else (value.split(' ')[1] if ' ' in value else '') -%}
    {%- if not (value.endswith('Z') or value.endswith('z') or '+' in time_part or '-' in time_part) -%}
        {%- set value = value ~ '+00:00' -%}
    {%- endif -%}
    {{ recon.to_unix("cast('" ~ value ~ "' as timestamp with time zone)") }}
{%- endmacro %}


{#- month_start_of_unix(expr): the first day (a date) of the UTC month holding the instant. -#}
{% macro month_start_of_unix(expr) -%}
    cast({{ dbt.date_trunc('month', recon.from_unix(expr)) }} as date)
{%- endmacro %}


{#- add_months(date_expr, n): a date n calendar months later. -#}
{% macro add_months(date_expr, n) -%}
    cast({{ dbt.dateadd('month', n, date_expr) }} as date)
{%- endmacro %}


{#- month_series(start_date_expr, end_date_expr, alias): a FROM item with one row per first
    day of a month from start to end inclusive, in column `alias.month_start` (a date). -#}
{% macro month_series(start_date_expr, end_date_expr, alias) -%}
    {{ return(adapter.dispatch('month_series', 'recon')(start_date_expr, end_date_expr, alias)) }}
{%- endmacro %}

{% macro default__month_series(start_date_expr, end_date_expr, alias) -%}
    lateral (
        select cast(gs.generate_series as date) as month_start
        from generate_series(
            cast({{ start_date_expr }} as timestamp),
            cast({{ end_date_expr }} as timestamp),
            interval '1 month'
        ) as gs
    ) as {{ alias }}
{%- endmacro %}

{% macro postgres__month_series(start_date_expr, end_date_expr, alias) -%}
    lateral (
        select cast(gs.ts as date) as month_start
        from generate_series(
            cast({{ start_date_expr }} as timestamp),
            cast({{ end_date_expr }} as timestamp),
            interval '1 month'
        ) as gs (ts)
    ) as {{ alias }}
{%- endmacro %}


{#- epoch_timestamp(with_time_zone=true): 1970-01-01 UTC as a timestamp with (or without)
    time zone: the low watermark of an empty incremental model. -#}
{% macro epoch_timestamp(with_time_zone=true) -%}
    {%- if with_time_zone -%}
        cast('1970-01-01 00:00:00+00' as timestamp with time zone)
    {%- else -%}
        cast('1970-01-01 00:00:00' as timestamp)
    {%- endif -%}
{%- endmacro %}
