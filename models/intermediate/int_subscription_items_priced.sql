{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='version_id',
        on_schema_change='append_new_columns',
        post_hook="{{ recon.delete_versions_gone() }}",
    )
}}

-- The monthly amount of each item of each subscription version, in major units of the
-- subscription's currency (mrr.md §2-4), before discounts:
-- * per_unit: unit_amount × quantity (unit_amount_decimal when unit_amount is null);
-- * tiered: volume (the tier holding the quantity prices every unit, plus its flat amount)
--   or graduated (each tier prices its units, plus the flat amount of each touched tier),
--   with tiers from the prices table (a nested price carries none);
-- * transform_quantity divides the quantity first (rounded up or down);
-- * a price's currency option for the subscription's currency replaces its own amounts;
-- * minor units divided by 10^exponent of the currency (seeds/currency_exponents.csv);
-- * normalised to a month by the price's recurring interval and interval_count.
-- Metered prices contribute 0, and so does a negative amount (Stripe never bills one: a
-- corrupt price; tests/dbt/warn_negative_item_amounts.sql names it).
-- Incremental: a version's items never change, so a build prices only the versions rebuilt
-- since the last one (and any whose tiers were missing); rows of versions that no longer
-- exist are removed after the build.

{#- the fields read from each item (recon.json_strs) -#}
{%- set item_paths = [
    'id', 'quantity', 'price.id', 'price.product', 'price.product.id', 'price.currency',
    'price.billing_scheme', 'price.tiers_mode', 'price.unit_amount', 'price.unit_amount_decimal',
    'price.recurring.interval', 'price.recurring.interval_count', 'price.recurring.usage_type',
    'price.transform_quantity.divide_by', 'price.transform_quantity.round',
] %}

with

prices as (
    select * from {{ ref('stg_stripe__prices') }}
),

price_currency_options as (
    select * from {{ ref('stg_stripe__price_currency_options') }}
),

price_tiers as (
    select * from {{ ref('stg_stripe__price_tiers') }}
),

currency_exponents as (
    select * from {{ ref('currency_exponents') }}
),

version_item_documents as (
    -- one row per item; its fields in one read of its JSON (recon.json_strs), not one read
    -- per field. The versions come from a subquery, not a CTE: DuckDB streams the unnesting
    -- over a table or a subquery, but over a CTE it first collects every distinct items
    -- document in a hash table (DECISIONLOG "Models: memory").
    select
        versions.version_id,
        versions.subscription_id,
        versions.built_at,
        versions.currency as subscription_currency,
        subscription_item.idx + 1 as item_position,
        {{ recon.json_strs('subscription_item.value_json', item_paths) }} as item_fields,
        {{ recon.json_types('subscription_item.value_json', ['price.product']) }} as product_types,
        {{ recon.json_get('subscription_item.value_json', 'discounts') }} as item_discounts_json
    from (
        select
            all_versions.version_id,
            all_versions.subscription_id,
            all_versions.built_at,
            all_versions.currency,
            all_versions.items_json
        from {{ ref('int_subscription_versions_unioned') }} as all_versions
        {% if recon.is_incremental_with(['built_at', 'is_missing_tiers']) %}
            where
                {{ recon.built_since_last_build('all_versions') }}
                or all_versions.version_id in (
                    select known.version_id
                    from {{ this }} as known
                    where known.is_missing_tiers
                )
        {% endif %}
    ) as versions
    {{ recon.json_array_rows('versions.items_json', 'subscription_item') }}
),

version_items as (
    select
        version_id,
        subscription_id,
        built_at,
        subscription_currency,
        item_position,
        {{ recon.json_strs_at('item_fields', item_paths, 'id') }} as subscription_item_id,
        cast({{ recon.json_strs_at('item_fields', item_paths, 'quantity') }} as bigint) as quantity,
        item_discounts_json,
        {{ recon.json_strs_at('item_fields', item_paths, 'price.id') }} as price_id,
        case
            when {{ recon.json_types_at('product_types', ['price.product'], 'price.product') }} = 'object'
                then {{ recon.json_strs_at('item_fields', item_paths, 'price.product.id') }}
            else {{ recon.json_strs_at('item_fields', item_paths, 'price.product') }}
        end as nested_product_id,
        upper({{ recon.json_strs_at('item_fields', item_paths, 'price.currency') }}) as nested_currency,
        {{ recon.json_strs_at('item_fields', item_paths, 'price.billing_scheme') }} as nested_billing_scheme,
        {{ recon.json_strs_at('item_fields', item_paths, 'price.tiers_mode') }} as nested_tiers_mode,
        cast({{ recon.json_strs_at('item_fields', item_paths, 'price.unit_amount') }} as bigint) as nested_unit_amount,
        cast(
            {{ recon.json_strs_at('item_fields', item_paths, 'price.unit_amount_decimal') }} as decimal(38, 12)
        ) as nested_unit_amount_decimal,
        {{ recon.json_strs_at('item_fields', item_paths, 'price.recurring.interval') }} as nested_interval,
        cast(
            {{ recon.json_strs_at('item_fields', item_paths, 'price.recurring.interval_count') }} as integer
        ) as nested_interval_count,
        {{ recon.json_strs_at('item_fields', item_paths, 'price.recurring.usage_type') }} as nested_usage_type,
        cast(
            {{ recon.json_strs_at('item_fields', item_paths, 'price.transform_quantity.divide_by') }} as bigint
        ) as nested_divide_by,
        {{ recon.json_strs_at('item_fields', item_paths, 'price.transform_quantity.round') }} as nested_round
    from version_item_documents
),

items_with_prices as (
    -- the nested price is the price as of the version; the prices table fills what it lacks
    select
        version_items.version_id,
        version_items.subscription_id,
        version_items.built_at,
        version_items.subscription_currency,
        version_items.item_position,
        version_items.subscription_item_id,
        version_items.item_discounts_json,
        version_items.price_id,
        coalesce(version_items.nested_product_id, prices.product_id) as product_id,
        coalesce(version_items.quantity, 1) as quantity,
        coalesce(version_items.nested_currency, prices.currency) as price_currency,
        coalesce(version_items.nested_billing_scheme, prices.billing_scheme, 'per_unit') as billing_scheme,
        coalesce(version_items.nested_tiers_mode, prices.tiers_mode) as tiers_mode,
        coalesce(version_items.nested_interval, prices.recurring_interval) as recurring_interval,
        coalesce(version_items.nested_interval_count, prices.recurring_interval_count, 1) as interval_count,
        coalesce(version_items.nested_usage_type, prices.recurring_usage_type, 'licensed') as usage_type,
        coalesce(version_items.nested_divide_by, prices.transform_quantity_divide_by) as divide_by,
        coalesce(version_items.nested_round, prices.transform_quantity_round, 'down') as round_direction,
        case
            when
                coalesce(version_items.nested_currency, prices.currency) <> version_items.subscription_currency
                and price_currency_options.currency is not null
                then price_currency_options.currency
            else coalesce(version_items.nested_currency, prices.currency)
        end as amount_currency,
        case
            when
                coalesce(version_items.nested_currency, prices.currency) <> version_items.subscription_currency
                and price_currency_options.currency is not null
                then coalesce(
                        cast(price_currency_options.unit_amount as decimal(38, 12)),
                        price_currency_options.unit_amount_decimal
                    )
            else coalesce(
                    cast(version_items.nested_unit_amount as decimal(38, 12)),
                    version_items.nested_unit_amount_decimal,
                    cast(prices.unit_amount as decimal(38, 12)),
                    prices.unit_amount_decimal
                )
        end as unit_amount_minor
    from version_items
    left join prices
        on version_items.price_id = prices.price_id
    left join price_currency_options
        on
            version_items.price_id = price_currency_options.price_id
            and version_items.subscription_currency = price_currency_options.currency
),

items_with_quantity as (
    select
        items_with_prices.*,
        case
            when coalesce(items_with_prices.divide_by, 0) <= 0 then items_with_prices.quantity
            when items_with_prices.round_direction = 'up' then {{ recon.int_div('quantity', 'divide_by', 'up') }}
            else {{ recon.int_div('quantity', 'divide_by', 'down') }}
        end as billed_quantity
    from items_with_prices
),

tiers_with_bounds as (
    select
        price_id,
        currency,
        tier_number,
        coalesce(lag(up_to) over (partition by price_id, currency order by tier_number), 0) as lower_bound,
        up_to,
        unit_amount_decimal,
        flat_amount_decimal
    from price_tiers
),

tiered_amounts as (
    select
        items_with_quantity.version_id,
        items_with_quantity.subscription_item_id,
        items_with_quantity.item_position,
        sum(
            case
                when
                    items_with_quantity.tiers_mode = 'volume'
                    and (
                        items_with_quantity.billed_quantity > tiers_with_bounds.lower_bound
                        or tiers_with_bounds.tier_number = 1
                    )
                    and (
                        tiers_with_bounds.up_to is null
                        or items_with_quantity.billed_quantity <= tiers_with_bounds.up_to
                    )
                    -- volume: the single tier holding the quantity (quantity 0: the first)
                    then items_with_quantity.billed_quantity * tiers_with_bounds.unit_amount_decimal
                        + tiers_with_bounds.flat_amount_decimal
                when
                    items_with_quantity.tiers_mode <> 'volume'
                    and items_with_quantity.billed_quantity > tiers_with_bounds.lower_bound
                    -- graduated: the units that fall in each touched tier, plus its flat amount
                    then (
                        least(
                            items_with_quantity.billed_quantity,
                            coalesce(tiers_with_bounds.up_to, items_with_quantity.billed_quantity)
                        ) - tiers_with_bounds.lower_bound
                    ) * tiers_with_bounds.unit_amount_decimal
                    + tiers_with_bounds.flat_amount_decimal
                else 0
            end
        ) as amount_minor,
        count(*) as n_tiers
    from items_with_quantity
    inner join tiers_with_bounds
        on
            items_with_quantity.price_id = tiers_with_bounds.price_id
            and items_with_quantity.amount_currency = tiers_with_bounds.currency
    where items_with_quantity.billing_scheme = 'tiered'
    group by
        items_with_quantity.version_id,
        items_with_quantity.subscription_item_id,
        items_with_quantity.item_position
),

amounts as (
    select
        items_with_quantity.*,
        tiered_amounts.n_tiers,
        cast(
            case
                when items_with_quantity.billing_scheme = 'tiered' then tiered_amounts.amount_minor
                else items_with_quantity.unit_amount_minor * items_with_quantity.billed_quantity
            end as decimal(38, 12)
        ) as amount_minor,
        coalesce(currency_exponents.exponent, 2) as currency_exponent,
        case items_with_quantity.recurring_interval
            when 'month' then 1
            when 'year' then 1
            when 'week' then 52
            when 'day' then 365
        end as months_numerator,
        case items_with_quantity.recurring_interval
            when 'month' then items_with_quantity.interval_count
            when 'year' then 12 * items_with_quantity.interval_count
            when 'week' then 12 * items_with_quantity.interval_count
            when 'day' then 12 * items_with_quantity.interval_count
        end as months_denominator
    from items_with_quantity
    left join tiered_amounts
        on
            items_with_quantity.version_id = tiered_amounts.version_id
            and items_with_quantity.item_position = tiered_amounts.item_position
    left join currency_exponents
        on items_with_quantity.amount_currency = currency_exponents.currency
)

select
    version_id,
    subscription_id,
    item_position,
    subscription_item_id,
    price_id,
    product_id,
    quantity,
    billed_quantity,
    billing_scheme,
    tiers_mode,
    usage_type,
    recurring_interval,
    interval_count,
    months_numerator,
    months_denominator,
    price_currency,
    amount_currency,
    subscription_currency,
    currency_exponent,
    amount_minor,
    usage_type = 'licensed' and recurring_interval is not null and coalesce(amount_minor, 0) >= 0 as is_counted,
    cast(
        case
            when usage_type = 'licensed' and recurring_interval is not null and coalesce(amount_minor, 0) >= 0
                then coalesce(
                    {{ recon.money_div(
                        'amount_minor * months_numerator',
                        'months_denominator * power(10, currency_exponent)'
                    ) }},
                        0
                    )
            else 0
        end as {{ recon.money_type() }}
    ) as monthly_amount,
    billing_scheme = 'tiered' and n_tiers is null as is_missing_tiers,
    amount_currency <> subscription_currency as is_currency_mismatch,
    item_discounts_json,
    built_at
from amounts
