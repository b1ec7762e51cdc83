{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['subscription_id', 'month'],
        on_schema_change='append_new_columns',
        post_hook="{{ recon.delete_key_markers(['built_at']) }}",
    )
}}

-- Each subscription's MRR at each month's snapshot instant (int_reporting_months), in the
-- subscription's currency, full precision (mrr.md §1-7):
-- * the version in effect at the instant (the latest with valid_from <= t);
-- * it counts while its status is active (or past_due, var mrr_count_past_due), its
--   collection is not paused (var mrr_count_paused_collection) and it has not ended;
-- * the monthly amounts of its licensed items (int_subscription_items_priced);
-- * discounts in effect at t (attached to the version, start <= t < end; a customer-level
--   discount when the version has no discount of its own attached), per var
--   mrr_discount_policy: item-level discounts on their item first, then subscription-level
--   ones on the items, each in array order, limited to the coupon's applies_to.products;
--   percent_off multiplies, amount_off (in the subscription's currency, normalised to a month
--   by the interval of the first licensed item) is taken off the eligible items in item
--   order, none below 0. A discount with an unknown coupon, or an amount_off in no currency of the
--   subscription, is ignored and listed in `ignored_discount_ids`.
-- Incremental: a build recomputes the subscriptions whose inputs changed since this model's
-- last build (int_subscription_mrr_inputs), and every subscription from the earlier of the
-- last build's newest month and the current month on (the current month is measured at
-- `as_of`, which moves). The rows it had in that scope and no longer computes are replaced by
-- key markers (`built_at` null) that the post-hook deletes; so are the rows of an older
-- version of this table, which had no `built_at`.
-- depends_on: {{ ref('int_subscription_mrr_inputs') }}

{%- set policy = recon.mrr_discount_policy() -%}
{%- set item_steps = recon.max_item_discount_steps() -%}
{%- set subscription_steps = recon.max_subscription_discount_steps() -%}
{%- set all_steps = item_steps + subscription_steps %}
{%- set incremental = recon.is_incremental_with(['built_at']) %}
{%- set row_columns = [
    'subscription_id', 'month', 'customer_id', 'currency', 'snapshot_unix', 'is_current_month',
    'version_id', 'status', 'is_collection_paused', 'is_counted', 'gross_mrr', 'mrr',
    'n_counted_items', 'n_discounts_applied', 'max_item_step_number',
    'max_subscription_step_number', 'ignored_discount_ids',
] %}

with

months as (
    select * from {{ ref('int_reporting_months') }}
),

versions as (
    select * from {{ ref('int_subscription_versions_unioned') }}
),

items_priced as (
    select * from {{ ref('int_subscription_items_priced') }}
),

discounts_attached as (
    select * from {{ ref('int_subscription_discounts_attached') }}
),

discounts_resolved as (
    select * from {{ ref('int_discounts_resolved') }}
),

currency_exponents as (
    select * from {{ ref('currency_exponents') }}
),

{% if incremental %}
    rebuild_scope as (
        {{ recon.rebuild_scope_from_month() }}
    ),

    changed_subscriptions as (
        {{ recon.changed_since_last_build('subscription_id') }}
    ),
{% endif %}

subscription_first_months as (
    select
        subscription_id,
        {{ recon.month_start_of_unix('min(valid_from_unix)') }} as first_month
    from versions
    group by subscription_id
),

subscription_months as (
    -- the version in effect at each month's snapshot; the tail after a final
    -- canceled / incomplete_expired version is left out (it never counts again)
    select
        versions.subscription_id,
        versions.customer_id,
        months.month,
        months.snapshot_unix,
        months.is_current_month,
        versions.version_id,
        versions.status,
        versions.currency,
        versions.pause_collection_behavior,
        versions.ended_at_unix,
        versions.status in ({{ recon.counted_statuses() }})
        {% if not recon.bool_var('mrr_count_paused_collection') %}
            and versions.pause_collection_behavior is null
        {% endif %}
        and (versions.ended_at_unix is null or months.snapshot_unix < versions.ended_at_unix)
            as is_counted
    from subscription_first_months
    inner join months
        on subscription_first_months.first_month <= months.month
    inner join versions
        on
            subscription_first_months.subscription_id = versions.subscription_id
            and months.snapshot_unix >= versions.valid_from_unix
            and (versions.valid_to_unix is null or months.snapshot_unix < versions.valid_to_unix)
    where
        not (
            versions.valid_to_unix is null
            and versions.status in ('canceled', 'incomplete_expired')
            and versions.valid_from_unix < {{ recon.date_to_unix('months.month') }}
        )
        and {{ recon.in_rebuild_scope(
            'months.month', 'versions.subscription_id', 'changed_subscriptions', 'subscription_id'
        ) if incremental else 'true' }}
),

