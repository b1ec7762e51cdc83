-- One row per live HubSpot company: its owner, whether that owner is active, the Stripe MRR
-- of the customers matched to it (reporting currency) and whether it is paying.

with

companies as (
    select
        hubspot_company_id,
        company_name,
        hubspot_owner_id,
        is_owner_active,
        n_matched_customers,
        stripe_customer_ids,
        stripe_status,
        stripe_mrr_reporting,
        is_paying,
        hubspot_lifecyclestage,
        n_open_deals,
        largest_open_deal_owner_id,
        has_open_deal_of_other_owner
    from {{ ref('int_companies_matched') }}
)

select
    cast(hubspot_company_id as varchar) as hubspot_company_id,
    cast(company_name as varchar) as company_name,
    cast(hubspot_owner_id as varchar) as owner_id,
    cast(is_owner_active as boolean) as owner_is_active,
    cast(n_matched_customers as integer) as n_matched_customers,
    cast(stripe_customer_ids as varchar) as stripe_customer_ids,
    cast(stripe_status as varchar) as stripe_status,
    {{ recon.to_money('stripe_mrr_reporting') }} as mrr_reporting,
    {{ recon.to_money('12 * stripe_mrr_reporting') }} as arr_reporting,
    cast(is_paying as boolean) as is_paying,
    cast(hubspot_lifecyclestage as varchar) as lifecyclestage,
    cast(n_open_deals as integer) as n_open_deals,
    cast(largest_open_deal_owner_id as varchar) as largest_open_deal_owner_id,
    cast(has_open_deal_of_other_owner as boolean) as has_open_deal_of_other_owner
from companies
