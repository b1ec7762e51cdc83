with

source as (
    select * from {{ recon.raw_source('hubspot', 'contacts') }}
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
