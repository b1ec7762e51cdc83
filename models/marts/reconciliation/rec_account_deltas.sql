-- One row per live HubSpot company and per Stripe customer no company matched: the Stripe and
-- the HubSpot values side by side with their delta, for MRR (reporting currency), status,
-- lifecycle stage and owner.

with

companies as (
    select
        hubspot_company_id,
        company_name,
        stripe_customer_id,
        stripe_customer_ids,
        match_method,
        n_matched_customers,
        stripe_mrr_reporting,
        hubspot_mrr,
        stripe_status,
        hubspot_subscription_status,
        is_paying,
        hubspot_lifecyclestage,
        hubspot_owner_id,
        is_owner_active,
        largest_open_deal_owner_id,
        has_open_deal_of_other_owner
    from {{ ref('int_companies_matched') }}
),

customers as (
    select
        customer_id,
        customer_name,
        is_deleted
    from {{ ref('stg_stripe__customers') }}
),

matches as (
    select
        customer_id,
        match_method,
        match_status
    from {{ ref('int_customers_matched') }}
),

customer_states as (
    select
        customer_id,
        mrr_reporting,
        derived_status
    from {{ ref('int_customers_statused') }}
),

findings as (
    select
        finding_id,
        stripe_customer_id,
        hubspot_company_id
    from {{ ref('rec_findings') }}
),

company_finding_counts as (
    select
        hubspot_company_id,
        count(*) as n_findings
    from findings
    where hubspot_company_id is not null
    group by hubspot_company_id
),

customer_finding_counts as (
    select
        stripe_customer_id,
        count(*) as n_findings
    from findings
    where hubspot_company_id is null
    group by stripe_customer_id
),

company_rows as (
    select
        'company' as account_type,
        companies.hubspot_company_id as account_id,
        companies.hubspot_company_id,
        companies.company_name,
        companies.stripe_customer_id,
        companies.stripe_customer_ids,
        companies.match_method,
        case when companies.n_matched_customers > 0 then 'matched' else 'unmatched' end as match_status,
        companies.n_matched_customers,
        companies.stripe_mrr_reporting,
        companies.hubspot_mrr,
        companies.stripe_status,
        companies.hubspot_subscription_status,
        companies.is_paying,
        companies.hubspot_lifecyclestage,
        companies.hubspot_owner_id,
        companies.is_owner_active,
        companies.largest_open_deal_owner_id,
        companies.has_open_deal_of_other_owner,
        coalesce(company_finding_counts.n_findings, 0) as n_findings
    from companies
    left join company_finding_counts
        on companies.hubspot_company_id = company_finding_counts.hubspot_company_id
),

customer_rows as (
    select
        'unmatched_customer' as account_type,
        matches.customer_id as account_id,
        cast(null as varchar) as hubspot_company_id,
        customers.customer_name as company_name,
        matches.customer_id as stripe_customer_id,
        matches.customer_id as stripe_customer_ids,
        matches.match_method,
        matches.match_status,
        0 as n_matched_customers,
        customer_states.mrr_reporting as stripe_mrr_reporting,
        cast(null as {{ recon.money_type() }}) as hubspot_mrr,
        customer_states.derived_status as stripe_status,
        cast(null as varchar) as hubspot_subscription_status,
        customer_states.mrr_reporting > 0 as is_paying,
        cast(null as varchar) as hubspot_lifecyclestage,
        cast(null as varchar) as hubspot_owner_id,
        cast(null as boolean) as is_owner_active,
        cast(null as varchar) as largest_open_deal_owner_id,
        false as has_open_deal_of_other_owner,
        coalesce(customer_finding_counts.n_findings, 0) as n_findings
    from matches
    inner join customers
        on matches.customer_id = customers.customer_id
    inner join customer_states
        on matches.customer_id = customer_states.customer_id
    left join customer_finding_counts
        on matches.customer_id = customer_finding_counts.stripe_customer_id
    where matches.match_status <> 'matched' and not customers.is_deleted
),

accounts as (
    {%- set account_columns = [
        'account_type', 'account_id', 'hubspot_company_id', 'company_name', 'stripe_customer_id',
        'stripe_customer_ids', 'match_method', 'match_status', 'n_matched_customers',
        'stripe_mrr_reporting', 'hubspot_mrr', 'stripe_status', 'hubspot_subscription_status',
        'is_paying', 'hubspot_lifecyclestage', 'hubspot_owner_id', 'is_owner_active',
        'largest_open_deal_owner_id', 'has_open_deal_of_other_owner', 'n_findings',
    ] %}
    {%- for part in ['company_rows', 'customer_rows'] %}
        select
            {{ account_columns | join(',\n            ') }}
        from {{ part }}
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)

select
    cast(account_type as varchar) as account_type,
    cast(account_id as varchar) as account_id,
    cast(hubspot_company_id as varchar) as hubspot_company_id,
    cast(company_name as varchar) as account_name,
    cast(stripe_customer_id as varchar) as stripe_customer_id,
    cast(stripe_customer_ids as varchar) as stripe_customer_ids,
    cast(match_method as varchar) as match_method,
    cast(match_status as varchar) as match_status,
    cast(n_matched_customers as integer) as n_matched_customers,
    {{ recon.to_money('stripe_mrr_reporting') }} as stripe_mrr,
    {{ recon.to_money('hubspot_mrr') }} as hubspot_mrr,
    {{ recon.to_money('coalesce(hubspot_mrr, 0) - stripe_mrr_reporting') }} as mrr_delta,
    cast(stripe_status as varchar) as stripe_status,
    cast(hubspot_subscription_status as varchar) as hubspot_status,
    cast(coalesce(hubspot_subscription_status, '') <> coalesce(stripe_status, '') as boolean) as is_status_different,
    cast(case when is_paying then 'customer' end as varchar) as stripe_lifecyclestage,
    cast(hubspot_lifecyclestage as varchar) as hubspot_lifecyclestage,
    cast(
        is_paying
        and (
            hubspot_lifecyclestage is null
            or hubspot_lifecyclestage in (
                'subscriber', 'lead', 'marketingqualifiedlead', 'salesqualifiedlead', 'opportunity'
            )
        ) as boolean
    ) as is_lifecycle_behind,
    cast(hubspot_owner_id as varchar) as hubspot_owner_id,
    cast(is_owner_active as boolean) as is_owner_active,
    cast(largest_open_deal_owner_id as varchar) as deal_owner_id,
    cast(has_open_deal_of_other_owner as boolean) as is_owner_conflicting,
    cast(is_paying as boolean) as is_paying,
    cast(n_findings as integer) as n_findings
from accounts
