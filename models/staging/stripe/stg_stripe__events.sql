with

source as (
    select * from {{ recon.raw_source('stripe', 'events') }}
),

renamed as (
    select
        id as event_id,
        type as event_type,
        created as created_unix,
        {{ recon.from_unix('created') }} as created_at,
        api_version,
        livemode as is_livemode,
        data_object_id,
        data_object_type,
        {{ recon.json_get('payload', 'data.object') }} as data_object_json,
        {{ recon.json_get('payload', 'data.previous_attributes') }} as previous_attributes_json,
        _recon_source as received_via,
        _recon_fetched_at as fetched_at
    from source
)

select * from renamed
