{#- JSON access over payload text. Every model reads JSON only through these macros, so the
    same SQL runs on DuckDB (json extension) and PostgreSQL (jsonb). Paths are dotted key
    paths ('source.coupon'); an empty path means the document itself.
    The macros that hand JSON back as text (json_get, json_array_rows, json_object_rows) read
    it on PostgreSQL as `json`, which keeps the source's text, not as `jsonb`, which writes its
    own (keys reordered, a space after ':' and ','): DuckDB writes a value back compactly in
    its source's key order, so for the compact payloads the ingest lands (orjson) both
    engines give the same text. -#}

{% macro _json_path_duckdb(path) -%}
    {%- if path -%}'$.{{ path }}'{%- else -%}'$'{%- endif -%}
{%- endmacro %}

{% macro _json_path_postgres(path) -%}
    '{{ "{" ~ (path.split(".") | join(",") if path else "") ~ "}" }}'
{%- endmacro %}


{#- as_json(expr): the expression as the engine's JSON type (parsed once). -#}
{% macro as_json(expr) -%}
    {{ return(adapter.dispatch('as_json', 'recon')(expr)) }}
{%- endmacro %}

{% macro default__as_json(expr) -%}
    cast({{ expr }} as json)
{%- endmacro %}

{% macro postgres__as_json(expr) -%}
    cast({{ expr }} as jsonb)
{%- endmacro %}


{#- json_str(expr, path): the value at path as text (strings unquoted, objects as JSON text,
    JSON null and a missing key as SQL null). -#}
{% macro json_str(expr, path='') -%}
    {{ return(adapter.dispatch('json_str', 'recon')(expr, path)) }}
{%- endmacro %}

{% macro default__json_str(expr, path='') -%}
    json_extract_string({{ expr }}, {{ recon._json_path_duckdb(path) }})
{%- endmacro %}

{% macro postgres__json_str(expr, path='') -%}
    (cast({{ expr }} as jsonb) #>> {{ recon._json_path_postgres(path) }})
{%- endmacro %}


{#- json_get(expr, path): the value at path as JSON text; JSON null and a missing key give
    SQL null. -#}
{% macro json_get(expr, path='') -%}
    {{ return(adapter.dispatch('json_get', 'recon')(expr, path)) }}
{%- endmacro %}

{% macro default__json_get(expr, path='') -%}
    nullif(cast(json_extract({{ expr }}, {{ recon._json_path_duckdb(path) }}) as varchar), 'null')
{%- endmacro %}

{% macro postgres__json_get(expr, path='') -%}
    nullif(cast(cast({{ expr }} as json) #> {{ recon._json_path_postgres(path) }} as text), 'null')
{%- endmacro %}


{#- json_type(expr, path): one of object, array, string, number, boolean, null (JSON null);
    SQL null when the key is missing. -#}
{% macro json_type(expr, path='') -%}
    {{ return(adapter.dispatch('json_type', 'recon')(expr, path)) }}
{%- endmacro %}

{% macro default__json_type(expr, path='') -%}
    (case lower(json_type({{ expr }}, {{ recon._json_path_duckdb(path) }}))
        when 'varchar' then 'string'
        when 'bigint' then 'number'
        when 'ubigint' then 'number'
        when 'double' then 'number'
        when 'hugeint' then 'number'
        else lower(json_type({{ expr }}, {{ recon._json_path_duckdb(path) }}))
    end)
{%- endmacro %}

{% macro postgres__json_type(expr, path='') -%}
    jsonb_typeof(cast({{ expr }} as jsonb) #> {{ recon._json_path_postgres(path) }})
{%- endmacro %}


{#- json_has_key(expr, key): true when the object has the key, even with a null value. -#}
{% macro json_has_key(expr, key) -%}
    {{ return(adapter.dispatch('json_has_key', 'recon')(expr, key)) }}
{%- endmacro %}

{% macro default__json_has_key(expr, key) -%}
    coalesce(json_exists({{ expr }}, '$.{{ key }}'), false)
{%- endmacro %}

{% macro postgres__json_has_key(expr, key) -%}
    coalesce(jsonb_exists(cast({{ expr }} as jsonb), '{{ key }}'), false)
{%- endmacro %}


{#- Several paths of one document at once: json_strs, json_gets, json_types and json_have_keys
    give json_str, json_get, json_type and json_has_key of each of `paths` as one array, to be
    read in the next select with json_strs_at, json_gets_at, json_types_at and
    json_have_keys_at (array, paths, path: the element of that path). On DuckDB each is one
    parse of the document for all the paths. Each JSON function call parses its document
    again and keeps what it parsed for a whole vector of rows (2,048) per thread, memory the
    memory_limit counts but cannot spill: a dozen calls over the subscriptions' JSON held
    hundreds of MB at 100,000 customers (DECISIONLOG "Models: memory"). PostgreSQL reads each
    path as the one-path macros do. -#}
{% macro _json_paths_duckdb(paths) -%}
    [{% for path in paths %}{{ recon._json_path_duckdb(path) }}{{ ', ' if not loop.last }}{% endfor %}]
{%- endmacro %}

{% macro _json_path_position(paths, path) -%}
    {%- if path not in paths -%}
        {{ exceptions.raise_compiler_error('recon: path ' ~ path ~ ' is not among ' ~ paths) }}
    {%- endif -%}
    {{ paths.index(path) + 1 }}
{%- endmacro %}

{% macro json_strs(expr, paths) -%}
    {{ return(adapter.dispatch('json_strs', 'recon')(expr, paths)) }}
{%- endmacro %}

{% macro default__json_strs(expr, paths) -%}
    json_extract_string({{ expr }}, {{ recon._json_paths_duckdb(paths) }})
{%- endmacro %}

{% macro postgres__json_strs(expr, paths) -%}
    array[{% for path in paths %}{{ recon.postgres__json_str(expr, path) }}{{ ', ' if not loop.last }}{% endfor %}]
{%- endmacro %}

{% macro json_strs_at(array_expr, paths, path) -%}
    {{ array_expr }}[{{ recon._json_path_position(paths, path) }}]
{%- endmacro %}

{% macro json_gets(expr, paths) -%}
    {{ return(adapter.dispatch('json_gets', 'recon')(expr, paths)) }}
{%- endmacro %}

{% macro default__json_gets(expr, paths) -%}
    cast(json_extract({{ expr }}, {{ recon._json_paths_duckdb(paths) }}) as varchar[])
{%- endmacro %}

{% macro postgres__json_gets(expr, paths) -%}
    array[{% for path in paths %}{{ recon.postgres__json_get(expr, path) }}{{ ', ' if not loop.last }}{% endfor %}]
{%- endmacro %}

{% macro json_gets_at(array_expr, paths, path) -%}
    nullif({{ array_expr }}[{{ recon._json_path_position(paths, path) }}], 'null')
{%- endmacro %}

{% macro json_types(expr, paths) -%}
    {{ return(adapter.dispatch('json_types', 'recon')(expr, paths)) }}
{%- endmacro %}

{% macro default__json_types(expr, paths) -%}
    json_type({{ expr }}, {{ recon._json_paths_duckdb(paths) }})
{%- endmacro %}

{% macro postgres__json_types(expr, paths) -%}
    array[{% for path in paths %}{{ recon.postgres__json_type(expr, path) }}{{ ', ' if not loop.last }}{% endfor %}]
{%- endmacro %}

{% macro json_types_at(array_expr, paths, path) -%}
    {{ return(adapter.dispatch('json_types_at', 'recon')(array_expr, paths, path)) }}
{%- endmacro %}

{% macro default__json_types_at(array_expr, paths, path) -%}
    {%- set element = array_expr ~ '[' ~ recon._json_path_position(paths, path) ~ ']' -%}
    (case lower({{ element }})
        when 'varchar' then 'string'
        when 'bigint' then 'number'
        when 'ubigint' then 'number'
        when 'double' then 'number'
        when 'hugeint' then 'number'
        else lower({{ element }})
    end)
{%- endmacro %}

{% macro postgres__json_types_at(array_expr, paths, path) -%}
    {{ array_expr }}[{{ recon._json_path_position(paths, path) }}]
{%- endmacro %}

{% macro json_have_keys(expr, keys) -%}
    {{ return(adapter.dispatch('json_have_keys', 'recon')(expr, keys)) }}
{%- endmacro %}

{% macro default__json_have_keys(expr, keys) -%}
    json_exists({{ expr }}, {{ recon._json_paths_duckdb(keys) }})
{%- endmacro %}

{% macro postgres__json_have_keys(expr, keys) -%}
    array[{% for key in keys %}{{ recon.postgres__json_has_key(expr, key) }}{{ ', ' if not loop.last }}{% endfor %}]
{%- endmacro %}

{% macro json_have_keys_at(array_expr, keys, key) -%}
    coalesce({{ array_expr }}[{{ recon._json_path_position(keys, key) }}], false)
{%- endmacro %}


{#- json_array_rows(expr, alias, outer=false): a lateral join clause, to follow a FROM item,
    giving one row per element of the JSON array expr with `alias.idx` (0-based position)
    and `alias.value_json` (the element as JSON text). Anything but an array gives no rows
    (with outer=true: one row of nulls). -#}
{% macro json_array_rows(expr, alias, outer=false) -%}
    {{ return(adapter.dispatch('json_array_rows', 'recon')(expr, alias, outer)) }}
{%- endmacro %}

{#- DuckDB: unnest() of the array's elements in a lateral subquery without a FROM, which
    DuckDB turns into a streaming UNNEST over the outer rows. A lateral json_each() (or any
    lateral subquery with a FROM) is decorrelated instead: a hash table of every distinct
    `expr` text (whole JSON documents), unnested once each and joined back, which does not
    spill and held most of the memory of the subscription models at 100,000 customers.
    json_extract(expr, '$[*]') gives the elements as JSON text, and an empty list for
    anything but an array. -#}
{% macro default__json_array_rows(expr, alias, outer=false) -%}
    {%- set elements = "cast(json_extract(" ~ expr ~ ", '$[*]') as varchar[])" -%}
    {% if outer %}left join{% else %}inner join{% endif %} lateral (
        select
            cast(generate_subscripts({{ elements }}, 1) - 1 as integer) as idx,
            unnest({{ elements }}) as value_json
    ) as {{ alias }} on true
{%- endmacro %}

{% macro postgres__json_array_rows(expr, alias, outer=false) -%}
    {% if outer %}left join{% else %}inner join{% endif %} lateral (
        select
            cast(je.ord - 1 as integer) as idx,
            cast(je.value as text) as value_json
        from json_array_elements(
            case
                when json_typeof(cast({{ expr }} as json)) = 'array'
                    then cast({{ expr }} as json)
                else cast('[]' as json)
            end
        ) with ordinality as je (value, ord)
    ) as {{ alias }} on true
{%- endmacro %}


{#- json_object_rows(expr, alias, outer=false): like json_array_rows, one row per key of a
    JSON object: `alias.key` and `alias.value_json`. -#}
{% macro json_object_rows(expr, alias, outer=false) -%}
    {{ return(adapter.dispatch('json_object_rows', 'recon')(expr, alias, outer)) }}
{%- endmacro %}

{% macro default__json_object_rows(expr, alias, outer=false) -%}
    {% if outer %}left join{% else %}inner join{% endif %} lateral (
        select
            cast(je.key as varchar) as key,
            cast(je.value as varchar) as value_json
        from json_each(
            case when json_type({{ expr }}) = 'OBJECT' then {{ expr }} else '{}' end
        ) as je
    ) as {{ alias }} on true
{%- endmacro %}

{% macro postgres__json_object_rows(expr, alias, outer=false) -%}
    {% if outer %}left join{% else %}inner join{% endif %} lateral (
        select
            cast(je.key as text) as key,
            cast(je.value as text) as value_json
        from json_each(
            case
                when json_typeof(cast({{ expr }} as json)) = 'object'
                    then cast({{ expr }} as json)
                else cast('{}' as json)
            end
        ) as je
    ) as {{ alias }} on true
{%- endmacro %}


{#- json_contains(haystack, needle): true when needle is contained in haystack (objects: every
    key of needle present with a contained value; arrays: every element of needle contained in
    some element). Used to chain an event's previous_attributes to another event's object. -#}
{% macro json_contains(haystack, needle) -%}
    {{ return(adapter.dispatch('json_contains', 'recon')(haystack, needle)) }}
{%- endmacro %}

{% macro default__json_contains(haystack, needle) -%}
    json_contains({{ haystack }}, {{ needle }})
{%- endmacro %}

{% macro postgres__json_contains(haystack, needle) -%}
    (cast({{ haystack }} as jsonb) @> cast({{ needle }} as jsonb))
{%- endmacro %}


{#- json_may_hold_object_in_array(expr, key=none): a cheap test on the JSON text of expr
    (a regular expression, no parsing): true whenever it holds an array (under "key", when
    key is given) with an object among its elements, unless a string element before that
    object holds a "]" (Stripe ids never do); rarely true otherwise. A filter to put before
    unnesting (json_array_rows), which then checks each element exactly. -#}
{% macro json_may_hold_object_in_array(expr, key=none) -%}
    {%- set pattern = ('"' ~ key ~ '"\\s*:\\s*' if key else '') ~ '\\[[^\\]]*\\{' -%}
    {{ return(adapter.dispatch('json_text_matches', 'recon')(expr, pattern)) }}
{%- endmacro %}

{% macro default__json_text_matches(expr, pattern) -%}
    regexp_matches(cast({{ expr }} as varchar), '{{ pattern }}')
{%- endmacro %}

{% macro postgres__json_text_matches(expr, pattern) -%}
    (cast({{ expr }} as text) ~ '{{ pattern }}')
{%- endmacro %}


{#- json_may_hold_nonempty_array(expr, key): a cheap test on the JSON text of expr, like
    json_may_hold_object_in_array: true whenever it holds a non-empty array under "key";
    rarely true otherwise. -#}
{% macro json_may_hold_nonempty_array(expr, key) -%}
    {%- set pattern = '"' ~ key ~ '"\\s*:\\s*\\[\\s*[^\\]\\s]' -%}
    {{ return(adapter.dispatch('json_text_matches', 'recon')(expr, pattern)) }}
{%- endmacro %}
