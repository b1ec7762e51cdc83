-- Every finding of reconciliation.md §2, one row each: where HubSpot disagrees with billing
-- truth (Stripe), routed to the team that owns the kind (seeds/finding_kind_owners.csv) and
-- to the account's owner. finding_id is stable across builds.

{%- set finding_columns = [
    'kind', 'stripe_customer_id', 'hubspot_company_id', 'property', 'hubspot_value',
    'expected_value', 'match_method', 'evidence', 'account_owner_id', 'mrr_at_stake',
] %}

with

companies as (
    select
        hubspot_company_id,
        stripe_customer_id,
        stripe_customer_ids,
        match_method,
        n_matched_customers,
        stripe_mrr_reporting,
        is_paying,
        stripe_status,
        paying_subscription_ids,
        hubspot_mrr,
        hubspot_mrr_text,
        hubspot_subscription_status,
        hubspot_lifecyclestage,
        hubspot_owner_id,
        hubspot_stripe_customer_id,
        is_stripe_id_unknown,
        is_stripe_customer_deleted,
        n_companies_with_stripe_id,
        companies_with_stripe_id,
        is_owner_listed,
        is_owner_active,
        is_candidate_of_any_customer,
        has_open_deal_of_other_owner,
        open_deal_owner_ids,
        largest_open_deal_id,
        largest_open_deal_owner_id
    from {{ ref('int_companies_matched') }}
),

customers as (
    select
        customer_id,
        is_deleted
    from {{ ref('stg_stripe__customers') }}
),

matches as (
    select
        customer_id,
        match_status,
        candidate_company_ids
    from {{ ref('int_customers_matched') }}
),

candidates as (
    select
        customer_id,
        hubspot_company_id,
        match_method
    from {{ ref('int_customer_company_candidates') }}
),

customer_states as (
    select
        customer_id,
        mrr_reporting
    from {{ ref('int_customers_statused') }}
),

kind_owners as (
    select
        kind,
        owner_team,
        is_corrected_by_sync
    from {{ ref('finding_kind_owners') }}
),

as_of as (
    select as_of
    from {{ ref('int_as_of') }}
),

