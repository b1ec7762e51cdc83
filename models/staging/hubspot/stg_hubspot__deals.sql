{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='deal_id',
    )
}}

-- A table, not a view: parsed once per landing (only the rows landed since the last build
-- are parsed again), where a view re-parsed every row's JSON for each model reading it.
with

source as (
    select * from {{ recon.raw_source('hubspot', 'deals') }}
    {{ recon.landed_since_built() }}
),

renamed as (
    select
        id as deal_id,
        nullif(trim({{ recon.json_str('properties', 'dealname') }}), '') as deal_name,
        {{ recon.number_or_null(recon.json_str('properties', 'amount')) }} as amount,
        nullif(trim({{ recon.json_str('properties', 'dealstage') }}), '') as dealstage,
        nullif(trim({{ recon.json_str('properties', 'pipeline') }}), '') as pipeline,
        coalesce(lower(trim({{ recon.json_str('properties', 'hs_is_closed') }})) = 'true', false) as is_closed,
        nullif(trim({{ recon.json_str('properties', 'hubspot_owner_id') }}), '') as hubspot_owner_id,
        coalesce(archived, false) as is_archived,
        created_at,
        updated_at,
        _recon_fetched_at as fetched_at
    from source
)

select * from renamed
