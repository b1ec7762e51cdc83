{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='subscription_id',
        on_schema_change='append_new_columns',
    )
}}

-- Every version of every subscription, each valid from `valid_from_unix` until the next
-- version's (mrr.md §6):
-- * `event`: the data.object of each subscription event, in the order of
--   int_subscription_events_ordered;
-- * `before_first_event`: when a subscription's earliest event is not `.created`, the state
--   just before it: its data.object with previous_attributes laid over it, from start_date;
-- * `life_story`: a subscription with no event at all is its listed object throughout.
-- The last two are read as a life story (trialing until trial_end, then active until
-- ended_at, then the final status; never active when the final status is incomplete or
-- incomplete_expired; without ended_at the final status holds from the end of the trial),
-- the first one clipped at the earliest event.
-- Incremental: a build rebuilds the subscriptions with newly landed events, and the life
-- stories of the subscriptions without events whose listed object changed: landed since the
-- newest life story the table holds (`listed_fetched_at`: an ingest lands only the changed
-- objects, but a reconcile lands every one again) and with an md5 other than the one the
-- rows carry. With 30 days of events most subscriptions have none; the others keep their
-- rows.

{#- the columns a life-story segment carries from its state, and those of every version -#}
{%- set life_story_carried = [
    'clip_unix', 'api_version', 'customer_id', 'currency', 'start_date_unix', 'trial_end_unix',
    'ended_at_unix', 'pause_collection_behavior', 'items_json', 'discounts_json', 'discount_json',
    'events_fetched_at', 'listed_state_md5', 'listed_fetched_at',
] -%}
{%- set version_columns = [
    'event_id', 'event_type', 'version_order', 'is_order_tied', 'valid_from_unix', 'api_version',
    'customer_id', 'status', 'currency', 'start_date_unix', 'trial_end_unix', 'ended_at_unix',
    'pause_collection_behavior', 'items_json', 'discounts_json', 'discount_json',
    'events_fetched_at', 'listed_state_md5', 'listed_fetched_at',
] %}

with

-- The events are read from the table in each place, not from an import CTE: a CTE read more
-- than once is materialised whole (every event's JSON). Each event's state is read from its
-- JSON once here (recon.subscription_state_documents), and the previous_attributes of a first
-- event that is not `.created` (the state before it, below; the others are not read).
ordered_events as (
    select
        {{ recon.subscription_state_documents(
            'events.data_object_json',
            "case when events.event_sequence = 1 and events.event_type <> 'customer.subscription.created'"
            ~ ' then events.previous_attributes_json end'
        ) }}
        events.subscription_id,
        events.event_id,
        events.event_type,
        events.event_sequence,
        events.is_order_tied,
        events.created_unix,
        events.api_version,
        max(events.fetched_at) over (
            partition by events.subscription_id
        ) as events_fetched_at
    from {{ ref('int_subscription_events_ordered') }} as events
    {% if recon.is_incremental_with(['events_fetched_at']) %}
        where events.subscription_id in (
            select newly_landed.subscription_id
            from {{ ref('int_subscription_events_ordered') }} as newly_landed
            where newly_landed.fetched_at >= (
                select coalesce(max(known.events_fetched_at), {{ recon.epoch_timestamp() }})
                from {{ this }} as known
            )
        )
    {% endif %}
),

-- the listed subscriptions without events (a life story): the md5 of the listed object is
-- computed only for these (most, not all, subscriptions), after the anti-join
listed_subscriptions as (
    select
        without_events.*,
        md5(cast(without_events.subscription_json as {{ dbt.type_string() }})) as listed_state_md5
    from (
        select
            stg_subscriptions.subscription_id,
            stg_subscriptions.api_version,
            stg_subscriptions.subscription_json,
            stg_subscriptions.fetched_at as listed_fetched_at
        from {{ ref('stg_stripe__subscriptions') }} as stg_subscriptions
        where
            not exists (
                select 1
                from {{ ref('int_subscription_events_ordered') }} as subscription_events
                where subscription_events.subscription_id = stg_subscriptions.subscription_id
            )
        {% if recon.is_incremental_with(['events_fetched_at', 'listed_state_md5', 'listed_fetched_at']) %}
            and stg_subscriptions.fetched_at >= (
                select coalesce(max(known.listed_fetched_at), {{ recon.epoch_timestamp() }})
                from {{ this }} as known
            )
        {% endif %}
    ) as without_events
),

event_versions as (
    select
        subscription_id,
        'event' as version_source,
        event_id,
        event_type,
        event_sequence as version_order,
        is_order_tied,
        created_unix as valid_from_unix,
        api_version,
        {{ recon.subscription_state_columns() }}
        events_fetched_at,
        cast(null as {{ dbt.type_string() }}) as listed_state_md5,
        cast(null as timestamp with time zone) as listed_fetched_at
    from ordered_events
),

states_before_first_event as (
    select
        subscription_id,
        'before_first_event' as version_source,
        event_id,
        event_type,
        created_unix as clip_unix,
        api_version,
        {{ recon.subscription_state_columns(overlay=true) }}
        events_fetched_at,
        cast(null as {{ dbt.type_string() }}) as listed_state_md5,
        cast(null as timestamp with time zone) as listed_fetched_at
    from ordered_events
    where
        event_sequence = 1
        and event_type <> 'customer.subscription.created'
),

subscriptions_without_events as (
    select
        listed_documents.subscription_id,
        'life_story' as version_source,
        cast(null as varchar) as event_id,
        cast(null as varchar) as event_type,
        cast(null as bigint) as clip_unix,
        listed_documents.api_version,
        {{ recon.subscription_state_columns() }}
        cast(null as timestamp with time zone) as events_fetched_at,
        listed_documents.listed_state_md5,
        listed_documents.listed_fetched_at
    from (
        select
            {{ recon.subscription_state_documents('listed_subscriptions.subscription_json') }}
            listed_subscriptions.subscription_id,
            listed_subscriptions.api_version,
            listed_subscriptions.listed_state_md5,
            listed_subscriptions.listed_fetched_at
        from listed_subscriptions
        {% if recon.is_incremental_with(['events_fetched_at', 'listed_state_md5']) %}
            where not exists (
                select 1
                from {{ this }} as known
                where
                    known.subscription_id = listed_subscriptions.subscription_id
                    and known.listed_state_md5 = listed_subscriptions.listed_state_md5
            )
        {% endif %}
    ) as listed_documents
),

life_stories as (
    select * from states_before_first_event
    union all
    select * from subscriptions_without_events
),

life_story_bounds as (
    select
        life_stories.*,
        life_stories.status in ('incomplete', 'incomplete_expired') as was_never_active,
        coalesce(life_stories.trial_end_unix > life_stories.start_date_unix, false) as had_trial,
        case
            when coalesce(life_stories.trial_end_unix > life_stories.start_date_unix, false)
                then life_stories.trial_end_unix
            else life_stories.start_date_unix
        end as trial_over_unix
    from life_stories
),

life_story_segments as (
    -- the trial
    select
        subscription_id,
        version_source,
        event_id,
        event_type,
        1 as version_order,
        'trialing' as segment_status,
        start_date_unix as segment_from_unix,
        case
            when ended_at_unix < trial_end_unix then ended_at_unix
            else trial_end_unix
        end as segment_to_unix,
        {{ life_story_carried | join(',\n        ') }}
    from life_story_bounds
    where had_trial and not was_never_active
    union all
    -- after the trial: active until ended_at, or the final status when it never ended
    select
        subscription_id,
        version_source,
        event_id,
        event_type,
        2 as version_order,
        case when ended_at_unix is not null then 'active' else status end as segment_status,
        trial_over_unix as segment_from_unix,
        ended_at_unix as segment_to_unix,
        {{ life_story_carried | join(',\n        ') }}
    from life_story_bounds
    where not was_never_active
    union all
    -- ended: the final status
    select
        subscription_id,
        version_source,
        event_id,
        event_type,
        3 as version_order,
        status as segment_status,
        ended_at_unix as segment_from_unix,
        cast(null as bigint) as segment_to_unix,
        {{ life_story_carried | join(',\n        ') }}
    from life_story_bounds
    where ended_at_unix is not null and not was_never_active
    union all
    -- never active
    select
        subscription_id,
        version_source,
        event_id,
        event_type,
        1 as version_order,
        status as segment_status,
        start_date_unix as segment_from_unix,
        cast(null as bigint) as segment_to_unix,
        {{ life_story_carried | join(',\n        ') }}
    from life_story_bounds
    where was_never_active
),

life_story_versions as (
    select
        subscription_id,
        version_source,
        event_id,
        event_type,
        version_order,
        false as is_order_tied,
        segment_from_unix as valid_from_unix,
        api_version,
        customer_id,
        segment_status as status,
        currency,
        start_date_unix,
        trial_end_unix,
        ended_at_unix,
        pause_collection_behavior,
        items_json,
        discounts_json,
        discount_json,
        events_fetched_at,
        listed_state_md5,
        listed_fetched_at
    from life_story_segments
    where
        segment_from_unix is not null
        and (segment_to_unix is null or segment_from_unix < segment_to_unix)
        and (clip_unix is null or segment_from_unix < clip_unix)
),

all_versions as (
    select
        subscription_id,
        version_source,
        0 as source_rank,
        {{ version_columns | join(',\n        ') }}
    from life_story_versions
    union all
    select
        subscription_id,
        version_source,
        1 as source_rank,
        {{ version_columns | join(',\n        ') }}
    from event_versions
),

sequenced as (
    select
        all_versions.*,
        row_number() over (
            partition by all_versions.subscription_id
            order by all_versions.source_rank, all_versions.valid_from_unix, all_versions.version_order
        ) as version_number
    from all_versions
)

select
    {{ dbt.hash(
        "subscription_id || '|' || version_source || '|' || coalesce(event_id, '')"
        ~ " || '|' || cast(version_order as varchar)"
    ) }} as version_id,
    subscription_id,
    version_number,
    version_source,
    event_id,
    event_type,
    is_order_tied,
    valid_from_unix,
    lead(valid_from_unix) over (partition by subscription_id order by version_number) as valid_to_unix,
    {{ recon.from_unix('valid_from_unix') }} as valid_from,
    {{ recon.from_unix('lead(valid_from_unix) over (partition by subscription_id order by version_number)') }}
        as valid_to,
    customer_id,
    status,
    currency,
    start_date_unix,
    trial_end_unix,
    ended_at_unix,
    pause_collection_behavior,
    pause_collection_behavior is not null as is_collection_paused,
    items_json,
    discounts_json,
    discount_json,
    api_version,
    events_fetched_at,
    listed_state_md5,
    listed_fetched_at,
    {{ recon.build_started_at() }} as built_at
from sequenced
