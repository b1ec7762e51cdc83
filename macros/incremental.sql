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