company_findings as (
    select
        'stripe_id_unknown' as kind,
        stripe_customer_id,
        hubspot_company_id,
        'stripe_customer_id' as property,
        hubspot_stripe_customer_id as hubspot_value,
        cast(null as varchar) as expected_value,
        match_method,
        'stripe_customer_id ' || hubspot_stripe_customer_id
        || case
            when is_stripe_customer_deleted then ' is a deleted Stripe customer'
            else ' names no Stripe customer'
        end as evidence,
        hubspot_owner_id as account_owner_id,
        stripe_mrr_reporting as mrr_at_stake
    from companies
    where is_stripe_id_unknown

    union all
    select
        'duplicate_stripe_id' as kind,
        stripe_customer_id,
        hubspot_company_id,
        'stripe_customer_id' as property,
        hubspot_stripe_customer_id as hubspot_value,
        cast(null as varchar) as expected_value,
        match_method,
        'companies ' || companies_with_stripe_id || ' all carry ' || hubspot_stripe_customer_id as evidence,
        hubspot_owner_id as account_owner_id,
        stripe_mrr_reporting as mrr_at_stake
    from companies
    where n_companies_with_stripe_id > 1

    union all
    select
        'mrr_mismatch' as kind,
        stripe_customer_id,
        hubspot_company_id,
        'mrr' as property,
        hubspot_mrr_text as hubspot_value,
        {{ recon.money_text('stripe_mrr_reporting') }} as expected_value,
        match_method,
        'Stripe MRR ' || {{ recon.money_text('stripe_mrr_reporting') }}
        || ' from ' || coalesce(paying_subscription_ids, 'no paying subscription')
        || ' (customers ' || stripe_customer_ids || ')' as evidence,
        hubspot_owner_id as account_owner_id,
        abs(stripe_mrr_reporting - coalesce(hubspot_mrr, 0)) as mrr_at_stake
    from companies
    where
        n_matched_customers > 0
        and (
            (hubspot_mrr is null and stripe_mrr_reporting > 0)
            or (
                hubspot_mrr is not null
                and abs(hubspot_mrr - stripe_mrr_reporting)
                > case
                    when stripe_mrr_reporting * 0.005 > 1 then stripe_mrr_reporting * 0.005
                    else 1
                end
            )
        )

    union all
    select
        'status_mismatch' as kind,
        stripe_customer_id,
        hubspot_company_id,
        'subscription_status' as property,
        hubspot_subscription_status as hubspot_value,
        stripe_status as expected_value,
        match_method,
        'derived from the subscriptions of ' || stripe_customer_ids as evidence,
        hubspot_owner_id as account_owner_id,
        stripe_mrr_reporting as mrr_at_stake
    from companies
    where
        n_matched_customers > 0
        and coalesce(hubspot_subscription_status, '') <> stripe_status

    union all
    select
        'missing_stripe_id' as kind,
        stripe_customer_id,
        hubspot_company_id,
        'stripe_customer_id' as property,
        cast(null as varchar) as hubspot_value,
        stripe_customer_id as expected_value,
        match_method,
        'matched by ' || match_method || ' to ' || stripe_customer_id as evidence,
        hubspot_owner_id as account_owner_id,
        stripe_mrr_reporting as mrr_at_stake
    from companies
    where
        n_matched_customers = 1
        and match_method <> 'stripe_id'
        and hubspot_stripe_customer_id is null

    union all
    select
        'lifecycle_mismatch' as kind,
        stripe_customer_id,
        hubspot_company_id,
        'lifecyclestage' as property,
        hubspot_lifecyclestage as hubspot_value,
        'customer' as expected_value,
        match_method,
        'paying ' || {{ recon.money_text('stripe_mrr_reporting') }} || ' a month' as evidence,
        hubspot_owner_id as account_owner_id,
        stripe_mrr_reporting as mrr_at_stake
    from companies
    where
        is_paying
        and (
            hubspot_lifecyclestage is null
            or hubspot_lifecyclestage in (
                'subscriber', 'lead', 'marketingqualifiedlead', 'salesqualifiedlead', 'opportunity'
            )
        )

    union all
    select
        'owner_missing' as kind,
        stripe_customer_id,
        hubspot_company_id,
        'hubspot_owner_id' as property,
        cast(null as varchar) as hubspot_value,
        cast(null as varchar) as expected_value,
        match_method,
        'paying company without an owner' as evidence,
        cast(null as varchar) as account_owner_id,
        stripe_mrr_reporting as mrr_at_stake
    from companies
    where is_paying and hubspot_owner_id is null

    union all
    select
        'owner_inactive' as kind,
        stripe_customer_id,
        hubspot_company_id,
        'hubspot_owner_id' as property,
        hubspot_owner_id as hubspot_value,
        cast(null as varchar) as expected_value,
        match_method,
        'owner ' || hubspot_owner_id
        || case when is_owner_listed then ' is archived' else ' is not in the owners list' end as evidence,
        hubspot_owner_id as account_owner_id,
        stripe_mrr_reporting as mrr_at_stake
    from companies
    where is_paying and hubspot_owner_id is not null and not is_owner_active

    union all
    select
        'orphan_in_crm' as kind,
        cast(null as varchar) as stripe_customer_id,
        hubspot_company_id,
        cast(null as varchar) as property,
        cast(null as varchar) as hubspot_value,
        cast(null as varchar) as expected_value,
        cast(null as varchar) as match_method,
        'lifecyclestage ' || coalesce(hubspot_lifecyclestage, 'empty') || ', mrr '
        || coalesce(hubspot_mrr_text, 'empty') || ', no Stripe customer matches' as evidence,
        hubspot_owner_id as account_owner_id,
        coalesce(hubspot_mrr, 0) as mrr_at_stake
    from companies
    where
        n_matched_customers = 0
        and not is_candidate_of_any_customer
        and (hubspot_lifecyclestage = 'customer' or hubspot_mrr > 0)

    union all
    select
        'owner_conflict' as kind,
        stripe_customer_id,
        hubspot_company_id,
        'hubspot_owner_id' as property,
        hubspot_owner_id as hubspot_value,
        largest_open_deal_owner_id as expected_value,
        match_method,
        'open deals owned by ' || open_deal_owner_ids || '; the largest, ' || largest_open_deal_id
        || ', by ' || largest_open_deal_owner_id as evidence,
        hubspot_owner_id as account_owner_id,
        stripe_mrr_reporting as mrr_at_stake
    from companies
    where has_open_deal_of_other_owner
),

