{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['customer_id', 'month'],
        on_schema_change='append_new_columns',
        post_hook="{{ recon.delete_key_markers(['built_at']) }}",
    )
}}

-- One row per Stripe customer and calendar month where the MRR of that month or of the
-- month before is above 0 (mrr.md §7-9): MRR in the billing and the reporting currency, the
-- reporting MRR of the month before, and the movement between them.
-- Incremental: a build recomputes every month of the customers whose subscriptions changed
-- since this model's last build (int_subscription_mrr_inputs: their customers before and
-- after), and every customer from the earlier of the newest month built last time and the
-- current month on, from the month before it (the movement compares with it) and with
-- whether the customer paid before that (from the rows kept). The rows it had in that scope
-- and no longer computes are replaced by key markers (`built_at` null) that the post-hook
-- deletes; so are the rows of an older version of this table, which had no `built_at`.
-- depends_on: {{ ref('int_subscription_mrr_inputs') }}

{%- set reporting_currency = recon.reporting_currency() %}
{%- set incremental = recon.is_incremental_with(['built_at']) %}
{%- set row_columns = [
    'customer_id', 'month', 'currency', 'mrr', 'mrr_reporting', 'previous_mrr_reporting',
    'movement', 'movement_amount', 'reporting_currency', 'arr_reporting',
    'n_paying_subscriptions', 'paying_subscription_ids', 'is_current_month', 'measured_at',
] %}

with

{% if incremental %}
    rebuild_scope as (
        {{ recon.rebuild_scope_from_month() }}
    ),

    changed_customers as (
        {{ recon.changed_since_last_build('customer_id') }}
    ),

    paid_before_scope as (
        -- the customers not changed that paid before the month before the scope (kept rows)
        select distinct known.customer_id
        from {{ this }} as known
        where
            known.month < {{ recon.add_months('(select rebuild_scope.from_month from rebuild_scope)', -1) }}
            and known.mrr_reporting > 0
            and known.customer_id not in (select changed_customers.customer_id from changed_customers)
    ),
{% endif %}

subscription_mrr as (
    select
        customer_id,
        month,
        subscription_id,
        currency,
        mrr
    from {{ ref('int_subscription_mrr_snapshotted') }}
    {% if incremental %}
        where
            month >= {{ recon.add_months('(select rebuild_scope.from_month from rebuild_scope)', -1) }}
            or customer_id in (select changed_customers.customer_id from changed_customers)
    {% endif %}
),

months as (
    select
        month,
        snapshot_unix,
        is_current_month
    from {{ ref('int_reporting_months') }}
),

fx_rates as (
    select
        currency,
        rate_to_reporting
    from {{ ref('fx_rates') }}
),

reporting_rate as (
    select rate_to_reporting
    from fx_rates
    where upper(currency) = '{{ reporting_currency }}'
),

subscription_mrr_reporting as (
    select
        subscription_mrr.customer_id,
        subscription_mrr.month,
        subscription_mrr.subscription_id,
        subscription_mrr.currency,
        subscription_mrr.mrr,
        {{ recon.money_div(
            'subscription_mrr.mrr * fx_rates.rate_to_reporting',
            'reporting_rate.rate_to_reporting'
        ) }} as mrr_reporting
    from subscription_mrr
    left join fx_rates
        on subscription_mrr.currency = upper(fx_rates.currency)
    cross join reporting_rate
),

customer_month_mrr as (
    select
        customer_id,
        month,
        sum(mrr_reporting) as mrr_reporting,
        {{ recon.distinct_count_0_1_many('case when mrr > 0 then currency end') }}
            as n_billing_currencies,
        min(case when mrr > 0 then currency end) as billing_currency,
        sum(case when mrr > 0 then mrr else 0 end) as mrr_billing,
        sum(case when mrr > 0 then 1 else 0 end) as n_paying_subscriptions,
        {{ recon.sorted_agg("case when mrr > 0 then subscription_id end") }}
            as paying_subscription_ids
    from subscription_mrr_reporting
    group by customer_id, month
),

customer_first_months as (
    select
        customer_id,
        min(month) as first_month
    from customer_month_mrr
    group by customer_id
),

