with

source as (
    select * from {{ recon.raw_source('stripe', 'subscriptions') }}
),

renamed as (
    select
        id as subscription_id,
        {{ recon.json_str('payload', 'customer') }} as customer_id,
        {{ recon.json_str('payload', 'status') }} as status,
        upper({{ recon.json_str('payload', 'currency') }}) as currency,
        cast({{ recon.json_str('payload', 'start_date') }} as bigint) as start_date_unix,
        cast({{ recon.json_str('payload', 'trial_start') }} as bigint) as trial_start_unix,
        cast({{ recon.json_str('payload', 'trial_end') }} as bigint) as trial_end_unix,
        cast({{ recon.json_str('payload', 'ended_at') }} as bigint) as ended_at_unix,
        cast({{ recon.json_str('payload', 'canceled_at') }} as bigint) as canceled_at_unix,
        cast({{ recon.json_str('payload', 'cancel_at') }} as bigint) as cancel_at_unix,
        {{ recon.json_str('payload', 'pause_collection.behavior') }} as pause_collection_behavior,
        {{ recon.json_get('payload', 'items.data') }} as items_json,
        {{ recon.json_get('payload', 'discounts') }} as discounts_json,
        {{ recon.json_get('payload', 'discount') }} as discount_json,
        payload as subscription_json,
        coalesce(deleted, false) as is_deleted,
        created as created_unix,
        livemode as is_livemode,
        api_version,
        _recon_fetched_at as fetched_at
    from source
)

select * from renamed
