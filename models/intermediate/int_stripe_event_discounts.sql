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

with

events as (
    select deduped_events.* from {{ ref('int_stripe_events_deduped') }} as deduped_events
    {% if is_incremental() %}
        where
            deduped_events.fetched_at >= (
                select coalesce(max(known.fetched_at), {{ recon.epoch_timestamp() }})
                from {{ this }} as known
            )
            and not exists (
                select 1 from {{ this }} as known
                where known.observed_event_id = deduped_events.event_id
            )
    {% endif %}
),

discount_documents as (
    select
        data_object_json as discount_json,
        created_unix as observed_unix,
        event_type as observed_in,
        event_id as observed_event_id,
        fetched_at
    from events
    where event_type like 'customer.discount.%'

    union all
    select
        {{ recon.json_get('data_object_json', 'discount') }} as discount_json,
        created_unix as observed_unix,
        event_type as observed_in,
        event_id as observed_event_id,
        fetched_at
    from events
    where
        data_object_type in ('subscription', 'customer')
        and {{ recon.json_type('data_object_json', 'discount') }} = 'object'

    union all
    select
        subscription_discount.value_json as discount_json,
        events.created_unix as observed_unix,
        events.event_type as observed_in,
        events.event_id as observed_event_id,
        events.fetched_at
    from events
    {{ recon.json_array_rows(recon.json_get('events.data_object_json', 'discounts'), 'subscription_discount') }}
    where
        events.data_object_type = 'subscription'
        and {{ recon.json_type('subscription_discount.value_json') }} = 'object'
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