counted_items as (
    select
        subscription_months.subscription_id,
        subscription_months.month,
        subscription_months.snapshot_unix,
        subscription_months.currency,
        items_priced.item_position,
        items_priced.subscription_item_id,
        items_priced.product_id,
        items_priced.monthly_amount
    from subscription_months
    inner join items_priced
        on subscription_months.version_id = items_priced.version_id
    where subscription_months.is_counted and items_priced.is_counted
),

first_licensed_items as (
    -- amount_off is normalised with the billing interval of this item
    select
        version_id,
        months_numerator,
        months_denominator
    from (
        select
            version_id,
            months_numerator,
            months_denominator,
            row_number() over (partition by version_id order by item_position) as licensed_rank
        from items_priced
        where is_counted
    ) as licensed_items
    where licensed_rank = 1
),

customer_level_discounts as (
    select * from discounts_resolved
    where discount_level = 'customer'
),

coupon_amounts_by_currency as (
    select
        discounts_resolved.discount_id,
        upper(currency_option.key) as currency,
        cast({{ recon.json_str('currency_option.value_json', 'amount_off') }} as bigint) as amount_off
    from discounts_resolved
    {{ recon.json_object_rows('discounts_resolved.currency_options_json', 'currency_option') }}
),

applies_to_products as (
    select
        discounts_resolved.discount_id,
        {{ recon.json_str('applies_to_product.value_json') }} as product_id
    from discounts_resolved
    {{ recon.json_array_rows('discounts_resolved.applies_to_products_json', 'applies_to_product') }}
),

own_discounts_in_effect as (
    select
        subscription_months.subscription_id,
        subscription_months.month,
        subscription_months.version_id,
        discounts_attached.discount_level,
        discounts_attached.subscription_item_id,
        discounts_attached.discount_position,
        discounts_attached.discount_id
    from subscription_months
    inner join discounts_attached
        on subscription_months.version_id = discounts_attached.version_id
    left join discounts_resolved
        on discounts_attached.discount_id = discounts_resolved.discount_id
    where
        subscription_months.is_counted
        and (
            discounts_resolved.start_unix is null
            or discounts_resolved.start_unix <= subscription_months.snapshot_unix
        )
        and (
            discounts_resolved.end_unix is null
            or subscription_months.snapshot_unix < discounts_resolved.end_unix
        )
),

customer_discounts_in_effect as (
    -- a customer-level discount applies to each subscription without a discount of its own
    select
        subscription_id,
        month,
        version_id,
        'subscription' as discount_level,
        cast(null as varchar) as subscription_item_id,
        1 as discount_position,
        discount_id
    from (
        select
            subscription_months.subscription_id,
            subscription_months.month,
            subscription_months.version_id,
            customer_level_discounts.discount_id,
            row_number() over (
                partition by subscription_months.subscription_id, subscription_months.month
                order by customer_level_discounts.start_unix desc, customer_level_discounts.discount_id asc
            ) as recency_rank
        from subscription_months
        inner join customer_level_discounts
            on subscription_months.customer_id = customer_level_discounts.customer_id
        where
            subscription_months.is_counted
            and (
                customer_level_discounts.start_unix is null
                or customer_level_discounts.start_unix <= subscription_months.snapshot_unix
            )
            and (
                customer_level_discounts.end_unix is null
                or subscription_months.snapshot_unix < customer_level_discounts.end_unix
            )
            and (
                customer_level_discounts.deleted_unix is null
                or subscription_months.snapshot_unix < customer_level_discounts.deleted_unix
            )
            and not exists (
                select 1
                from discounts_attached
                where discounts_attached.version_id = subscription_months.version_id
            )
    ) as customer_discounts
    where recency_rank = 1
),

discounts_in_effect as (
    select * from own_discounts_in_effect
    union all
    select * from customer_discounts_in_effect
),

