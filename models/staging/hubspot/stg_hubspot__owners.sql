with

source as (
    select * from {{ recon.raw_source('hubspot', 'owners') }}
),

renamed as (
    select
        id as owner_id,
        {{ recon.json_str('payload', 'email') }} as email,
        {{ recon.json_str('payload', 'firstName') }} as first_name,
        {{ recon.json_str('payload', 'lastName') }} as last_name,
        cast({{ recon.json_str('payload', 'userId') }} as bigint) as user_id,
        coalesce(archived, false) as is_archived,
        _recon_fetched_at as fetched_at
    from source
)

select * from renamed
