{{ config(severity='warn') }}

-- Subscription items whose price bills a negative amount. Stripe never does (unit amounts,
-- tiers and flat amounts are at least 0), so the price is corrupt: the item counts 0 MRR
-- (int_subscription_items_priced) and is named here, one row per subscription and price.

with

items as (
    select * from {{ ref('int_subscription_items_priced') }}
)

select
    subscription_id,
    price_id,
    amount_currency,
    min(amount_minor) as amount_minor,
    count(*) as n_versions
from items
where amount_minor < 0
group by subscription_id, price_id, amount_currency
