with

source as (
    select * from {{ recon.raw_source('hubspot', 'properties') }}
),

renamed as (
    select
        object_type,
        name as property_name,
        type as property_type,
        field_type,
        {{ recon.json_str('payload', 'label') }} as property_label,
        {{ recon.json_str('payload', 'groupName') }} as group_name,
        coalesce(cast({{ recon.json_str('payload', 'hasUniqueValue') }} as boolean), false) as has_unique_value,
        {{ recon.json_get('payload', 'options') }} as options_json
    from source
)

select * from renamed
