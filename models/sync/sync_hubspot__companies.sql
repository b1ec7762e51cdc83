-- The corrections recon may push to HubSpot companies (reconciliation.md §4): one row per
-- company with at least one finding the sync corrects (mrr_mismatch, status_mismatch,
-- missing_stripe_id, lifecycle_mismatch); each property column holds the value to write, or
-- null when that property has no correctable finding. `mrr` has 2 decimals.

with

findings as (
    select
        finding_id,
        kind,
        hubspot_company_id,
        expected_value
    from {{ ref('rec_findings') }}
    where is_corrected_by_sync and hubspot_company_id is not null
)

select
    cast(hubspot_company_id as varchar) as hubspot_company_id,
    cast(max(case when kind = 'mrr_mismatch' then expected_value end) as decimal(38, 2)) as mrr,
    cast(max(case when kind = 'status_mismatch' then expected_value end) as varchar) as subscription_status,
    cast(max(case when kind = 'missing_stripe_id' then expected_value end) as varchar) as stripe_customer_id,
    cast(max(case when kind = 'lifecycle_mismatch' then expected_value end) as varchar) as lifecyclestage,
    cast({{ recon.sorted_agg('finding_id', ',') }} as varchar) as finding_ids
from findings
group by hubspot_company_id