customer_months as (
    -- every month from the customer's first subscription month on, so that "the month
    -- before" always exists
    select
        customer_first_months.customer_id,
        months.month,
        months.snapshot_unix,
        months.is_current_month,
        coalesce(customer_month_mrr.mrr_reporting, 0) as mrr_reporting,
        coalesce(customer_month_mrr.n_billing_currencies, 0) as n_billing_currencies,
        customer_month_mrr.billing_currency,
        coalesce(customer_month_mrr.mrr_billing, 0) as mrr_billing,
        coalesce(customer_month_mrr.n_paying_subscriptions, 0) as n_paying_subscriptions,
        customer_month_mrr.paying_subscription_ids
    from customer_first_months
    inner join months
        on customer_first_months.first_month <= months.month
    left join customer_month_mrr
        on
            customer_first_months.customer_id = customer_month_mrr.customer_id
            and months.month = customer_month_mrr.month
),

with_history as (
    select
        customer_months.customer_id,
        customer_months.month,
        customer_months.snapshot_unix,
        customer_months.is_current_month,
        customer_months.mrr_reporting,
        customer_months.n_billing_currencies,
        customer_months.billing_currency,
        customer_months.mrr_billing,
        customer_months.n_paying_subscriptions,
        customer_months.paying_subscription_ids,
        coalesce(
            lag(customer_months.mrr_reporting) over (
                partition by customer_months.customer_id order by customer_months.month
            ),
            0
        ) as previous_mrr_reporting,
        coalesce(
            max(case when customer_months.mrr_reporting > 0 then 1 else 0 end) over (
                partition by customer_months.customer_id
                order by customer_months.month
                rows between unbounded preceding and 1 preceding
            ),
            0
        ) = 1
        {% if incremental %}
            or customer_months.customer_id in (select paid_before_scope.customer_id from paid_before_scope)
        {% endif %}
            as had_mrr_before,
        lag(case when customer_months.n_billing_currencies = 1 then customer_months.billing_currency end)
            over (partition by customer_months.customer_id order by customer_months.month) as previous_billing_currency
    from customer_months
)

select
    cast(customer_id as varchar) as customer_id,
    cast(month as date) as month,
    cast(
        case
            when n_billing_currencies = 1 then billing_currency
            when n_billing_currencies = 0 then previous_billing_currency
        end as varchar
    ) as currency,
    {{ recon.to_money(
        'case when n_billing_currencies = 1 then mrr_billing when n_billing_currencies = 0 then 0 end'
    ) }} as mrr,
    {{ recon.to_money('mrr_reporting') }} as mrr_reporting,
    {{ recon.to_money('previous_mrr_reporting') }} as previous_mrr_reporting,
    cast(
        case
            when previous_mrr_reporting = 0 and mrr_reporting > 0 and had_mrr_before then 'reactivation'
            when previous_mrr_reporting = 0 and mrr_reporting > 0 then 'new'
            when previous_mrr_reporting > 0 and mrr_reporting = 0 then 'churn'
            when mrr_reporting > previous_mrr_reporting then 'expansion'
            when mrr_reporting < previous_mrr_reporting then 'contraction'
            else 'unchanged'
        end as varchar
    ) as movement,
    {{ recon.to_money('mrr_reporting - previous_mrr_reporting') }} as movement_amount,
    cast('{{ reporting_currency }}' as varchar) as reporting_currency,
    {{ recon.to_money('12 * mrr_reporting') }} as arr_reporting,
    cast(n_paying_subscriptions as integer) as n_paying_subscriptions,
    cast(paying_subscription_ids as varchar) as paying_subscription_ids,
    cast(is_current_month as boolean) as is_current_month,
    cast({{ recon.from_unix('snapshot_unix') }} as timestamp) as measured_at,
    {{ recon.build_started_at() }} as built_at
from with_history
where
    (mrr_reporting > 0 or previous_mrr_reporting > 0)
    and {{ recon.in_rebuild_scope(
        'month', 'customer_id', 'changed_customers', 'customer_id'
    ) if incremental else 'true' }}
{% if incremental %}
    -- key markers: the rows in the rebuilt scope that are no longer computed
    {{ recon.rebuild_scope_markers(
        row_columns, 'customer_id', 'changed_customers', 'with_history',
        'with_history.mrr_reporting > 0 or with_history.previous_mrr_reporting > 0'
    ) }}
{% endif %}
