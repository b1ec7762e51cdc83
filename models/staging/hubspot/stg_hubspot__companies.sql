{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='company_id',
    )
}}

-- A table, not a view: parsed once per landing (only the rows landed since the last build
-- are parsed again), where a view re-parsed every row's JSON for each model reading it.
with

source as (
    select * from {{ recon.raw_source('hubspot', 'companies') }}
    {{ recon.landed_since_built() }}
),

renamed as (
    select
        id as company_id,
        nullif(trim({{ recon.json_str('properties', 'name') }}), '') as company_name,
        nullif(trim({{ recon.json_str('properties', 'domain') }}), '') as domain,
        nullif(trim({{ recon.json_str('properties', 'stripe_customer_id') }}), '') as stripe_customer_id,
        nullif(trim({{ recon.json_str('properties', 'mrr') }}), '') as mrr_text,
        {{ recon.number_or_null(recon.json_str('properties', 'mrr')) }} as mrr,
        nullif(trim({{ recon.json_str('properties', 'subscription_status') }}), '') as subscription_status,
        nullif(trim({{ recon.json_str('properties', 'lifecyclestage') }}), '') as lifecyclestage,
        nullif(trim({{ recon.json_str('properties', 'hubspot_owner_id') }}), '') as hubspot_owner_id,
        coalesce(archived, false) as is_archived,
        created_at,
        updated_at,
        _recon_fetched_at as fetched_at
    from source
)

select * from renamed
