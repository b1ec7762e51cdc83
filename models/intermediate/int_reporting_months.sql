-- One row per calendar month (UTC) from the month of the earliest subscription version to
-- the month of `as_of`, with the instant a month's MRR is measured at (mrr.md §7): the last
-- second of the month (Stripe's clock has whole seconds), or `as_of` for the current month.

with

as_of as (
    select * from {{ ref('int_as_of') }}
),

versions as (
    select * from {{ ref('int_subscription_versions_unioned') }}
),

bounds as (
    select
        {{ recon.month_start_of_unix('min(versions.valid_from_unix)') }} as first_month,
        max(as_of.as_of_month) as last_month,
        max(as_of.as_of_unix) as as_of_unix
    from versions
    cross join as_of
),

months as (
    select
        month_series.month_start as month,
        bounds.as_of_unix
    from bounds
    cross join {{ recon.month_series('bounds.first_month', 'bounds.last_month', 'month_series') }}
    where bounds.first_month <= bounds.last_month
)

select
    month,
    {{ recon.date_to_unix(recon.add_months('month', 1)) }} - 1 as month_end_unix,
    case
        when {{ recon.date_to_unix(recon.add_months('month', 1)) }} - 1 < as_of_unix
            then {{ recon.date_to_unix(recon.add_months('month', 1)) }} - 1
        else as_of_unix
    end as snapshot_unix,
    {{ recon.date_to_unix(recon.add_months('month', 1)) }} - 1 >= as_of_unix as is_current_month
from months
