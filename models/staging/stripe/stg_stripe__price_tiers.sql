-- One row per tier of a tiered price, in the price's own currency and in each of its
-- currency options. Stripe returns tiers only on prices listed with expand[]=data.tiers.
with

prices as (
    select * from {{ ref('stg_stripe__prices') }}
),

price_currency_options as (
    select * from {{ ref('stg_stripe__price_currency_options') }}
),

tier_lists as (
    select
        price_id,
        currency,
        tiers_json
    from prices
    where tiers_json is not null
    union all
    select
        price_id,
        currency,
        tiers_json
    from price_currency_options
    where tiers_json is not null
),

tiers as (
    select
        tier_lists.price_id,
        tier_lists.currency,
        tier.idx + 1 as tier_number,
        cast({{ recon.json_str('tier.value_json', 'up_to') }} as bigint) as up_to,
        cast(
            coalesce(
                cast({{ recon.json_str('tier.value_json', 'unit_amount_decimal') }} as decimal(38, 12)),
                cast({{ recon.json_str('tier.value_json', 'unit_amount') }} as decimal(38, 12)),
                0
            ) as decimal(38, 12)
        ) as unit_amount_decimal,
        cast(
            coalesce(
                cast({{ recon.json_str('tier.value_json', 'flat_amount_decimal') }} as decimal(38, 12)),
                cast({{ recon.json_str('tier.value_json', 'flat_amount') }} as decimal(38, 12)),
                0
            ) as decimal(38, 12)
        ) as flat_amount_decimal
    from tier_lists
    {{ recon.json_array_rows('tier_lists.tiers_json', 'tier') }}
)

select * from tiers
