-- One row per option of an enumeration property (the values HubSpot accepts for it).
with

properties as (
    select * from {{ ref('stg_hubspot__properties') }}
),

options as (
    select
        properties.object_type,
        properties.property_name,
        property_option.idx + 1 as option_number,
        {{ recon.json_str('property_option.value_json', 'value') }} as option_value,
        {{ recon.json_str('property_option.value_json', 'label') }} as option_label,
        coalesce(cast({{ recon.json_str('property_option.value_json', 'hidden') }} as boolean), false) as is_hidden
    from properties
    {{ recon.json_array_rows('properties.options_json', 'property_option') }}
)

select * from options
