with

source as (
    select * from {{ recon.raw_source('stripe', 'products') }}
),

renamed as (
    select
        id as product_id,
        {{ recon.json_str('payload', 'name') }} as product_name,
        cast({{ recon.json_str('payload', 'active') }} as boolean) as is_active,
        coalesce(deleted, false) as is_deleted,
        created as created_unix,
        livemode as is_livemode,
        api_version,
        _recon_fetched_at as fetched_at
    from source
)

select * from renamed
