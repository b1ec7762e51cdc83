-- One row per association and association type: the v4 `to` list of each object unnested.
with

source as (
    select * from {{ recon.raw_source('hubspot', 'associations') }}
),

targets as (
    select
        source.from_object_type,
        source.from_id,
        source.to_object_type,
        {{ recon.json_str('association_target.value_json', 'toObjectId') }} as to_id,
        {{ recon.json_get('association_target.value_json', 'associationTypes') }} as association_types_json
    from source
    {{ recon.json_array_rows('source.payload', 'association_target') }}
),

renamed as (
    select
        targets.from_object_type,
        targets.from_id,
        targets.to_object_type,
        targets.to_id,
        {{ recon.json_str('association_type.value_json', 'category') }} as association_category,
        cast({{ recon.json_str('association_type.value_json', 'typeId') }} as integer) as association_type_id,
        {{ recon.json_str('association_type.value_json', 'label') }} as association_label
    from targets
    {{ recon.json_array_rows('targets.association_types_json', 'association_type') }}
)

select * from renamed
