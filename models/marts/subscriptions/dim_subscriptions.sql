-- One row per Stripe subscription: its current state (the version in effect at `as_of`),
-- plan, interval, currency, discounts and current MRR.

{%- set reporting_currency = recon.reporting_currency() %}
{#- the state of a version, read for the current one and for the first -#}
{%- set version_state = [
    'customer_id', 'status', 'currency', 'is_collection_paused', 'pause_collection_behavior',
    'start_date_unix', 'trial_end_unix', 'ended_at_unix', 'valid_from_unix',
] %}

with

subscriptions as (
    select
        subscription_id,
        version_id,
        version_source,
        customer_id,
        status,
        currency,
        is_collection_paused,
        start_date_unix,
        trial_end_unix,
        ended_at_unix,
        valid_from_unix,
        n_versions,
        has_tied_events,
        is_counted,
        gross_mrr,
        mrr,
        ignored_discount_ids
    from {{ ref('int_subscriptions_at_as_of') }}
),

versions as (
    select
        subscription_id,
        version_id,
        version_number,
        {{ version_state | join(',\n        ') }}
    from {{ ref('int_subscription_versions_unioned') }}
),

products as (
    select
        product_id,
        product_name
    from {{ ref('stg_stripe__products') }}
),

discounts as (
    select
        discount_id,
        coupon_id
    from {{ ref('int_discounts_resolved') }}
),

fx_rates as (
    select
        currency,
        rate_to_reporting
    from {{ ref('fx_rates') }}
),

reporting_rate as (
    select rate_to_reporting
    from fx_rates
    where upper(currency) = '{{ reporting_currency }}'
),

first_versions as (
    -- a subscription that starts after as_of shows its first known state
    select
        subscription_id,
        version_id,
        {{ version_state | join(',\n        ') }}
    from (
        select
            versions.subscription_id,
            versions.version_id,
            {{ 'versions.' ~ version_state | join(',\n            versions.') }},
            row_number() over (partition by versions.subscription_id order by versions.version_number) as version_rank
        from versions
    ) as ranked_versions
    where version_rank = 1
),

-- the version each subscription shows (in effect at as_of, else its first): only these
-- versions' items and discounts are summarised
current_versions as (
    select coalesce(subscriptions.version_id, first_versions.version_id) as version_id
    from first_versions
    left join subscriptions
        on first_versions.subscription_id = subscriptions.subscription_id
),

items as (
    select
        version_id,
        item_position,
        price_id,
        product_id,
        recurring_interval,
        interval_count,
        is_counted
    from {{ ref('int_subscription_items_priced') }}
    where version_id in (select current_versions.version_id from current_versions)
),

discounts_attached as (
    select
        version_id,
        discount_id,
        discount_level,
        discount_position,
        subscription_item_id
    from {{ ref('int_subscription_discounts_attached') }}
    where version_id in (select current_versions.version_id from current_versions)
),

plan_items as (
    select
        version_id,
        price_id,
        product_id,
        recurring_interval,
        interval_count
    from (
        select
            items.version_id,
            items.price_id,
            items.product_id,
            items.recurring_interval,
            items.interval_count,
            row_number() over (
                partition by items.version_id
                order by case when items.is_counted then 0 else 1 end, items.item_position
            ) as plan_rank
        from items
    ) as ranked_items
    where plan_rank = 1
),

item_summaries as (
    select
        version_id,
        count(*) as n_items,
        {{ recon.ordered_agg('price_id', 'item_position') }} as price_ids
    from items
    group by version_id
),

discount_summaries as (
    select
        discounts_attached.version_id,
        {{ recon.ordered_agg(
            'discounts_attached.discount_id',
            'discounts_attached.discount_level, discounts_attached.discount_position, '
            'discounts_attached.subscription_item_id, discounts_attached.discount_id'
        ) }} as discount_ids,
        {{ recon.ordered_agg(
            "coalesce(discounts.coupon_id, '?')",
            'discounts_attached.discount_level, discounts_attached.discount_position, '
            'discounts_attached.subscription_item_id, discounts_attached.discount_id'
        ) }} as coupon_ids
    from discounts_attached
    left join discounts
        on discounts_attached.discount_id = discounts.discount_id
    group by discounts_attached.version_id
),

current_state as (
    select
        coalesce(subscriptions.subscription_id, first_versions.subscription_id) as subscription_id,
        coalesce(subscriptions.version_id, first_versions.version_id) as version_id,
        coalesce(subscriptions.customer_id, first_versions.customer_id) as customer_id,
        coalesce(subscriptions.status, first_versions.status) as status,
        coalesce(subscriptions.currency, first_versions.currency) as currency,
        coalesce(subscriptions.is_collection_paused, first_versions.is_collection_paused) as is_collection_paused,
        coalesce(subscriptions.start_date_unix, first_versions.start_date_unix) as start_date_unix,
        coalesce(subscriptions.trial_end_unix, first_versions.trial_end_unix) as trial_end_unix,
        coalesce(subscriptions.ended_at_unix, first_versions.ended_at_unix) as ended_at_unix,
        coalesce(subscriptions.valid_from_unix, first_versions.valid_from_unix) as current_since_unix,
        subscriptions.version_source,
        subscriptions.n_versions,
        coalesce(subscriptions.has_tied_events, false) as has_tied_events,
        coalesce(subscriptions.is_counted, false) as is_counted,
        coalesce(subscriptions.gross_mrr, 0) as gross_mrr,
        coalesce(subscriptions.mrr, 0) as mrr,
        subscriptions.ignored_discount_ids
    from first_versions
    left join subscriptions
        on first_versions.subscription_id = subscriptions.subscription_id
)

select
    cast(current_state.subscription_id as varchar) as subscription_id,
    cast(current_state.customer_id as varchar) as customer_id,
    cast(current_state.status as varchar) as status,
    cast(current_state.is_collection_paused as boolean) as is_collection_paused,
    cast(current_state.currency as varchar) as currency,
    cast(plan_items.price_id as varchar) as plan_price_id,
    cast(plan_items.product_id as varchar) as plan_product_id,
    cast(products.product_name as varchar) as plan_product_name,
    cast(plan_items.recurring_interval as varchar) as plan_interval,
    cast(plan_items.interval_count as integer) as plan_interval_count,
    cast(coalesce(item_summaries.n_items, 0) as integer) as n_items,
    cast(item_summaries.price_ids as varchar) as price_ids,
    cast(discount_summaries.discount_ids as varchar) as discount_ids,
    cast(discount_summaries.coupon_ids as varchar) as coupon_ids,
    cast(current_state.ignored_discount_ids as varchar) as ignored_discount_ids,
    cast(current_state.is_counted as boolean) as is_counted,
    {{ recon.to_money('current_state.gross_mrr') }} as gross_mrr,
    {{ recon.to_money('current_state.mrr') }} as mrr,
    {{ recon.money_div('current_state.mrr * fx_rates.rate_to_reporting', 'reporting_rate.rate_to_reporting') }}
        as mrr_reporting,
    {{ recon.money_div('12 * current_state.mrr * fx_rates.rate_to_reporting', 'reporting_rate.rate_to_reporting') }}
        as arr_reporting,
    cast({{ recon.from_unix('current_state.start_date_unix') }} as timestamp) as started_at,
    cast({{ recon.from_unix('current_state.trial_end_unix') }} as timestamp) as trial_ends_at,
    cast({{ recon.from_unix('current_state.ended_at_unix') }} as timestamp) as ended_at,
    cast({{ recon.from_unix('current_state.current_since_unix') }} as timestamp) as current_since,
    cast(current_state.version_source as varchar) as version_source,
    cast(coalesce(current_state.n_versions, 0) as integer) as n_versions,
    cast(current_state.has_tied_events as boolean) as has_tied_events
from current_state
left join plan_items
    on current_state.version_id = plan_items.version_id
left join item_summaries
    on current_state.version_id = item_summaries.version_id
left join discount_summaries
    on current_state.version_id = discount_summaries.version_id
left join products
    on plan_items.product_id = products.product_id
left join fx_rates
    on current_state.currency = upper(fx_rates.currency)
cross join reporting_rate
