{#- forget_build_state(): the on-run-start hook of every dbt run. recon build leaves out the
    nodes whose definition and inputs are those of its last build on this warehouse
    (recon/build_state.py), from fingerprints it keeps in recon_audit.dbt_build_state. Any
    other run (a plain `dbt build` with other vars, one stopped half way) may leave tables
    those fingerprints do not describe, so every run forgets them first; recon build writes
    them again once dbt is done. DuckDB only: recon keeps no state on other targets. -#}
{% macro forget_build_state() -%}
    {{ return(adapter.dispatch('forget_build_state', 'recon')()) }}
{%- endmacro %}

{% macro default__forget_build_state() -%}
    {{ return('') }}
{%- endmacro %}

{% macro duckdb__forget_build_state() -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- if recon.table_exists('recon_audit', 'dbt_build_state', target.database) -%}
        {{ return('delete from recon_audit.dbt_build_state') }}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}
