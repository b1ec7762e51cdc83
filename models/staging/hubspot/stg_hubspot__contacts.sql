{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='contact_id',
    )
}}

-- A table, not a view: parsed once per landing (only the rows landed since the last build
-- are parsed again), where a view re-parsed every row's JSON for each model reading it.
with

source as (
    select * from {{ recon.raw_source('hubspot', 'contacts') }}
    {{ recon.landed_since_built() }}
),

renamed as (
    select
        id as contact_id,
        nullif(trim({{ recon.json_str('properties', 'email') }}), '') as email,
        nullif(trim({{ recon.json_str('properties', 'firstname') }}), '') as first_name,
        nullif(trim({{ recon.json_str('properties', 'lastname') }}), '') as last_name,
        coalesce(archived, false) as is_archived,
        created_at,
        updated_at,
        _recon_fetched_at as fetched_at
    from source
)

select * from renamed
