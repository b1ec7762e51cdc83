with

source as (
    select * from {{ recon.raw_source('recon_audit', 'sync_changes') }}
),

renamed as (
    select
        run_id,
        change_id,
        object_type,
        object_id,
        property,
        old_value,
        new_value,
        finding_ids as finding_ids_json,
        status,
        error,
        attempts,
        planned_at,
        sent_at,
        acked_at,
        verified_at,
        verified_value,
        updated_at,
        -- the instant HubSpot took the write: its answer, else the last send (a change a dead
        -- run sent and a later run's read-back proved), else the read-back itself
        coalesce(acked_at, sent_at, verified_at) as written_at
    from source
)

select * from renamed
