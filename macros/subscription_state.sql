{#- A subscription's state read from its JSON object (mrr.md §6), in two selects:
    subscription_state_documents(object_expr, overlay_expr=none) reads the JSON into array
    columns (state_*, and overlay_* with an overlay: a few reads of each document, not one per
    field; see recon.json_strs), and subscription_state_columns(overlay=false), in the select
    over those, gives the state's columns. With an overlay (an event's previous_attributes),
    each attribute the overlay names is read from it instead: the state just before that
    event. Both end with a trailing comma. -#}

{% macro _subscription_state_paths() -%}
    {{ return({
        'strs': [
            'customer', 'customer.id', 'status', 'currency', 'start_date', 'trial_end', 'ended_at',
            'pause_collection.behavior',
        ],
        'gets': ['items.data', 'discounts', 'discount'],
        'types': ['customer'],
        'overlay_keys': [
            'status', 'start_date', 'trial_end', 'ended_at', 'pause_collection', 'items', 'discounts',
            'discount',
        ],
        'overlay_strs': ['status', 'start_date', 'trial_end', 'ended_at', 'pause_collection.behavior'],
        'overlay_gets': ['items.data', 'discounts', 'discount'],
        'overlay_types': ['pause_collection'],
    }) }}
{%- endmacro %}


{% macro subscription_state_documents(object_expr, overlay_expr=none) -%}
    {%- set paths = recon._subscription_state_paths() -%}
    {{ recon.json_strs(object_expr, paths.strs) }} as state_strs,
    {{ recon.json_gets(object_expr, paths.gets) }} as state_gets,
    {{ recon.json_types(object_expr, paths.types) }} as state_types,
    {%- if overlay_expr is not none %}
    {{ recon.json_have_keys(overlay_expr, paths.overlay_keys) }} as overlay_keys,
    {{ recon.json_strs(overlay_expr, paths.overlay_strs) }} as overlay_strs,
    {{ recon.json_gets(overlay_expr, paths.overlay_gets) }} as overlay_gets,
    {{ recon.json_types(overlay_expr, paths.overlay_types) }} as overlay_types,
    {%- endif %}
{%- endmacro %}


{% macro subscription_state_columns(overlay=false) -%}
    {%- set paths = recon._subscription_state_paths() -%}
    case
        when {{ recon.json_types_at('state_types', paths.types, 'customer') }} = 'object'
            then {{ recon._state_str('customer.id') }}
        else {{ recon._state_str('customer') }}
    end as customer_id,
    {{ recon._overlay_pick(overlay, 'status', recon._state_str('status'), recon._overlay_str('status')) }} as status,
    upper({{ recon._state_str('currency') }}) as currency,
    cast({{ recon._overlay_pick(
        overlay, 'start_date', recon._state_str('start_date'), recon._overlay_str('start_date')
    ) }} as bigint) as start_date_unix,
    cast({{ recon._overlay_pick(
        overlay, 'trial_end', recon._state_str('trial_end'), recon._overlay_str('trial_end')
    ) }} as bigint) as trial_end_unix,
    cast({{ recon._overlay_pick(
        overlay, 'ended_at', recon._state_str('ended_at'), recon._overlay_str('ended_at')
    ) }} as bigint) as ended_at_unix,
    {{ recon._overlay_pick(overlay,
        'pause_collection',
        recon._state_str('pause_collection.behavior'),
        'case when ' ~ recon.json_types_at('overlay_types', paths.overlay_types, 'pause_collection')
            ~ " = 'object' then coalesce(" ~ recon._overlay_str('pause_collection.behavior') ~ ', '
            ~ recon._state_str('pause_collection.behavior') ~ ') end'
    ) }} as pause_collection_behavior,
    {{ recon._overlay_pick(overlay, 'items', recon._state_get('items.data'), recon._overlay_get('items.data')) }}
        as items_json,
    {{ recon._overlay_pick(overlay, 'discounts', recon._state_get('discounts'), recon._overlay_get('discounts')) }}
        as discounts_json,
    {{ recon._overlay_pick(overlay, 'discount', recon._state_get('discount'), recon._overlay_get('discount')) }}
        as discount_json,
{%- endmacro %}


{% macro _state_str(path) -%}
    {{ recon.json_strs_at('state_strs', recon._subscription_state_paths().strs, path) }}
{%- endmacro %}

{% macro _state_get(path) -%}
    {{ recon.json_gets_at('state_gets', recon._subscription_state_paths().gets, path) }}
{%- endmacro %}

{% macro _overlay_str(path) -%}
    {{ recon.json_strs_at('overlay_strs', recon._subscription_state_paths().overlay_strs, path) }}
{%- endmacro %}

{% macro _overlay_get(path) -%}
    {{ recon.json_gets_at('overlay_gets', recon._subscription_state_paths().overlay_gets, path) }}
{%- endmacro %}

{% macro _overlay_pick(overlay, key, from_object, from_overlay) -%}
    {%- if not overlay -%}
        {{ from_object }}
    {%- else -%}
        case
            when {{ recon.json_have_keys_at('overlay_keys', recon._subscription_state_paths().overlay_keys, key) }}
                then {{ from_overlay }}
            else {{ from_object }}
        end
    {%- endif -%}
{%- endmacro %}