discount_terms as (
    select
        discounts_in_effect.subscription_id,
        discounts_in_effect.month,
        discounts_in_effect.discount_level,
        discounts_in_effect.subscription_item_id,
        discounts_in_effect.discount_position,
        discounts_in_effect.discount_id,
        subscription_months.currency,
        coalesce(discounts_resolved.is_coupon_resolved, false) as is_coupon_resolved,
        discounts_resolved.duration,
        discounts_resolved.percent_off,
        case
            when coupon_amounts_by_currency.amount_off is not null then coupon_amounts_by_currency.amount_off
            when discounts_resolved.amount_off_currency = subscription_months.currency
                then discounts_resolved.amount_off
        end as amount_off_minor,
        discounts_resolved.amount_off is not null as is_amount_off,
        discounts_resolved.applies_to_products_json is not null as is_limited_to_products,
        coalesce(currency_exponents.exponent, 2) as currency_exponent,
        first_licensed_items.months_numerator,
        first_licensed_items.months_denominator
    from discounts_in_effect
    inner join subscription_months
        on
            discounts_in_effect.subscription_id = subscription_months.subscription_id
            and discounts_in_effect.month = subscription_months.month
    left join discounts_resolved
        on discounts_in_effect.discount_id = discounts_resolved.discount_id
    left join coupon_amounts_by_currency
        on
            discounts_in_effect.discount_id = coupon_amounts_by_currency.discount_id
            and subscription_months.currency = coupon_amounts_by_currency.currency
    left join currency_exponents
        on subscription_months.currency = currency_exponents.currency
    left join first_licensed_items
        on subscription_months.version_id = first_licensed_items.version_id
),

