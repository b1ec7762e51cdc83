-- Every sighting of a Stripe discount object, wherever it shows: events
-- (int_stripe_event_discounts), subscriptions listed with their discounts expanded
-- (subscription- and item-level), the older single `discount` of listed subscriptions, and
-- listed customers' `discount`. Subscription events carry discounts as ids; these sightings
-- give each id its coupon, start and end (mrr.md §6).

{%- set sighting_columns = [
    'discount_id', 'coupon_id', 'coupon_json', 'customer_id', 'subscription_id',
    'subscription_item_id', 'start_unix', 'end_unix', 'observed_unix', 'observed_in',
    'observed_event_id', 'discount_json',
] %}

with

event_discounts as (
    select * from {{ ref('int_stripe_event_discounts') }}
),

customers as (
    select * from {{ ref('stg_stripe__customers') }}
),

-- The listed subscriptions that may carry a discount object are read once, in a CTE (its
-- three readers materialise it: a few thousand rows, not every subscription's JSON): the
-- staging view reads a subscription's three documents with one parse of its JSON, where a
-- reader per document parsed each subscription three times. Most subscriptions carry no
-- discount object: only these are kept (a cheap test of the text; the unnesting checks each
-- element exactly), and each part applies its own test again.
listed_candidates as (
    select
        listed.fetched_at,
        listed.discount_json,
        listed.discounts_json,
        listed.items_json
    from {{ ref('stg_stripe__subscriptions') }} as listed
    where
        {{ recon.json_type('listed.discount_json') }} = 'object'
        or {{ recon.json_may_hold_object_in_array('listed.discounts_json') }}
        or {{ recon.json_may_hold_object_in_array('listed.items_json', 'discounts') }}
),

listed_documents as (
    select
        subscriptions.discount_json,
        {{ recon.to_unix('subscriptions.fetched_at') }} as observed_unix,
        'subscriptions' as observed_in
    from listed_candidates as subscriptions
    where {{ recon.json_type('subscriptions.discount_json') }} = 'object'

    union all
    select
        subscription_discount.value_json as discount_json,
        {{ recon.to_unix('subscriptions.fetched_at') }} as observed_unix,
        'subscriptions' as observed_in
    from (
        select
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
        'subscription_items' as observed_in
    from (
        select
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
        'customers' as observed_in
    from customers
    where {{ recon.json_type('customers.discount_json') }} = 'object'
),

listed_sightings as (
    select
        {{ recon.discount_columns('discount_json') }}
        observed_unix,
        observed_in,
        cast(null as varchar) as observed_event_id,
        discount_json
    from listed_documents
)

select
    {{ sighting_columns | join(',\n    ') }}
from event_discounts
union all
select
    {{ sighting_columns | join(',\n    ') }}
from listed_sightings
