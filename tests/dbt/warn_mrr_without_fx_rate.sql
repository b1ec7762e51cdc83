{{ config(severity='warn') }}

-- Subscriptions with MRR in a currency that seeds/fx_rates.csv has no rate for: their MRR
-- cannot be stated in the reporting currency, so fct_mrr and the findings leave it out.
-- One row per subscription and currency, with the months affected; add the rate to the seed.

with

subscription_mrr as (
    select * from {{ ref('int_subscription_mrr_snapshotted') }}
),

fx_rates as (
    select * from {{ ref('fx_rates') }}
)

select
    subscription_mrr.subscription_id,
    subscription_mrr.customer_id,
    subscription_mrr.currency,
    min(subscription_mrr.month) as first_month,
    max(subscription_mrr.month) as last_month,
    max(subscription_mrr.mrr) as max_mrr
from subscription_mrr
left join fx_rates
    on subscription_mrr.currency = upper(fx_rates.currency)
where
    subscription_mrr.mrr > 0
    and fx_rates.currency is null
group by
    subscription_mrr.subscription_id,
    subscription_mrr.customer_id,
    subscription_mrr.currency
