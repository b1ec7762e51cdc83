-- One row per live (not archived) HubSpot company with its Stripe view (reconciliation.md §1):
-- the customers matched to it, their MRR summed in the reporting currency, the derived status
-- of the first in the order of §3 across them; whether any customer's deciding rule named it
-- at all; its stripe_customer_id checked against Stripe and against the other companies;
-- its owner's state; and its open deals' owners.

with

companies as (
    select * from {{ ref('stg_hubspot__companies') }}
    where not is_archived
),

customers as (
    select * from {{ ref('stg_stripe__customers') }}
),

matches as (
    select * from {{ ref('int_customers_matched') }}
),

candidates as (
    select * from {{ ref('int_customer_company_candidates') }}
),

customer_states as (
    select * from {{ ref('int_customers_statused') }}
),

owners as (
    select * from {{ ref('stg_hubspot__owners') }}
),

deals as (
    select * from {{ ref('stg_hubspot__deals') }}
    where not is_archived
),

associations as (
    select * from {{ ref('stg_hubspot__associations') }}
),

members as (
    select
        matches.hubspot_company_id,
        count(*) as n_matched_customers,
        min(matches.customer_id) as stripe_customer_id,
        {{ recon.sorted_agg('matches.customer_id') }} as stripe_customer_ids,
        min(matches.match_method) as match_method,
        max(matches.match_method) as last_match_method,
        sum(customer_states.mrr_reporting) as stripe_mrr_reporting,
        min(
            case customer_states.derived_status
                when 'active' then 1
                when 'past_due' then 2
                when 'trialing' then 3
                when 'unpaid' then 4
                when 'paused' then 5
                when 'incomplete' then 6
                when 'canceled' then 7
                else 8
            end
        ) as status_rank,
        {{ recon.ordered_agg('customer_states.paying_subscription_ids', 'matches.customer_id') }}
            as paying_subscription_ids
    from matches
    inner join customer_states
        on matches.customer_id = customer_states.customer_id
    where matches.match_status = 'matched'
    group by matches.hubspot_company_id
),

touched as (
    select distinct hubspot_company_id
    from candidates
),

stripe_id_counts as (
    select
        stripe_customer_id,
        count(*) as n_companies,
        {{ recon.sorted_agg('company_id') }} as company_ids
    from companies
    where stripe_customer_id is not null
    group by stripe_customer_id
),

open_deals as (
    select
        associations.to_id as company_id,
        deals.deal_id,
        deals.hubspot_owner_id,
        {{ recon.to_money("coalesce(deals.amount, 0)") }} as amount
    from deals
    inner join associations
        on
            associations.from_object_type = 'deals'
            and associations.to_object_type = 'companies'
            and deals.deal_id = associations.from_id
    where
        not deals.is_closed
        and deals.hubspot_owner_id is not null
        and associations.association_type_id = 5
        and coalesce(associations.association_category, 'HUBSPOT_DEFINED') = 'HUBSPOT_DEFINED'
),

largest_open_deals as (
    select
        company_id,
        deal_id,
        hubspot_owner_id,
        amount
    from (
        select
            open_deals.*,
            row_number() over (
                partition by open_deals.company_id
                order by open_deals.amount desc, open_deals.deal_id asc
            ) as size_rank
        from open_deals
    ) as ranked_deals
    where size_rank = 1
),

deal_owner_sets as (
    select
        company_id,
        count(*) as n_open_deals,
        {{ recon.sorted_agg('hubspot_owner_id') }} as open_deal_owner_ids
    from open_deals
    group by company_id
)

select
    companies.company_id as hubspot_company_id,
    companies.company_name,
    companies.domain,
    companies.stripe_customer_id as hubspot_stripe_customer_id,
    companies.mrr_text as hubspot_mrr_text,
    companies.mrr as hubspot_mrr,
    companies.subscription_status as hubspot_subscription_status,
    companies.lifecyclestage as hubspot_lifecyclestage,
    companies.hubspot_owner_id,
    coalesce(members.n_matched_customers, 0) as n_matched_customers,
    members.stripe_customer_id,
    members.stripe_customer_ids,
    case when members.n_matched_customers = 1 then members.match_method end as match_method,
    members.match_method = 'stripe_id' and members.last_match_method = 'stripe_id' as is_matched_by_stripe_id_only,
    {{ recon.to_money('coalesce(members.stripe_mrr_reporting, 0)') }} as stripe_mrr_reporting,
    coalesce(members.stripe_mrr_reporting, 0) > 0 as is_paying,
    case members.status_rank
        when 1 then 'active'
        when 2 then 'past_due'
        when 3 then 'trialing'
        when 4 then 'unpaid'
        when 5 then 'paused'
        when 6 then 'incomplete'
        when 7 then 'canceled'
        when 8 then 'none'
    end as stripe_status,
    members.paying_subscription_ids,
    touched.hubspot_company_id is not null as is_candidate_of_any_customer,
    companies.stripe_customer_id is not null
    and (stripe_customers.customer_id is null or stripe_customers.is_deleted) as is_stripe_id_unknown,
    stripe_customers.is_deleted as is_stripe_customer_deleted,
    coalesce(stripe_id_counts.n_companies, 0) as n_companies_with_stripe_id,
    stripe_id_counts.company_ids as companies_with_stripe_id,
    owners.owner_id is not null as is_owner_listed,
    companies.hubspot_owner_id is not null and coalesce(not owners.is_archived, false) as is_owner_active,
    coalesce(deal_owner_sets.n_open_deals, 0) as n_open_deals,
    deal_owner_sets.open_deal_owner_ids,
    largest_open_deals.deal_id as largest_open_deal_id,
    largest_open_deals.hubspot_owner_id as largest_open_deal_owner_id,
    largest_open_deals.amount as largest_open_deal_amount,
    companies.hubspot_owner_id is not null
    and exists (
        select 1
        from open_deals
        where
            open_deals.company_id = companies.company_id
            and open_deals.hubspot_owner_id <> companies.hubspot_owner_id
    ) as has_open_deal_of_other_owner
from companies
left join members
    on companies.company_id = members.hubspot_company_id
left join touched
    on companies.company_id = touched.hubspot_company_id
left join customers as stripe_customers
    on companies.stripe_customer_id = stripe_customers.customer_id
left join stripe_id_counts
    on companies.stripe_customer_id = stripe_id_counts.stripe_customer_id
left join owners
    on companies.hubspot_owner_id = owners.owner_id
left join deal_owner_sets
    on companies.company_id = deal_owner_sets.company_id
left join largest_open_deals
    on companies.company_id = largest_open_deals.company_id
