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


{#- number_or_null(expr, type): the text as a number of the type when it reads as a decimal
    number ('1234.5', '-3', '1e3' excluded), else null: HubSpot number properties arrive as
    text and are never trusted to parse. -#}
{% macro number_or_null(expr, type='decimal(38, 9)') -%}
    {{ return(adapter.dispatch('number_or_null', 'recon')(expr, type)) }}
{%- endmacro %}

{% macro default__number_or_null(expr, type='decimal(38, 9)') -%}
    case
        when regexp_full_match(trim({{ expr }}), '-?[0-9]+([.][0-9]*)?|-?[.][0-9]+')
            then cast(trim({{ expr }}) as {{ type }})
    end
{%- endmacro %}

{% macro postgres__number_or_null(expr, type='decimal(38, 9)') -%}
    case
        when trim({{ expr }}) ~ '^(-?[0-9]+([.][0-9]*)?|-?[.][0-9]+)$'
            then cast(trim({{ expr }}) as {{ type }})
    end
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
