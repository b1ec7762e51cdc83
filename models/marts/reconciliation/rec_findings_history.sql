-- Every finding's history over the builds, one row per episode: a finding is open from the
-- first build that finds it until the first build that no longer does (resolved, by a recon
-- sync or by hand); found again later, it opens a new episode. The clock is the build's
-- as_of (int_as_of), never the wall clock, so the same builds give the same rows.
--
-- Incremental: each build rewrites only the episodes it touches (the open ones and the new
-- ones). `--full-refresh` does not rebuild it (full_refresh: false): history cannot be
-- recomputed from the sources. Only `--vars '{reset_findings_history: true}'` starts it
-- afresh. A build whose as_of is older than the newest the history has seen leaves it alone.
--
-- resolved_by: 'sync' when a verified sync write of the finding's company and property
-- (recon_audit.sync_changes) reached HubSpot after the newest write HubSpot had been read
-- after when the finding was last seen (sync_watermark_at), and before the HubSpot read of
-- the resolving build ended; else 'hand'. Both bounds are in the sync journal's clock.

{{ config(
    materialized='incremental',
    unique_key='finding_episode_id',
    incremental_strategy='delete+insert',
    on_schema_change='append_new_columns',
    full_refresh=(var('reset_findings_history', false) | string | lower in ['true', '1', 'yes']),
) }}

with

findings as (
    select
        finding_id,
        kind,
        stripe_customer_id,
        hubspot_company_id,
        property,
        mrr_at_stake
    from {{ ref('rec_findings') }}
),

build_clock as (
    select as_of
    from {{ ref('int_as_of') }}
),

ingest_runs as (
    select
        ingest_source,
        status,
        started_at,
        finished_at
    from {{ ref('stg_recon_audit__ingest_runs') }}
),

sync_changes as (
    select
        run_id,
        change_id,
        object_type,
        object_id,
        property,
        status,
        written_at
    from {{ ref('stg_recon_audit__sync_changes') }}
),

-- when recon last read HubSpot (the latest succeeded HubSpot ingest), in unix seconds of the
-- wall clock the sync journal also uses; null when no ingest was recorded
hubspot_read as (
    select
        max({{ recon.to_unix('started_at') }}) as read_started_unix,
        max({{ recon.to_unix('finished_at') }}) as read_finished_unix
    from ingest_runs
    where ingest_source = 'hubspot' and status = 'succeeded'
),

sync_writes as (
    select
        run_id,
        change_id,
        object_id as hubspot_company_id,
        property,
        written_at,
        {{ recon.to_unix('written_at') }} as written_unix
    from sync_changes
    where status = 'verified' and object_type = 'companies'
),

-- the newest verified write HubSpot had already taken when this build's data was read
watermark as (
    select max(sync_writes.written_at) as sync_watermark_at
    from sync_writes
    cross join hubspot_read
    where
        hubspot_read.read_started_unix is null
        or sync_writes.written_unix <= hubspot_read.read_started_unix
),

{% if is_incremental() %}
    history as (
        select
            finding_episode_id,
            finding_id,
            episode,
            kind,
            stripe_customer_id,
            hubspot_company_id,
            property,
            first_seen_at,
            last_seen_at,
            resolved_at,
            builds_seen,
            mrr_at_stake,
            sync_watermark_at,
            is_open
        from {{ this }}
    ),
{% else %}
    history as (
        select
            cast(null as varchar) as finding_episode_id,
            cast(null as varchar) as finding_id,
            cast(null as integer) as episode,
            cast(null as varchar) as kind,
            cast(null as varchar) as stripe_customer_id,
            cast(null as varchar) as hubspot_company_id,
            cast(null as varchar) as property,
            cast(null as timestamp) as first_seen_at,
            cast(null as timestamp) as last_seen_at,
            cast(null as timestamp) as resolved_at,
            cast(null as integer) as builds_seen,
            {{ recon.to_money('null') }} as mrr_at_stake,
            cast(null as timestamp) as sync_watermark_at,
            cast(null as boolean) as is_open
        from build_clock
        where 1 = 0
    ),
{% endif %}

-- the newest as_of the history has seen (resolved_at is never before last_seen_at)
history_clock as (
    select max(coalesce(resolved_at, last_seen_at)) as latest_as_of
    from history
),

-- this build's clock; no row at all when its as_of is older than the history's
build as (
    select
        build_clock.as_of,
        hubspot_read.read_finished_unix,
        watermark.sync_watermark_at
    from build_clock
    cross join hubspot_read
    cross join watermark
    cross join history_clock
    where
        history_clock.latest_as_of is null
        or build_clock.as_of >= history_clock.latest_as_of
),

open_episodes as (
    select
        finding_episode_id,
        finding_id,
        episode,
        kind,
        stripe_customer_id,
        hubspot_company_id,
        property,
        first_seen_at,
        last_seen_at,
        builds_seen,
        mrr_at_stake,
        sync_watermark_at
    from history
    where is_open
),

last_episodes as (
    select
        finding_id,
        max(episode) as last_episode
    from history
    group by finding_id
),

