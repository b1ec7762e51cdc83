-- One row per Stripe customer with the outcome of the identity rules (reconciliation.md §1):
-- `matched` to exactly one company by the deciding rule; `duplicate_stripe_id` when rule 1
-- finds several companies (the customer stays unmatched); `ambiguous` when rule 2, 3 or 4
-- finds several; `unmatched` when no rule finds any (deleted customers always).

with

customers as (
    select * from {{ ref('stg_stripe__customers') }}
),

candidates as (
    select * from {{ ref('int_customer_company_candidates') }}
),

outcomes as (
    select
        customer_id,
        min(rule_number) as rule_number,
        min(match_method) as match_method,
        count(*) as n_candidates,
        min(hubspot_company_id) as first_company_id,
        {{ recon.sorted_agg('hubspot_company_id') }} as candidate_company_ids
    from candidates
    group by customer_id
)

select
    customers.customer_id,
    case
        when outcomes.n_candidates = 1 then 'matched'
        when outcomes.rule_number = 1 then 'duplicate_stripe_id'
        when outcomes.n_candidates > 1 then 'ambiguous'
        else 'unmatched'
    end as match_status,
    outcomes.match_method,
    case when outcomes.n_candidates = 1 then outcomes.first_company_id end as hubspot_company_id,
    coalesce(outcomes.n_candidates, 0) as n_candidates,
    outcomes.candidate_company_ids
from customers
left join outcomes
    on customers.customer_id = outcomes.customer_id
