with

source as (
    select * from {{ recon.raw_source('recon_audit', 'ingest_runs') }}
),

renamed as (
    select
        run_id,
        source as ingest_source,
        status,
        full_refresh as is_full_refresh,
        started_at,
        finished_at,
        source_clock,
        {{ recon.to_unix('source_clock') }} as source_clock_unix,
        rows_loaded as rows_loaded_json,
        error
    from source
)

select * from renamed