seen_again as (
    select
        open_episodes.finding_episode_id,
        open_episodes.finding_id,
        open_episodes.episode,
        open_episodes.kind,
        open_episodes.stripe_customer_id,
        open_episodes.hubspot_company_id,
        open_episodes.property,
        open_episodes.first_seen_at,
        build.as_of as last_seen_at,
        cast(null as timestamp) as resolved_at,
        cast(null as varchar) as resolved_by,
        cast(null as varchar) as resolved_by_sync_run_id,
        open_episodes.builds_seen
        + case when build.as_of > open_episodes.last_seen_at then 1 else 0 end as builds_seen,
        findings.mrr_at_stake,
        build.sync_watermark_at,
        true as is_open
    from open_episodes
    inner join findings
        on open_episodes.finding_id = findings.finding_id
    cross join build
),

new_episodes as (
    select
        cast(null as varchar) as finding_episode_id,
        findings.finding_id,
        coalesce(last_episodes.last_episode, 0) + 1 as episode,
        findings.kind,
        findings.stripe_customer_id,
        findings.hubspot_company_id,
        findings.property,
        build.as_of as first_seen_at,
        build.as_of as last_seen_at,
        cast(null as timestamp) as resolved_at,
        cast(null as varchar) as resolved_by,
        cast(null as varchar) as resolved_by_sync_run_id,
        1 as builds_seen,
        findings.mrr_at_stake,
        build.sync_watermark_at,
        true as is_open
    from findings
    left join open_episodes
        on findings.finding_id = open_episodes.finding_id
    left join last_episodes
        on findings.finding_id = last_episodes.finding_id
    cross join build
    where open_episodes.finding_id is null
),

gone as (
    select
        open_episodes.finding_episode_id,
        open_episodes.finding_id,
        open_episodes.episode,
        open_episodes.kind,
        open_episodes.stripe_customer_id,
        open_episodes.hubspot_company_id,
        open_episodes.property,
        open_episodes.first_seen_at,
        open_episodes.last_seen_at,
        open_episodes.builds_seen,
        open_episodes.mrr_at_stake,
        open_episodes.sync_watermark_at,
        build.as_of as resolved_at,
        build.read_finished_unix
    from open_episodes
    left join findings
        on open_episodes.finding_id = findings.finding_id
    cross join build
    where findings.finding_id is null
),

-- verified writes of a gone finding's company and property inside its window, newest first
resolving_writes as (
    select
        gone.finding_episode_id,
        sync_writes.run_id,
        row_number() over (
            partition by gone.finding_episode_id
            order by sync_writes.written_at desc, sync_writes.run_id desc, sync_writes.change_id desc
        ) as write_rank
    from gone
    inner join sync_writes
        on
            gone.hubspot_company_id = sync_writes.hubspot_company_id
            and gone.property = sync_writes.property
    where
        (gone.sync_watermark_at is null or sync_writes.written_at > gone.sync_watermark_at)
        and (gone.read_finished_unix is null or sync_writes.written_unix <= gone.read_finished_unix)
),

resolved as (
    select
        gone.finding_episode_id,
        gone.finding_id,
        gone.episode,
        gone.kind,
        gone.stripe_customer_id,
        gone.hubspot_company_id,
        gone.property,
        gone.first_seen_at,
        gone.last_seen_at,
        gone.resolved_at,
        case when resolving_writes.run_id is null then 'hand' else 'sync' end as resolved_by,
        resolving_writes.run_id as resolved_by_sync_run_id,
        gone.builds_seen,
        gone.mrr_at_stake,
        gone.sync_watermark_at,
        false as is_open
    from gone
    left join resolving_writes
        on
            gone.finding_episode_id = resolving_writes.finding_episode_id
            and resolving_writes.write_rank = 1
),

changed as (
    {%- set episode_columns = [
        'finding_episode_id', 'finding_id', 'episode', 'kind', 'stripe_customer_id',
        'hubspot_company_id', 'property', 'first_seen_at', 'last_seen_at', 'resolved_at',
        'resolved_by', 'resolved_by_sync_run_id', 'builds_seen', 'mrr_at_stake',
        'sync_watermark_at', 'is_open',
    ] %}
    {%- for part in ['seen_again', 'new_episodes', 'resolved'] %}
        select
            {{ episode_columns | join(',\n            ') }}
        from {{ part }}
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)

select
    cast(coalesce(
        changed.finding_episode_id,
        {{ dbt.hash("changed.finding_id || '|' || cast(changed.episode as varchar)") }}
    ) as varchar) as finding_episode_id,
    cast(changed.finding_id as varchar) as finding_id,
    cast(changed.episode as integer) as episode,
    cast(changed.kind as varchar) as kind,
    cast(changed.stripe_customer_id as varchar) as stripe_customer_id,
    cast(changed.hubspot_company_id as varchar) as hubspot_company_id,
    cast(changed.property as varchar) as property,
    cast(changed.first_seen_at as timestamp) as first_seen_at,
    cast(changed.last_seen_at as timestamp) as last_seen_at,
    cast(changed.resolved_at as timestamp) as resolved_at,
    cast(changed.resolved_by as varchar) as resolved_by,
    cast(changed.resolved_by_sync_run_id as varchar) as resolved_by_sync_run_id,
    cast(changed.builds_seen as integer) as builds_seen,
    {{ recon.money_div(
        recon.to_unix('coalesce(changed.resolved_at, changed.last_seen_at)')
        ~ ' - ' ~ recon.to_unix('changed.first_seen_at'),
        '86400'
    ) }} as days_open,
    {{ recon.to_money('changed.mrr_at_stake') }} as mrr_at_stake,
    cast(changed.sync_watermark_at as timestamp) as sync_watermark_at,
    cast(changed.is_open as boolean) as is_open
from changed