customer_findings as (
    select
        'ambiguous_match' as kind,
        candidates.customer_id as stripe_customer_id,
        candidates.hubspot_company_id,
        cast(null as varchar) as property,
        cast(null as varchar) as hubspot_value,
        cast(null as varchar) as expected_value,
        candidates.match_method,
        'rule ' || candidates.match_method || ' found companies ' || matches.candidate_company_ids as evidence,
        companies.hubspot_owner_id as account_owner_id,
        customer_states.mrr_reporting as mrr_at_stake
    from candidates
    inner join matches
        on candidates.customer_id = matches.customer_id
    inner join customer_states
        on candidates.customer_id = customer_states.customer_id
    left join companies
        on candidates.hubspot_company_id = companies.hubspot_company_id
    where matches.match_status = 'ambiguous'

    union all
    select
        'missing_in_crm' as kind,
        matches.customer_id as stripe_customer_id,
        cast(null as varchar) as hubspot_company_id,
        cast(null as varchar) as property,
        cast(null as varchar) as hubspot_value,
        cast(null as varchar) as expected_value,
        cast(null as varchar) as match_method,
        'paying ' || {{ recon.money_text('customer_states.mrr_reporting') }}
        || ' a month; no company by any rule' as evidence,
        cast(null as varchar) as account_owner_id,
        customer_states.mrr_reporting as mrr_at_stake
    from matches
    inner join customers
        on matches.customer_id = customers.customer_id
    inner join customer_states
        on matches.customer_id = customer_states.customer_id
    where
        matches.match_status = 'unmatched'
        and not customers.is_deleted
        and customer_states.mrr_reporting > 0
),

findings as (
    select
        {{ finding_columns | join(',\n        ') }}
    from company_findings
    union all
    select
        {{ finding_columns | join(',\n        ') }}
    from customer_findings
)

select
    cast({{ dbt.hash(
        "findings.kind || '|' || coalesce(findings.stripe_customer_id, '') || '|'"
        ~ " || coalesce(findings.hubspot_company_id, '') || '|' || coalesce(findings.property, '')"
    ) }} as varchar) as finding_id,
    cast(findings.kind as varchar) as kind,
    cast(findings.stripe_customer_id as varchar) as stripe_customer_id,
    cast(findings.hubspot_company_id as varchar) as hubspot_company_id,
    cast(findings.property as varchar) as property,
    cast(findings.hubspot_value as varchar) as hubspot_value,
    cast(findings.expected_value as varchar) as expected_value,
    cast(findings.match_method as varchar) as match_method,
    cast(findings.evidence as varchar) as evidence,
    cast(kind_owners.owner_team as varchar) as owner_team,
    cast(findings.account_owner_id as varchar) as account_owner_id,
    cast(coalesce(kind_owners.is_corrected_by_sync, false) as boolean) as is_corrected_by_sync,
    {{ recon.to_money('coalesce(findings.mrr_at_stake, 0)') }} as mrr_at_stake,
    cast(as_of.as_of as timestamp) as detected_at
from findings
left join kind_owners
    on findings.kind = kind_owners.kind
cross join as_of
