{#- discount_columns(expr): the select-list of a discount object in either shape: current API
    versions name the coupon as `source.coupon` (an id, or the coupon object when expanded),
    older ones as `coupon` (an object). Ends with a trailing comma. -#}
{% macro discount_columns(expr) -%}
    {{ recon.discount_id(expr) }} as discount_id,
    {{ recon.discount_coupon_id(expr) }} as coupon_id,
    case
        when {{ recon.json_type(expr, 'source.coupon') }} = 'object' then {{ recon.json_get(expr, 'source.coupon') }}
        when {{ recon.json_type(expr, 'coupon') }} = 'object' then {{ recon.json_get(expr, 'coupon') }}
    end as coupon_json,
    case
        when {{ recon.json_type(expr, 'customer') }} = 'object' then {{ recon.json_str(expr, 'customer.id') }}
        else {{ recon.json_str(expr, 'customer') }}
    end as customer_id,
    {{ recon.json_str(expr, 'subscription') }} as subscription_id,
    {{ recon.json_str(expr, 'subscription_item') }} as subscription_item_id,
    cast({{ recon.json_str(expr, 'start') }} as bigint) as start_unix,
    cast({{ recon.json_str(expr, 'end') }} as bigint) as end_unix,
{%- endmacro %}


{#- coupon_columns(expr): the select-list of a coupon object. Ends with a trailing comma. -#}
{% macro coupon_columns(expr) -%}
    {{ recon.json_str(expr, 'id') }} as coupon_id,
    cast({{ recon.json_str(expr, 'percent_off') }} as decimal(38, 12)) as percent_off,
    cast({{ recon.json_str(expr, 'amount_off') }} as bigint) as amount_off,
    upper({{ recon.json_str(expr, 'currency') }}) as currency,
    {{ recon.json_str(expr, 'duration') }} as duration,
    cast({{ recon.json_str(expr, 'duration_in_months') }} as integer) as duration_in_months,
    {{ recon.json_get(expr, 'applies_to.products') }} as applies_to_products_json,
    {{ recon.json_get(expr, 'currency_options') }} as currency_options_json,
{%- endmacro %}


{#- discount_coupon_id(expr): the coupon id of a discount object, in either shape. -#}
{% macro discount_coupon_id(expr) -%}
    case
        when {{ recon.json_type(expr, 'source.coupon') }} = 'object' then {{ recon.json_str(expr, 'source.coupon.id') }}
        when {{ recon.json_type(expr, 'source.coupon') }} = 'string' then {{ recon.json_str(expr, 'source.coupon') }}
        when {{ recon.json_type(expr, 'coupon') }} = 'object' then {{ recon.json_str(expr, 'coupon.id') }}
        when {{ recon.json_type(expr, 'coupon') }} = 'string' then {{ recon.json_str(expr, 'coupon') }}
    end
{%- endmacro %}


{#- discount_id(expr): a discount object's id; discounts of the oldest API versions have none
    and are named by what they hold (subscription or customer, coupon, start). -#}
{% macro discount_id(expr) -%}
    coalesce(
        {{ recon.json_str(expr, 'id') }},
        'di_legacy_' || coalesce({{ recon.json_str(expr, 'subscription') }}, {{ recon.json_str(expr, 'customer') }}, '')
        || '_' || coalesce({{ recon.discount_coupon_id(expr) }}, '')
        || '_' || coalesce({{ recon.json_str(expr, 'start') }}, '')
    )
{%- endmacro %}
