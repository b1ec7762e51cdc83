{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
    )
}}

-- Every discount object carried by a Stripe event (incremental: only the events deduplicated
-- since the last build are read): `customer.discount.*` events carry the whole discount;
-- subscriptions and customers of older API versions carry a single `discount`; a
-- subscription's `discounts` may hold objects. Read in both shapes (discount_columns).

{#- Each part reads the events it needs straight from the table, in a subquery, not from a
    shared CTE: a CTE read three times is materialised whole (every event's JSON), and DuckDB
    streams the unnesting (recon.json_array_rows) only over a table or a subquery (DECISIONLOG
    "Models: memory"). -#}
{%- set incremental = is_incremental() -%}
{%- set not_read_yet -%}
    deduped_events.fetched_at >= (
        select coalesce(max(known.fetched_at), {{ recon.epoch_timestamp() }})
        from {{ this }} as known
    )
    and not exists (
        select 1 from {{ this }} as known
        where known.observed_event_id = deduped_events.event_id
    )
{%- endset %}

with

discount_documents as (
    select
        events.data_object_json as discount_json,
        events.created_unix as observed_unix,
        events.event_type as observed_in,
        events.event_id as observed_event_id,
        events.fetched_at
    from (
        select
            deduped_events.data_object_json,
            deduped_events.created_unix,
            deduped_events.event_type,
            deduped_events.event_id,
            deduped_events.fetched_at
        from {{ ref('int_stripe_events_deduped') }} as deduped_events
        where
            deduped_events.event_type like 'customer.discount.%'
        {% if incremental %}
            and {{ not_read_yet }}
        {% endif %}
    ) as events

    union all
    select
        events.discount_json,
        events.created_unix as observed_unix,
        events.event_type as observed_in,
        events.event_id as observed_event_id,
        events.fetched_at
    from (
        select
            {{ recon.json_get('deduped_events.data_object_json', 'discount') }} as discount_json,
            deduped_events.created_unix,
            deduped_events.event_type,
            deduped_events.event_id,
            deduped_events.fetched_at
        from {{ ref('int_stripe_events_deduped') }} as deduped_events
        where
            deduped_events.data_object_type in ('subscription', 'customer')
        {% if incremental %}
            and {{ not_read_yet }}
        {% endif %}
    ) as events
    where {{ recon.json_type('events.discount_json') }} = 'object'

    union all
    select
        subscription_discount.value_json as discount_json,
        events.created_unix as observed_unix,
        events.event_type as observed_in,
        events.event_id as observed_event_id,
        events.fetched_at
    from (
        select
            {{ recon.json_get('deduped_events.data_object_json', 'discounts') }} as discounts_json,
            deduped_events.created_unix,
            deduped_events.event_type,
            deduped_events.event_id,
            deduped_events.fetched_at
        from {{ ref('int_stripe_events_deduped') }} as deduped_events
        where
            deduped_events.data_object_type = 'subscription'
        {% if incremental %}
            and {{ not_read_yet }}
        {% endif %}
    ) as events
    {{ recon.json_array_rows('events.discounts_json', 'subscription_discount') }}
    where {{ recon.json_type('subscription_discount.value_json') }} = 'object'
)

select
    {{ recon.discount_columns('discount_json') }}
    observed_unix,
    observed_in,
    observed_event_id,
    discount_json,
    fetched_at
from discount_documents
where {{ recon.json_type('discount_json') }} = 'object'
