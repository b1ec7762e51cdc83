{#- table_exists(schema, identifier, database=none): whether the warehouse holds that table
    (case-insensitive names; any catalog when ``database`` is none). It asks
    information_schema, not dbt's relation cache: dbt lists an uncached schema (the raw ones)
    and adds its tables to the cache one at a time, the first marking the schema cached, so a
    thread compiling another model meanwhile saw only some of them. -#}
{% macro table_exists(schema, identifier, database=none) -%}
    {%- set found = run_query(
        "select count(*) from information_schema.tables"
        ~ " where lower(table_schema) = lower('" ~ schema ~ "')"
        ~ " and lower(table_name) = lower('" ~ identifier ~ "')"
        ~ (" and lower(table_catalog) = lower('" ~ database ~ "')" if database else "")
    ) -%}
    {{ return(found.columns[0].values()[0] | int > 0) }}
{%- endmacro %}
