{#- subscription_state_columns(object_expr, overlay_expr=none): the select-list of a
    subscription's state read from its JSON object. With overlay_expr (an event's
    previous_attributes), each attribute the overlay names is read from it instead: the
    state just before that event (mrr.md §6). Ends with a trailing comma. -#}
{% macro subscription_state_columns(object_expr, overlay_expr=none) -%}
    {%- set o = object_expr -%}
    {%- set p = overlay_expr -%}


    case
        when {{ recon.json_type(o, 'customer') }} = 'object' then {{ recon.json_str(o, 'customer.id') }}
        else {{ recon.json_str(o, 'customer') }}
    end as customer_id,
    {{ recon._overlay_pick(p, 'status', recon.json_str(o, 'status'), recon.json_str(p, 'status')) }} as status,
    upper({{ recon.json_str(o, 'currency') }}) as currency,
    cast({{ recon._overlay_pick(p, 'start_date', recon.json_str(o, 'start_date'), recon.json_str(p, 'start_date')) }} as bigint)
        as start_date_unix,
    cast({{ recon._overlay_pick(p, 'trial_end', recon.json_str(o, 'trial_end'), recon.json_str(p, 'trial_end')) }} as bigint)
        as trial_end_unix,
    cast({{ recon._overlay_pick(p, 'ended_at', recon.json_str(o, 'ended_at'), recon.json_str(p, 'ended_at')) }} as bigint)
        as ended_at_unix,
    {{ recon._overlay_pick(p, 
        'pause_collection',
        recon.json_str(o, 'pause_collection.behavior'),
        'case when ' ~ recon.json_type(p, 'pause_collection') ~ " = 'object' then coalesce("
            ~ recon.json_str(p, 'pause_collection.behavior') ~ ', '
            ~ recon.json_str(o, 'pause_collection.behavior') ~ ') end'
    ) }} as pause_collection_behavior,
    {{ recon._overlay_pick(p, 'items', recon.json_get(o, 'items.data'), recon.json_get(p, 'items.data')) }} as items_json,
    {{ recon._overlay_pick(p, 'discounts', recon.json_get(o, 'discounts'), recon.json_get(p, 'discounts')) }} as discounts_json,
    {{ recon._overlay_pick(p, 'discount', recon.json_get(o, 'discount'), recon.json_get(p, 'discount')) }} as discount_json,
{%- endmacro %}


{% macro _overlay_pick(overlay_expr, key, from_object, from_overlay) -%}
    {%- if overlay_expr is none -%}
        {{ from_object }}
    {%- else -%}
        case when {{ recon.json_has_key(overlay_expr, key) }} then {{ from_overlay }} else {{ from_object }} end
    {%- endif -%}
{%- endmacro %}
