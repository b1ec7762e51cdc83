{#- Exact numbers. Money is DECIMAL(38, 9) everywhere; a quotient is computed once and cast
    back, so that DuckDB (whose decimal division yields a double) and PostgreSQL (numeric)
    agree far below the 0.01 tolerance of the checks. -#}

{#- money_type(): the SQL type of every money column. -#}
{% macro money_type() -%}
    decimal(38, 9)
{%- endmacro %}

{#- to_money(expr): cast to the money type. -#}
{% macro to_money(expr) -%}
    cast({{ expr }} as {{ recon.money_type() }})
{%- endmacro %}

{#- money_div(numerator, denominator): numerator / denominator in the money type; null when the
    denominator is 0 or null. -#}
{% macro money_div(numerator, denominator) -%}
    {{ return(adapter.dispatch('money_div', 'recon')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__money_div(numerator, denominator) -%}
    cast(
        cast({{ numerator }} as decimal(38, 12))
        / nullif(cast({{ denominator }} as decimal(38, 12)), 0)
        as {{ recon.money_type() }}
    )
{%- endmacro %}

{#- int_div(numerator, denominator, rounding): integer quotient of two non-negative integers,
    rounded 'down' or 'up' (Stripe's transform_quantity.round). -#}
{% macro int_div(numerator, denominator, rounding='down') -%}
    {%- if rounding == 'up' -%}
        cast(ceil(cast({{ numerator }} as decimal(38, 12)) / cast({{ denominator }} as decimal(38, 12))) as bigint)
    {%- else -%}
        cast(floor(cast({{ numerator }} as decimal(38, 12)) / cast({{ denominator }} as decimal(38, 12))) as bigint)
    {%- endif -%}
{%- endmacro %}


{#- money_text(expr): an amount rounded half up to cents, as text with two decimals ('1234.50'),
    the form recon writes to HubSpot and shows in findings. -#}
{% macro money_text(expr) -%}
    cast(cast(round({{ expr }}, 2) as decimal(38, 2)) as varchar)
{%- endmacro %}
