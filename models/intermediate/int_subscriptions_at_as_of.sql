-- Each subscription's state at `as_of` (the version in effect then) and its MRR then. A
-- subscription that had not started by `as_of` has no row. The version's items JSON is left
-- out: nothing downstream reads it, and copying it was most of this model's cost at L.

with

versions as (
    select * from {{ ref('int_subscription_versions_unioned') }}
),

as_of as (
    select * from {{ ref('int_as_of') }}
),

subscription_mrr as (
    select * from {{ ref('int_subscription_mrr_snapshotted') }}
    where is_current_month
),

version_counts as (
    select
        subscription_id,
        count(*) as n_versions,
        min(valid_from_unix) as first_valid_from_unix,
        max(case when is_order_tied then 1 else 0 end) = 1 as has_tied_events
    from versions
    group by subscription_id
)

select
    versions.subscription_id,
    versions.version_id,
    versions.version_source,
    versions.customer_id,
    versions.status,
    versions.currency,
    versions.pause_collection_behavior,
    versions.is_collection_paused,
    versions.start_date_unix,
    versions.trial_end_unix,
    versions.ended_at_unix,
    versions.valid_from_unix,
    version_counts.n_versions,
    version_counts.first_valid_from_unix,
    version_counts.has_tied_events,
    coalesce(subscription_mrr.is_counted, false) as is_counted,
    {{ recon.to_money('coalesce(subscription_mrr.gross_mrr, 0)') }} as gross_mrr,
    {{ recon.to_money('coalesce(subscription_mrr.mrr, 0)') }} as mrr,
    coalesce(subscription_mrr.n_discounts_applied, 0) as n_discounts_applied,
    subscription_mrr.ignored_discount_ids,
    as_of.as_of_unix
from versions
cross join as_of
inner join version_counts
    on versions.subscription_id = version_counts.subscription_id
left join subscription_mrr
    on versions.subscription_id = subscription_mrr.subscription_id
where
    versions.valid_from_unix <= as_of.as_of_unix
    and (versions.valid_to_unix is null or as_of.as_of_unix < versions.valid_to_unix)
