with

source as (
    select * from {{ recon.raw_source('stripe', 'coupons') }}
),

renamed as (
    select
        id as coupon_id,
        {{ recon.json_str('payload', 'name') }} as coupon_name,
        cast({{ recon.json_str('payload', 'percent_off') }} as decimal(38, 12)) as percent_off,
        cast({{ recon.json_str('payload', 'amount_off') }} as bigint) as amount_off,
        upper({{ recon.json_str('payload', 'currency') }}) as currency,
        {{ recon.json_str('payload', 'duration') }} as duration,
        cast({{ recon.json_str('payload', 'duration_in_months') }} as integer) as duration_in_months,
        {{ recon.json_get('payload', 'applies_to.products') }} as applies_to_products_json,
        {{ recon.json_get('payload', 'currency_options') }} as currency_options_json,
        cast({{ recon.json_str('payload', 'valid') }} as boolean) as is_valid,
        coalesce(deleted, false) as is_deleted,
        payload as coupon_json,
        created as created_unix,
        livemode as is_livemode,
        api_version,
        _recon_fetched_at as fetched_at
    from source
)

select * from renamed
