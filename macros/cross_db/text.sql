{#- Text functions whose names or flags differ between engines. -#}

{#- regexp_replace_all(expr, pattern, replacement): replace every match (patterns kept to the
    common subset of RE2 and POSIX ARE). -#}
{% macro regexp_replace_all(expr, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all', 'recon')(expr, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, {{ pattern }}, {{ replacement }}, 'g')
{%- endmacro %}


{#- trim_space(expr): without leading and trailing white space of any kind (spaces, tabs,
    line breaks), where SQL's trim() removes spaces only. -#}
{% macro trim_space(expr) -%}
    {{ recon.regexp_replace_all(expr, "'^[[:space:]]+|[[:space:]]+$'", "''") }}
{%- endmacro %}


{#- lower_text(expr): lower case by Unicode's simple case mapping, whatever the database's
    locale. PostgreSQL's lower() follows the collation's character type: under the C locale
    (a common initdb default) it lowers ASCII only, so 'ÄÖÜ' stayed 'ÄÖÜ' and IDN domains
    got other punycode than on DuckDB. There it uses the libc collation C.utf8, which maps
    every code point up to U+2FFFF exactly as DuckDB's lower() does, else ICU's root
    collation (which differs only in mapping 'İ' to 'i' + U+0307, as Python's idna does). -#}
{% macro lower_text(expr) -%}
    {{ return(adapter.dispatch('lower_text', 'recon')(expr)) }}
{%- endmacro %}

{% macro default__lower_text(expr) -%}
    lower({{ expr }})
{%- endmacro %}

{% macro postgres__lower_text(expr) -%}
    {%- set collation = recon._postgres_unicode_collation() -%}
    {%- if collation -%}
        {#- back to the database's collation, so that tables built from it keep theirs -#}
        (lower({{ expr }} collate {{ adapter.quote(collation) }}) collate "default")
    {%- else -%}
        lower({{ expr }})
    {%- endif -%}
{%- endmacro %}

{#- _postgres_unicode_collation(): the name of a collation whose lower() knows Unicode
    (C.utf8 from libc, else ICU's und-x-icu), or none (the database's own then; a warning). -#}
{% macro _postgres_unicode_collation() -%}
    {%- if not execute -%}
        {{ return('C.utf8') }}
    {%- endif -%}
    {%- set found = run_query(
        "select collname from pg_collation"
        ~ " where collencoding in (-1, pg_char_to_encoding('UTF8'))"
        ~ " and ((collprovider = 'c' and lower(replace(collname, '-', '')) = 'c.utf8')"
        ~ " or (collprovider = 'i' and collname = 'und-x-icu'))"
        ~ " order by collprovider = 'c' desc, collname limit 1"
    ) -%}
    {%- if found.rows | length == 0 -%}
        {{ log("recon: PostgreSQL has neither the C.utf8 nor the und-x-icu collation; "
            ~ "lower() follows the database's locale (non-ASCII letters may stay upper case)",
            info=true) }}
        {{ return(none) }}
    {%- endif -%}
    {{ return(found.rows[0][0]) }}
{%- endmacro %}


{#- code_point(expr): the Unicode code point of the first character. -#}
{% macro code_point(expr) -%}
    {{ return(adapter.dispatch('code_point', 'recon')(expr)) }}
{%- endmacro %}

{% macro default__code_point(expr) -%}
    unicode({{ expr }})
{%- endmacro %}

{% macro postgres__code_point(expr) -%}
    ascii({{ expr }})
{%- endmacro %}


{#- char_of(expr): the character of a code point. -#}
{% macro char_of(expr) -%}
    {{ return(adapter.dispatch('char_of', 'recon')(expr)) }}
{%- endmacro %}

{% macro default__char_of(expr) -%}
    chr(cast({{ expr }} as integer))
{%- endmacro %}


{#- nfc(expr): Unicode NFC normalisation (IDNA compares domain labels in NFC). -#}
{% macro nfc(expr) -%}
    {{ return(adapter.dispatch('nfc', 'recon')(expr)) }}
{%- endmacro %}

{% macro default__nfc(expr) -%}
    nfc_normalize({{ expr }})
{%- endmacro %}

{% macro postgres__nfc(expr) -%}
    normalize({{ expr }}, nfc)
{%- endmacro %}


{#- is_ascii(expr): true when every character is 7-bit. -#}
{% macro is_ascii(expr) -%}
    {{ return(adapter.dispatch('is_ascii', 'recon')(expr)) }}
{%- endmacro %}

{% macro default__is_ascii(expr) -%}
    (strlen({{ expr }}) = length({{ expr }}))
{%- endmacro %}

{% macro postgres__is_ascii(expr) -%}
    (octet_length({{ expr }}) = char_length({{ expr }}))
{%- endmacro %}


{#- ordered_agg(expr, order_by, delimiter): the values joined in order (a comma-separated list
    by default). -#}
{% macro ordered_agg(expr, order_by, delimiter=', ') -%}
    string_agg({{ expr }}, '{{ delimiter }}' order by {{ order_by }})
{%- endmacro %}


{#- sorted_agg(expr, delimiter): the non-null values joined in their own order (null when
    there is none): ordered_agg(expr, expr). On DuckDB an ordered aggregate sorts each group
    on its own, which over a million groups (fct_mrr at 100,000 customers) cost 3 s; a list
    sorted afterwards gives the same text in about a third of that. -#}
{% macro sorted_agg(expr, delimiter=', ') -%}
    {{ return(adapter.dispatch('sorted_agg', 'recon')(expr, delimiter)) }}
{%- endmacro %}

{% macro default__sorted_agg(expr, delimiter) -%}
    case
        when count({{ expr }}) > 0
            then array_to_string(
                list_sort(list({{ expr }}) filter (where {{ expr }} is not null)), '{{ delimiter }}'
            )
    end
{%- endmacro %}

{% macro postgres__sorted_agg(expr, delimiter) -%}
    string_agg({{ expr }}, '{{ delimiter }}' order by {{ expr }})
{%- endmacro %}


{#- number_or_null(expr, type): the text as a number of the type when it reads as a decimal
    number ('1234.5', '-3', '1e3' excluded), else null: HubSpot number properties arrive as
    text and are never trusted to parse. -#}
{% macro number_or_null(expr, type='decimal(38, 9)') -%}
    {{ return(adapter.dispatch('number_or_null', 'recon')(expr, type)) }}
{%- endmacro %}

{% macro default__number_or_null(expr, type='decimal(38, 9)') -%}
    cast(
        case
            when regexp_full_match(trim({{ expr }}), '-?[0-9]+([.][0-9]*)?|-?[.][0-9]+')
                then trim({{ expr }})
        end as {{ type }}
    )
{%- endmacro %}

{% macro postgres__number_or_null(expr, type='decimal(38, 9)') -%}
    {#- the cast outside the case: a case with no else loses numeric's precision and scale -#}
    cast(
        case
            when trim({{ expr }}) ~ '^(-?[0-9]+([.][0-9]*)?|-?[.][0-9]+)$'
                then trim({{ expr }})
        end as {{ type }}
    )
{%- endmacro %}


{#- session_settings(): run before every model (project-level pre-hook). PostgreSQL's JIT
    compiler spends minutes on the long CTE chains over JSON whose row estimates are far off,
    for queries that run in milliseconds: it is switched off. Nothing on DuckDB. -#}
{% macro session_settings() -%}
    {{ return(adapter.dispatch('session_settings', 'recon')()) }}
{%- endmacro %}

{% macro default__session_settings() -%}
{%- endmacro %}

{% macro postgres__session_settings() -%}
    set jit = off
{%- endmacro %}
