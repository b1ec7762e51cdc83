-- The instant the build measures "now" at (one row): var `as_of` when set; otherwise the
-- source clock of the latest succeeded Stripe ingest (for a sandbox, its world's `now`);
-- without any ingest record, the newest Stripe event; without events, the build's clock.

with

ingest_runs as (
    select * from {{ ref('stg_recon_audit__ingest_runs') }}
),

events as (
    select * from {{ ref('int_stripe_events_deduped') }}
),

latest_stripe_ingest as (
    select max(source_clock_unix) as source_clock_unix
    from ingest_runs
    where
        ingest_source = 'stripe'
        and status = 'succeeded'
        and source_clock_unix is not null
),

newest_event as (
    select max(created_unix) as created_unix
    from events
),

resolved as (
    select
        {% if var('as_of') %}
            {{ recon.iso_to_unix(var('as_of')) }} as as_of_unix,
            'var' as as_of_source
        {% else %}
            coalesce(
                latest_stripe_ingest.source_clock_unix,
                newest_event.created_unix,
                {{ recon.to_unix(dbt.current_timestamp()) }}
            ) as as_of_unix,
            case
                when latest_stripe_ingest.source_clock_unix is not null then 'ingest_source_clock'
                when newest_event.created_unix is not null then 'newest_event'
                else 'build_clock'
            end as as_of_source
        {% endif %}
    from latest_stripe_ingest
    cross join newest_event
)

select
    as_of_unix,
    {{ recon.from_unix('as_of_unix') }} as as_of,
    {{ recon.month_start_of_unix('as_of_unix') }} as as_of_month,
    as_of_source
from resolved
