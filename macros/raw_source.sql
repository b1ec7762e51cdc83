{#- raw_source(source_name, table_name): source(), or an empty relation with the source's
    declared columns when the raw table has not been created yet. dlt creates a table only
    once a row lands in it, so a small account (no coupons, no deals yet) must still build. -#}
{% macro raw_source(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if not execute or relation.type == 'cte' -%}
        {#- parsing, or a unit test (its inputs stand in for the source) -#}
        {{ return(relation) }}
    {%- endif -%}
    {#- the warehouse is asked, not adapter.get_relation (see table_exists) -#}
    {%- if recon.table_exists(relation.schema, relation.identifier, relation.database) -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- set node = graph.sources.values()
        | selectattr('source_name', 'equalto', source_name)
        | selectattr('name', 'equalto', table_name)
        | first -%}
    {%- set columns = [] -%}
    {%- for column in node.columns.values() -%}
        {%- do columns.append('cast(null as ' ~ (column.data_type or 'varchar') ~ ') as ' ~ column.name) -%}
    {%- endfor -%}
    {#- recon build collects these lines (the wording is what it looks for) -#}
    {{ log('recon: raw table ' ~ relation.schema ~ '.' ~ relation.identifier ~ ' does not exist yet; reading it as empty', info=true) }}
    {#- aliased: PostgreSQL before 16 wants a name for a subquery in FROM -#}
    {{ return('(select ' ~ columns | join(', ') ~ ' where 1 = 0) as ' ~ table_name) }}
{%- endmacro %}
