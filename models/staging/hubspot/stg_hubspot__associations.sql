{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['from_object_type', 'from_id', 'to_object_type'],
        post_hook=["{{ recon.delete_key_markers(['to_id', 'association_type_id', 'association_category']) }}"],
    )
}}

-- One row per association and association type: the v4 `to` list of each object unnested.
-- A table, not a view: unnested once per landing (only the lists landed since the last build
-- are unnested again), where a view unnested every list for each model reading it. Each
-- landed list also yields one key marker row (every value but the key null), so that
-- delete+insert replaces the rows of a list that became empty; the post-hook then deletes
-- the markers, in the same transaction.
with

source as (
    select * from {{ recon.raw_source('hubspot', 'associations') }}
    {{ recon.landed_since_built() }}
),

targets as (
    select
        source.from_object_type,
        source.from_id,
        source.to_object_type,
        {{ recon.json_str('association_target.value_json', 'toObjectId') }} as to_id,
        {{ recon.json_get('association_target.value_json', 'associationTypes') }} as association_types_json,
        source._recon_fetched_at as fetched_at
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
        {{ recon.json_str('association_type.value_json', 'label') }} as association_label,
        targets.fetched_at
    from targets
    {{ recon.json_array_rows('targets.association_types_json', 'association_type') }}
),

key_markers as (
    select
        from_object_type,
        from_id,
        to_object_type,
        cast(null as {{ dbt.type_string() }}) as to_id,
        cast(null as {{ dbt.type_string() }}) as association_category,
        cast(null as integer) as association_type_id,
        cast(null as {{ dbt.type_string() }}) as association_label,
        _recon_fetched_at as fetched_at
    from source
)

select * from renamed
union all
select * from key_markers