discount_steps as (
    -- the discounts that apply, numbered in the order they apply: item-level steps first
    -- (each item's own sequence, items side by side), then subscription-level ones
    select
        subscription_id,
        month,
        discount_level,
        subscription_item_id,
        discount_id,
        is_limited_to_products,
        case
            when discount_level = 'item'
                then row_number() over (
                        partition by subscription_id, month, discount_level, subscription_item_id
                        order by discount_position, discount_id
                    )
            else {{ item_steps }} + row_number() over (
                    partition by subscription_id, month, discount_level
                    order by discount_position, discount_id
                )
        end as step_number,
        case when is_amount_off then 'amount_off' else 'percent_off' end as discount_kind,
        {{ recon.money_div('100 - percent_off', '100') }} as percent_multiplier,
        case
            when is_amount_off
                then {{ recon.money_div(
                    'amount_off_minor * months_numerator',
                    'months_denominator * power(10, currency_exponent)'
                ) }}
        end as monthly_amount_off
    from discount_terms
    where
        is_coupon_resolved
        and (not is_amount_off or amount_off_minor is not null)
        and (percent_off is not null or is_amount_off)
    {% if policy == 'forever_only' %}
            and duration = 'forever'
        {% elif policy == 'none' %}
            and false
        {% endif %}
),

ignored_discounts as (
    select
        subscription_id,
        month,
        {{ recon.sorted_agg('discount_id') }} as ignored_discount_ids
    from discount_terms
    where
        not is_coupon_resolved
        or (is_amount_off and amount_off_minor is null)
        or (percent_off is null and not is_amount_off)
    group by subscription_id, month
),

step_targets as (
    -- the items each step applies to: its own item, or the subscription's items, limited to
    -- the coupon's products when it names some
    select
        counted_items.subscription_id,
        counted_items.month,
        counted_items.item_position,
        discount_steps.step_number,
        discount_steps.discount_kind,
        discount_steps.percent_multiplier,
        discount_steps.monthly_amount_off,
        case when discount_steps.discount_level = 'item' then counted_items.item_position else 0 end
            as target_group
    from discount_steps
    inner join counted_items
        on
            discount_steps.subscription_id = counted_items.subscription_id
            and discount_steps.month = counted_items.month
            and (
                discount_steps.discount_level = 'subscription'
                or discount_steps.subscription_item_id = counted_items.subscription_item_id
            )
    where
        not discount_steps.is_limited_to_products
        or exists (
            select 1
            from applies_to_products
            where
                applies_to_products.discount_id = discount_steps.discount_id
                and applies_to_products.product_id = counted_items.product_id
        )
),

discounted_months as (
    select distinct
        subscription_id,
        month
    from step_targets
),

amounts_0 as (
    select
        counted_items.subscription_id,
        counted_items.month,
        counted_items.item_position,
        counted_items.monthly_amount as amount
    from counted_items
    inner join discounted_months
        on
            counted_items.subscription_id = discounted_months.subscription_id
            and counted_items.month = discounted_months.month
),
{% for step in range(1, all_steps + 1) %}
    {%- set prev = 'amounts_' ~ (step - 1) %}
    amounts_{{ step }} as (
        select
            {{ prev }}.subscription_id,
            {{ prev }}.month,
            {{ prev }}.item_position,
            case
                when step_targets.discount_kind is null then {{ prev }}.amount
                when step_targets.discount_kind = 'percent_off'
                    then {{ recon.to_money(prev ~ '.amount * step_targets.percent_multiplier') }}
                -- amount_off: taken off the step's items in item order, none below 0
                else {{ prev }}.amount - least(
                        {{ prev }}.amount,
                        greatest(
                            {{ recon.to_money(0) }},
                            step_targets.monthly_amount_off - coalesce(
                                sum({{ prev }}.amount) over (
                                    partition by {{ prev }}.subscription_id, {{ prev }}.month, step_targets.target_group
                                    order by {{ prev }}.item_position
                                    rows between unbounded preceding and 1 preceding
                                ),
                                0
                            )
                        )
                    )
            end as amount
        from {{ prev }}
        left join step_targets
            on
                {{ prev }}.subscription_id = step_targets.subscription_id
                and {{ prev }}.month = step_targets.month
                and {{ prev }}.item_position = step_targets.item_position
                and step_targets.step_number = {{ step }}
    ),
{% endfor %}

discounted_amounts as (
    select
        subscription_id,
        month,
        sum(amount) as mrr
    from amounts_{{ all_steps }}
    group by subscription_id, month
),

gross_amounts as (
    select
        subscription_id,
        month,
        sum(monthly_amount) as gross_mrr,
        count(*) as n_counted_items
    from counted_items
    group by subscription_id, month
),

discount_counts as (
    select
        subscription_id,
        month,
        count(distinct discount_id) as n_discounts_applied,
        max(case when discount_level = 'item' then step_number else 0 end) as max_item_step_number,
        max(case when discount_level = 'subscription' then step_number - {{ item_steps }} else 0 end)
            as max_subscription_step_number
    from discount_steps
    group by subscription_id, month
)

select
    subscription_months.subscription_id,
    subscription_months.month,
    subscription_months.customer_id,
    subscription_months.currency,
    subscription_months.snapshot_unix,
    subscription_months.is_current_month,
    subscription_months.version_id,
    subscription_months.status,
    subscription_months.pause_collection_behavior is not null as is_collection_paused,
    subscription_months.is_counted,
    {{ recon.to_money('coalesce(gross_amounts.gross_mrr, 0)') }} as gross_mrr,
    {{ recon.to_money('coalesce(discounted_amounts.mrr, gross_amounts.gross_mrr, 0)') }} as mrr,
    coalesce(gross_amounts.n_counted_items, 0) as n_counted_items,
    coalesce(discount_counts.n_discounts_applied, 0) as n_discounts_applied,
    coalesce(discount_counts.max_item_step_number, 0) as max_item_step_number,
    coalesce(discount_counts.max_subscription_step_number, 0) as max_subscription_step_number,
    ignored_discounts.ignored_discount_ids,
    {{ recon.build_started_at() }} as built_at
from subscription_months
left join gross_amounts
    on
        subscription_months.subscription_id = gross_amounts.subscription_id
        and subscription_months.month = gross_amounts.month
left join discounted_amounts
    on
        subscription_months.subscription_id = discounted_amounts.subscription_id
        and subscription_months.month = discounted_amounts.month
left join discount_counts
    on
        subscription_months.subscription_id = discount_counts.subscription_id
        and subscription_months.month = discount_counts.month
left join ignored_discounts
    on
        subscription_months.subscription_id = ignored_discounts.subscription_id
        and subscription_months.month = ignored_discounts.month
{% if incremental %}
    -- key markers: the rows in the rebuilt scope that are no longer computed
    {{ recon.rebuild_scope_markers(row_columns, 'subscription_id', 'changed_subscriptions', 'subscription_months') }}
{% endif %}
