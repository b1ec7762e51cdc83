with

source as (
    select * from {{ recon.raw_source('stripe', 'prices') }}
),

renamed as (
    select
        id as price_id,
        {{ recon.json_str('payload', 'product') }} as product_id,
        upper({{ recon.json_str('payload', 'currency') }}) as currency,
        {{ recon.json_str('payload', 'type') }} as price_type,
        {{ recon.json_str('payload', 'billing_scheme') }} as billing_scheme,
        {{ recon.json_str('payload', 'tiers_mode') }} as tiers_mode,
        cast({{ recon.json_str('payload', 'unit_amount') }} as bigint) as unit_amount,
        cast({{ recon.json_str('payload', 'unit_amount_decimal') }} as decimal(38, 12)) as unit_amount_decimal,
        {{ recon.json_str('payload', 'recurring.interval') }} as recurring_interval,
        cast({{ recon.json_str('payload', 'recurring.interval_count') }} as integer) as recurring_interval_count,
        {{ recon.json_str('payload', 'recurring.usage_type') }} as recurring_usage_type,
        cast({{ recon.json_str('payload', 'transform_quantity.divide_by') }} as bigint) as transform_quantity_divide_by,
        {{ recon.json_str('payload', 'transform_quantity.round') }} as transform_quantity_round,
        {{ recon.json_get('payload', 'tiers') }} as tiers_json,
        {{ recon.json_get('payload', 'currency_options') }} as currency_options_json,
        cast({{ recon.json_str('payload', 'active') }} as boolean) as is_active,
        coalesce(deleted, false) as is_deleted,
        created as created_unix,
        livemode as is_livemode,
        api_version,
        _recon_fetched_at as fetched_at
    from source
)

select * from renamed
