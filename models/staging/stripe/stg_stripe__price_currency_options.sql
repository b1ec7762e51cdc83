-- One row per price and currency option (`currency_options`, keyed by lower-case currency):
-- a price bills a subscription in another currency at that currency's option.
with

prices as (
    select * from {{ ref('stg_stripe__prices') }}
),

options as (
    select
        prices.price_id,
        upper(currency_option.key) as currency,
        cast({{ recon.json_str('currency_option.value_json', 'unit_amount') }} as bigint) as unit_amount,
        cast(
            {{ recon.json_str('currency_option.value_json', 'unit_amount_decimal') }} as decimal(38, 12)
        ) as unit_amount_decimal,
        {{ recon.json_get('currency_option.value_json', 'tiers') }} as tiers_json
    from prices
    {{ recon.json_object_rows('prices.currency_options_json', 'currency_option') }}
)

select * from options
