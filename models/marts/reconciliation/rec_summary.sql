-- One row per finding kind (every kind of reconciliation.md §2, found or not): how many
-- findings, on how many companies and customers, and the MRR at stake.

with

findings as (
    select
        kind,
        hubspot_company_id,
        stripe_customer_id,
        mrr_at_stake
    from {{ ref('rec_findings') }}
),

kind_owners as (
    select
        kind,
        owner_team,
        is_corrected_by_sync
    from {{ ref('finding_kind_owners') }}
),

per_kind as (
    select
        kind,
        count(*) as n_findings,
        count(distinct hubspot_company_id) as n_companies,
        count(distinct stripe_customer_id) as n_customers,
        sum(mrr_at_stake) as mrr_at_stake
    from findings
    group by kind
)

select
    cast(kind_owners.kind as varchar) as kind,
    cast(kind_owners.owner_team as varchar) as owner_team,
    cast(kind_owners.is_corrected_by_sync as boolean) as is_corrected_by_sync,
    cast(coalesce(per_kind.n_findings, 0) as integer) as n_findings,
    cast(coalesce(per_kind.n_companies, 0) as integer) as n_companies,
    cast(coalesce(per_kind.n_customers, 0) as integer) as n_customers,
    {{ recon.to_money('coalesce(per_kind.mrr_at_stake, 0)') }} as mrr_at_stake
from kind_owners
left join per_kind
    on kind_owners.kind = per_kind.kind
