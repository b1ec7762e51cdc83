{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='source_key',
        on_schema_change='append_new_columns',
        post_hook=["{{ recon.delete_key_markers(['observed_in']) }}"],
    )
}}

-- Every sighting of a Stripe discount object, wherever it shows: events
-- (int_stripe_event_discounts), subscriptions listed with their discounts expanded
-- (subscription- and item-level), the older single `discount` of listed subscriptions, and
-- listed customers' `discount`. Subscription events carry discounts as ids; these sightings
-- give each id its coupon, start and end (mrr.md §6).
-- Incremental: a build reads only the events, subscriptions and customers landed since the
-- newest sighting it holds (`landed_at`), and replaces the sightings of each (`source_key`:
-- the event, or the listed subscription or customer). A subscription or customer landed
-- again without a discount object still replaces its old sightings: it yields a key marker
-- (every sighting column null), which the post-hook deletes in the same transaction.

{%- set incremental = recon.is_incremental_with(['source_key', 'landed_at']) %}
{%- set sighting_columns = [
    'discount_id', 'coupon_id', 'coupon_json', 'customer_id', 'subscription_id',
    'subscription_item_id', 'start_unix', 'end_unix', 'observed_unix', 'observed_in',
    'observed_event_id', 'discount_json',
] %}

with

event_discounts as (
    select
        event_discounts.*,
        'event:' || event_discounts.observed_event_id as source_key,
        event_discounts.fetched_at as landed_at
    from {{ ref('int_stripe_event_discounts') }} as event_discounts
    {{ recon.landed_since_built('event_discounts.fetched_at', 'landed_at') }}
),

customers as (
    select
        customers.*,
        'customer:' || customers.customer_id as source_key
    from {{ ref('stg_stripe__customers') }} as customers
    {{ recon.landed_since_built('customers.fetched_at', 'landed_at') }}
),

-- The listed subscriptions that may carry a discount object are read once, in a CTE (its
-- three readers materialise it: a few thousand rows, not every subscription's JSON): the
-- staging view reads a subscription's three documents with one parse of its JSON, where a
-- reader per document parsed each subscription three times. Most subscriptions carry no
-- discount object: only these are kept (a cheap test of the text; the unnesting checks each
-- element exactly), and each part applies its own test again.
listed_candidates as (
    select
        'subscription:' || listed.subscription_id as source_key,
        listed.fetched_at,
        listed.discount_json,
        listed.discounts_json,
        listed.items_json
    from {{ ref('stg_stripe__subscriptions') }} as listed
    where
        (
            {{ recon.json_type('listed.discount_json') }} = 'object'
            or {{ recon.json_may_hold_object_in_array('listed.discounts_json') }}
            or {{ recon.json_may_hold_object_in_array('listed.items_json', 'discounts') }}
        )
    {{ recon.landed_since_built('listed.fetched_at', 'landed_at', keyword='and') }}
),

listed_documents as (
    select
        subscriptions.discount_json,
        {{ recon.to_unix('subscriptions.fetched_at') }} as observed_unix,
        'subscriptions' as observed_in,
        subscriptions.source_key,
        subscriptions.fetched_at as landed_at
    from listed_candidates as subscriptions
    where {{ recon.json_type('subscriptions.discount_json') }} = 'object'

    union all
    select
        subscription_discount.value_json as discount_json,
        {{ recon.to_unix('subscriptions.fetched_at') }} as observed_unix,
        'subscriptions' as observed_in,
        subscriptions.source_key,
        subscriptions.fetched_at as landed_at
    from (
        select
            listed.source_key,
            listed.fetched_at,
            listed.discounts_json
        from listed_candidates as listed
        where {{ recon.json_may_hold_object_in_array('listed.discounts_json') }}
    ) as subscriptions
    {{ recon.json_array_rows('subscriptions.discounts_json', 'subscription_discount') }}
    where {{ recon.json_type('subscription_discount.value_json') }} = 'object'

    union all
    select
        item_discount.value_json as discount_json,
        {{ recon.to_unix('subscriptions.fetched_at') }} as observed_unix,
        'subscription_items' as observed_in,
        subscriptions.source_key,
        subscriptions.fetched_at as landed_at
    from (
        select
            listed.source_key,
            listed.fetched_at,
            listed.items_json
        from listed_candidates as listed
        where {{ recon.json_may_hold_object_in_array('listed.items_json', 'discounts') }}
    ) as subscriptions
    {{ recon.json_array_rows('subscriptions.items_json', 'subscription_item') }}
    {{ recon.json_array_rows(recon.json_get('subscription_item.value_json', 'discounts'), 'item_discount') }}
    where {{ recon.json_type('item_discount.value_json') }} = 'object'

    union all
    select
        customers.discount_json,
        {{ recon.to_unix('customers.fetched_at') }} as observed_unix,
        'customers' as observed_in,
        customers.source_key,
        customers.fetched_at as landed_at
    from customers
    where {{ recon.json_type('customers.discount_json') }} = 'object'
),

listed_sightings as (
    select
        {{ recon.discount_columns('discount_json') }}
        observed_unix,
        observed_in,
        cast(null as varchar) as observed_event_id,
        discount_json,
        source_key,
        landed_at
    from listed_documents
)
,

-- the listed subscriptions and customers read: each keeps its sightings, or (incremental)
-- yields one key marker
landed_sources as (
    {% if incremental %}
        select
            'subscription:' || landed.subscription_id as source_key,
            landed.fetched_at as landed_at
        from {{ ref('stg_stripe__subscriptions') }} as landed
        {{ recon.landed_since_built('landed.fetched_at', 'landed_at') }}
        union all
        select
            customers.source_key,
            customers.fetched_at as landed_at
        from customers
    {% else %}
        select
            listed_sightings.source_key,
            max(listed_sightings.landed_at) as landed_at
        from listed_sightings
        group by listed_sightings.source_key
    {% endif %}
)

select
    {{ sighting_columns | join(',\n    ') }},
    source_key,
    landed_at
from event_discounts
union all
select
    {% for column in sighting_columns -%}
        listed_sightings.{{ column }},
    {% endfor -%}
    landed_sources.source_key,
    landed_sources.landed_at
from landed_sources
left join listed_sightings
    on landed_sources.source_key = listed_sightings.source_key
