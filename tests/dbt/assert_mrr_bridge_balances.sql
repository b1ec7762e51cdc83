-- The MRR bridge holds for every month (mrr.md §9):
-- opening + new + expansion + contraction + churn + reactivation = closing, the opening of a
-- month is the closing of the month before, and each movement has its sign. Returns the
-- months that break it.

with

bridge as (
    select * from {{ ref('mrr_bridge') }}
),

mrr as (
    select * from {{ ref('fct_mrr') }}
),

customer_totals as (
    select
        month,
        sum(previous_mrr_reporting) + sum(movement_amount) - sum(mrr_reporting) as imbalance
    from mrr
    group by month
),

bridge_checks as (
    select
        bridge.month,
        bridge.opening_mrr + bridge.new_mrr + bridge.expansion_mrr + bridge.contraction_mrr
        + bridge.churn_mrr + bridge.reactivation_mrr - bridge.closing_mrr as imbalance,
        bridge.opening_mrr - coalesce(
            lag(bridge.closing_mrr) over (order by bridge.month), 0
        ) as opening_gap,
        bridge.new_mrr >= 0
        and bridge.expansion_mrr >= 0
        and bridge.reactivation_mrr >= 0
        and bridge.contraction_mrr <= 0
        and bridge.churn_mrr <= 0 as has_signs_right
    from bridge
),

row_sign_errors as (
    select
        month,
        count(*) as n_rows_with_wrong_sign
    from mrr
    where
        (movement in ('new', 'reactivation', 'expansion') and movement_amount <= 0)
        or (movement in ('contraction', 'churn') and movement_amount >= 0)
        or (movement = 'unchanged' and movement_amount <> 0)
        or (movement = 'churn' and mrr_reporting <> 0)
        or (movement in ('new', 'reactivation') and previous_mrr_reporting <> 0)
    group by month
)

select
    bridge_checks.month,
    bridge_checks.imbalance,
    bridge_checks.opening_gap,
    bridge_checks.has_signs_right,
    customer_totals.imbalance as customer_imbalance,
    row_sign_errors.n_rows_with_wrong_sign
from bridge_checks
left join customer_totals
    on bridge_checks.month = customer_totals.month
left join row_sign_errors
    on bridge_checks.month = row_sign_errors.month
where
    bridge_checks.imbalance <> 0
    or bridge_checks.opening_gap <> 0
    or not bridge_checks.has_signs_right
    or coalesce(customer_totals.imbalance, 0) <> 0
    or coalesce(row_sign_errors.n_rows_with_wrong_sign, 0) > 0
