-- One row per Stripe customer: who they are, the HubSpot company they match (and how), their
-- derived subscription status and their MRR at `as_of`. A customer Stripe no longer lists
-- (deleted) but whose subscriptions are known is here too, as deleted.

with

customers as (
    select
        customer_id,
        customer_name,
        email,
        is_deleted,
        created_at
    from {{ ref('stg_stripe__customers') }}
),

matches as (
    select
        customer_id,
        hubspot_company_id,
        match_method,
        match_status,
        candidate_company_ids
    from {{ ref('int_customers_matched') }}
),

customer_states as (
    select
        customer_id,
        is_listed,
        is_deleted,
        currency,
        derived_status,
        n_subscriptions,
        n_live_subscriptions,
        mrr,
        mrr_reporting
    from {{ ref('int_customers_statused') }}
),

mrr_history as (
    select
        customer_id,
        min(month) as first_paying_month,
        max(month) as last_paying_month
    from {{ ref('fct_mrr') }}
    where mrr_reporting > 0
    group by customer_id
)

select
    cast(customer_states.customer_id as varchar) as customer_id,
    cast(customers.customer_name as varchar) as customer_name,
    cast(customers.email as varchar) as email,
    cast(customer_states.currency as varchar) as currency,
    cast(customer_states.is_deleted as boolean) as is_deleted,
    cast(customer_states.is_listed as boolean) as is_listed,
    cast(customers.created_at as timestamp) as created_at,
    cast(matches.hubspot_company_id as varchar) as hubspot_company_id,
    cast(matches.match_method as varchar) as match_method,
    cast(coalesce(matches.match_status, 'unmatched') as varchar) as match_status,
    cast(matches.candidate_company_ids as varchar) as candidate_company_ids,
    cast(customer_states.derived_status as varchar) as derived_status,
    cast(customer_states.n_subscriptions as integer) as n_subscriptions,
    cast(customer_states.n_live_subscriptions as integer) as n_live_subscriptions,
    {{ recon.to_money('customer_states.mrr') }} as mrr,
    {{ recon.to_money('customer_states.mrr_reporting') }} as mrr_reporting,
    {{ recon.to_money('12 * customer_states.mrr_reporting') }} as arr_reporting,
    cast(customer_states.mrr_reporting > 0 as boolean) as is_paying,
    cast(mrr_history.first_paying_month as date) as first_paying_month,
    cast(mrr_history.last_paying_month as date) as last_paying_month
from customer_states
left join customers
    on customer_states.customer_id = customers.customer_id
left join matches
    on customer_states.customer_id = matches.customer_id
left join mrr_history
    on customer_states.customer_id = mrr_history.customer_id
