{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='customer_id',
    )
}}

-- A table, not a view: parsed once per landing (only the rows landed since the last build
-- are parsed again), where a view re-parsed every row's JSON for each model reading it.
with

source as (
    select * from {{ recon.raw_source('stripe', 'customers') }}
    {{ recon.landed_since_built() }}
),

renamed as (
    select
        id as customer_id,
        {{ recon.json_str('payload', 'name') }} as customer_name,
        {{ recon.json_str('payload', 'email') }} as email,
        upper({{ recon.json_str('payload', 'currency') }}) as currency,
        {{ recon.json_str('payload', 'metadata.hubspot_company_id') }} as metadata_hubspot_company_id,
        {{ recon.json_get('payload', 'discount') }} as discount_json,
        coalesce(deleted, false) as is_deleted,
        created as created_unix,
        {{ recon.from_unix('created') }} as created_at,
        livemode as is_livemode,
        api_version,
        _recon_fetched_at as fetched_at
    from source
)

select * from renamed
