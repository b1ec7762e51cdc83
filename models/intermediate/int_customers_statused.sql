-- Each Stripe customer's derived subscription status at `as_of` (reconciliation.md §3): across
-- the customer's subscriptions, the first that applies of active, past_due, trialing, unpaid,
-- paused, incomplete, canceled (had a subscription, none live; incomplete_expired counts as
-- canceled), none (never subscribed); and the customer's MRR at `as_of`.
-- Every customer is here: the listed ones, and those only their subscriptions name (Stripe
-- stops listing a deleted customer; its subscriptions stay), counted as deleted.

{%- set reporting_currency = recon.reporting_currency() %}

with

customers as (
    select * from {{ ref('stg_stripe__customers') }}
),

versions as (
    select * from {{ ref('int_subscription_versions_unioned') }}
),

customer_ids as (
    select customer_id
    from customers
    union
    select customer_id
    from versions
    where customer_id is not null
),

subscriptions as (
    select * from {{ ref('int_subscriptions_at_as_of') }}
),

fx_rates as (
    select * from {{ ref('fx_rates') }}
),

reporting_rate as (
    select rate_to_reporting
    from fx_rates
    where upper(currency) = '{{ reporting_currency }}'
),

subscription_values as (
    select
        subscriptions.customer_id,
        subscriptions.subscription_id,
        subscriptions.currency,
        subscriptions.mrr,
        case subscriptions.status
            when 'active' then 1
            when 'past_due' then 2
            when 'trialing' then 3
            when 'unpaid' then 4
            when 'paused' then 5
            when 'incomplete' then 6
            else 7
        end as status_rank,
        {{ recon.money_div(
            'subscriptions.mrr * fx_rates.rate_to_reporting',
            'reporting_rate.rate_to_reporting'
        ) }} as mrr_reporting
    from subscriptions
    left join fx_rates
        on subscriptions.currency = upper(fx_rates.currency)
    cross join reporting_rate
),

per_customer as (
    select
        customer_id,
        min(status_rank) as status_rank,
        count(*) as n_subscriptions,
        cast(sum(case when status_rank < 7 then 1 else 0 end) as bigint) as n_live_subscriptions,
        sum(mrr_reporting) as mrr_reporting,
        {{ recon.distinct_count_0_1_many('case when mrr > 0 then currency end') }}
            as n_billing_currencies,
        min(case when mrr > 0 then currency end) as billing_currency,
        min(currency) as any_subscription_currency,
        sum(mrr) as mrr_billing,
        {{ recon.sorted_agg('case when mrr > 0 then subscription_id end') }}
            as paying_subscription_ids
    from subscription_values
    group by customer_id
)

select
    customer_ids.customer_id,
    customers.customer_id is not null as is_listed,
    coalesce(customers.is_deleted, true) as is_deleted,
    case per_customer.status_rank
        when 1 then 'active'
        when 2 then 'past_due'
        when 3 then 'trialing'
        when 4 then 'unpaid'
        when 5 then 'paused'
        when 6 then 'incomplete'
        when 7 then 'canceled'
        else 'none'
    end as derived_status,
    coalesce(per_customer.n_subscriptions, 0) as n_subscriptions,
    coalesce(per_customer.n_live_subscriptions, 0) as n_live_subscriptions,
    {{ recon.to_money('coalesce(per_customer.mrr_reporting, 0)') }} as mrr_reporting,
    case
        when per_customer.n_billing_currencies = 1 then per_customer.billing_currency
        when coalesce(per_customer.n_billing_currencies, 0) = 0
            then coalesce(customers.currency, per_customer.any_subscription_currency)
    end as currency,
    cast(
        case
            when per_customer.n_billing_currencies = 1 then per_customer.mrr_billing
            when coalesce(per_customer.n_billing_currencies, 0) = 0 then 0
        end as {{ recon.money_type() }}
    ) as mrr,
    per_customer.paying_subscription_ids
from customer_ids
left join customers
    on customer_ids.customer_id = customers.customer_id
left join per_customer
    on customer_ids.customer_id = per_customer.customer_id
