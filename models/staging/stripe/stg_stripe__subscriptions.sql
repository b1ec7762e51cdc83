{#- the paths read from each payload: one parse for the text values, one for the JSON ones
    (recon.json_strs / json_gets), not one per column: int_discounts_observed reads the three
    JSON documents of every subscription, and each JSON call parses the whole object again -#}
{%- set str_paths = [
    'customer', 'status', 'currency', 'start_date', 'trial_start', 'trial_end', 'ended_at',
    'canceled_at', 'cancel_at', 'pause_collection.behavior',
] -%}
{%- set get_paths = ['items.data', 'discounts', 'discount'] -%}

with

source as (
    select * from {{ recon.raw_source('stripe', 'subscriptions') }}
),

documents as (
    select
        source.*,
        {{ recon.json_strs('source.payload', str_paths) }} as payload_strs,
        {{ recon.json_gets('source.payload', get_paths) }} as payload_gets
    from source
),

renamed as (
    select
        id as subscription_id,
        {{ recon.json_strs_at('payload_strs', str_paths, 'customer') }} as customer_id,
        {{ recon.json_strs_at('payload_strs', str_paths, 'status') }} as status,
        upper({{ recon.json_strs_at('payload_strs', str_paths, 'currency') }}) as currency,
        cast({{ recon.json_strs_at('payload_strs', str_paths, 'start_date') }} as bigint) as start_date_unix,
        cast({{ recon.json_strs_at('payload_strs', str_paths, 'trial_start') }} as bigint) as trial_start_unix,
        cast({{ recon.json_strs_at('payload_strs', str_paths, 'trial_end') }} as bigint) as trial_end_unix,
        cast({{ recon.json_strs_at('payload_strs', str_paths, 'ended_at') }} as bigint) as ended_at_unix,
        cast({{ recon.json_strs_at('payload_strs', str_paths, 'canceled_at') }} as bigint) as canceled_at_unix,
        cast({{ recon.json_strs_at('payload_strs', str_paths, 'cancel_at') }} as bigint) as cancel_at_unix,
        {{ recon.json_strs_at('payload_strs', str_paths, 'pause_collection.behavior') }} as pause_collection_behavior,
        {{ recon.json_gets_at('payload_gets', get_paths, 'items.data') }} as items_json,
        {{ recon.json_gets_at('payload_gets', get_paths, 'discounts') }} as discounts_json,
        {{ recon.json_gets_at('payload_gets', get_paths, 'discount') }} as discount_json,
        payload as subscription_json,
        coalesce(deleted, false) as is_deleted,
        created as created_unix,
        livemode as is_livemode,
        api_version,
        _recon_fetched_at as fetched_at
    from documents
)

select * from renamed
