{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='subscription_id',
        on_schema_change='append_new_columns',
    )
}}

-- The events that carry a subscription's state, in the order they happened (mrr.md §6).
-- Events of one subscription within the same second are ordered `.created` first,
-- `.deleted` last, and between them by chaining previous_attributes: an event whose
-- previous_attributes are contained in another's resulting object comes after it. A tie
-- left after that is ordered by event id and flagged (`is_order_tied`).
-- Incremental: only the subscriptions with newly landed events are re-ordered.

with recursive

events as (
    select * from {{ ref('int_stripe_events_deduped') }}
),

subscription_events as (
    select
        data_object_id as subscription_id,
        event_id,
        event_type,
        created_unix,
        case event_type
            when 'customer.subscription.created' then 0
            when 'customer.subscription.deleted' then 2
            else 1
        end as type_rank,
        data_object_json,
        previous_attributes_json,
        api_version,
        fetched_at
    from events
    where
        event_type in ({{ recon.subscription_event_types() }})
        and data_object_id is not null
    {% if recon.is_incremental_with(['fetched_at']) %}
            and data_object_id in (
                -- the table itself, not the `events` CTE: a CTE read twice is materialised
                -- whole (every event's JSON), which cost most of an incremental build of this
                -- model at L
                select newly_landed.data_object_id
                from {{ ref('int_stripe_events_deduped') }} as newly_landed
                where newly_landed.fetched_at >= (
                    select coalesce(max(known.fetched_at), {{ recon.epoch_timestamp() }})
                    from {{ this }} as known
                )
            )
        {% endif %}
),

same_second_links as (
    -- `later` comes after `earlier`: its previous_attributes match earlier's result.
    select
        later.event_id,
        earlier.event_id as after_event_id
    from subscription_events as later
    inner join subscription_events as earlier
        on
            later.subscription_id = earlier.subscription_id
            and later.created_unix = earlier.created_unix
            and later.type_rank = earlier.type_rank
            and later.event_id <> earlier.event_id
    where
        later.previous_attributes_json is not null
        and {{ recon.json_contains('earlier.data_object_json', 'later.previous_attributes_json') }}
),

chain_steps (event_id, chain_depth) as (
    select
        event_id,
        0 as chain_depth
    from subscription_events
    union all
    select
        same_second_links.event_id,
        chain_steps.chain_depth + 1 as chain_depth
    from chain_steps
    inner join same_second_links
        on chain_steps.event_id = same_second_links.after_event_id
    -- a cycle (a value changed and changed back within one second) stops here and ties
    where chain_steps.chain_depth < 8
),

chain_depths as (
    select
        event_id,
        max(chain_depth) as chain_depth
    from chain_steps
    group by event_id
),

ranked as (
    select
        subscription_events.subscription_id,
        subscription_events.event_id,
        subscription_events.event_type,
        subscription_events.created_unix,
        subscription_events.type_rank,
        chain_depths.chain_depth,
        count(*) over (
            partition by
                subscription_events.subscription_id,
                subscription_events.created_unix,
                subscription_events.type_rank,
                chain_depths.chain_depth
        ) as n_events_tied,
        subscription_events.data_object_json,
        subscription_events.previous_attributes_json,
        subscription_events.api_version,
        subscription_events.fetched_at
    from subscription_events
    inner join chain_depths
        on subscription_events.event_id = chain_depths.event_id
)

select
    subscription_id,
    event_id,
    event_type,
    created_unix,
    row_number() over (
        partition by subscription_id
        order by created_unix, type_rank, chain_depth, event_id
    ) as event_sequence,
    type_rank as same_second_type_rank,
    chain_depth as same_second_chain_depth,
    n_events_tied > 1 as is_order_tied,
    data_object_json,
    previous_attributes_json,
    api_version,
    fetched_at
from ranked
