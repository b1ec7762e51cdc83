-- The MRR bridge, one row per month (mrr.md §9): opening MRR (the month before's closing),
-- the movements by type, and closing MRR, all in the reporting currency. For every month
-- opening + new + expansion + contraction + churn + reactivation = closing
-- (tests/dbt/assert_mrr_bridge_balances.sql).

with

mrr as (
    select
        month,
        previous_mrr_reporting,
        mrr_reporting,
        movement,
        movement_amount
    from {{ ref('fct_mrr') }}
),

months as (
    select
        month,
        is_current_month
    from {{ ref('int_reporting_months') }}
),

movements as (
    select
        month,
        sum(previous_mrr_reporting) as opening_mrr,
        sum(case when movement = 'new' then movement_amount else 0 end) as new_mrr,
        sum(case when movement = 'expansion' then movement_amount else 0 end) as expansion_mrr,
        sum(case when movement = 'contraction' then movement_amount else 0 end) as contraction_mrr,
        sum(case when movement = 'churn' then movement_amount else 0 end) as churn_mrr,
        sum(case when movement = 'reactivation' then movement_amount else 0 end) as reactivation_mrr,
        sum(mrr_reporting) as closing_mrr,
        sum(case when previous_mrr_reporting > 0 then 1 else 0 end) as opening_customers,
        sum(case when movement = 'new' then 1 else 0 end) as new_customers,
        sum(case when movement = 'expansion' then 1 else 0 end) as expansion_customers,
        sum(case when movement = 'contraction' then 1 else 0 end) as contraction_customers,
        sum(case when movement = 'churn' then 1 else 0 end) as churned_customers,
        sum(case when movement = 'reactivation' then 1 else 0 end) as reactivated_customers,
        sum(case when mrr_reporting > 0 then 1 else 0 end) as closing_customers
    from mrr
    group by month
)

select
    cast(months.month as date) as month,
    cast('{{ recon.reporting_currency() }}' as varchar) as reporting_currency,
    {{ recon.to_money('coalesce(movements.opening_mrr, 0)') }} as opening_mrr,
    {{ recon.to_money('coalesce(movements.new_mrr, 0)') }} as new_mrr,
    {{ recon.to_money('coalesce(movements.expansion_mrr, 0)') }} as expansion_mrr,
    {{ recon.to_money('coalesce(movements.contraction_mrr, 0)') }} as contraction_mrr,
    {{ recon.to_money('coalesce(movements.churn_mrr, 0)') }} as churn_mrr,
    {{ recon.to_money('coalesce(movements.reactivation_mrr, 0)') }} as reactivation_mrr,
    {{ recon.to_money(
        'coalesce(movements.new_mrr, 0) + coalesce(movements.expansion_mrr, 0)'
        ~ ' + coalesce(movements.contraction_mrr, 0) + coalesce(movements.churn_mrr, 0)'
        ~ ' + coalesce(movements.reactivation_mrr, 0)'
    ) }} as net_new_mrr,
    {{ recon.to_money('coalesce(movements.closing_mrr, 0)') }} as closing_mrr,
    {{ recon.to_money('12 * coalesce(movements.closing_mrr, 0)') }} as closing_arr,
    cast(coalesce(movements.opening_customers, 0) as integer) as opening_customers,
    cast(coalesce(movements.new_customers, 0) as integer) as new_customers,
    cast(coalesce(movements.expansion_customers, 0) as integer) as expansion_customers,
    cast(coalesce(movements.contraction_customers, 0) as integer) as contraction_customers,
    cast(coalesce(movements.churned_customers, 0) as integer) as churned_customers,
    cast(coalesce(movements.reactivated_customers, 0) as integer) as reactivated_customers,
    cast(coalesce(movements.closing_customers, 0) as integer) as closing_customers,
    cast(months.is_current_month as boolean) as is_current_month
from months
left join movements
    on months.month = movements.month
