-- Each owner's book of business: the live companies they own, how many pay, their MRR and
-- ARR (reporting currency), and the MRR their accounts churned in the last 90 days before
-- `as_of` (churn rows of fct_mrr measured in that window, for the customers matched to the
-- owner's companies).

with

owners as (
    select
        owner_id,
        owner_name,
        email,
        is_active
    from {{ ref('dim_owners') }}
),

ownership as (
    select
        hubspot_company_id,
        owner_id,
        is_paying,
        mrr_reporting
    from {{ ref('fct_account_ownership') }}
),

customers as (
    select
        customer_id,
        hubspot_company_id
    from {{ ref('dim_customers') }}
),

mrr as (
    select
        customer_id,
        movement,
        movement_amount,
        measured_at
    from {{ ref('fct_mrr') }}
),

as_of as (
    select as_of_unix
    from {{ ref('int_as_of') }}
),

books as (
    select
        owner_id,
        count(*) as n_accounts,
        sum(case when is_paying then 1 else 0 end) as n_paying_accounts,
        sum(mrr_reporting) as mrr_reporting
    from ownership
    where owner_id is not null
    group by owner_id
),

recent_churn as (
    select
        ownership.owner_id,
        -sum(mrr.movement_amount) as churned_mrr,
        count(distinct mrr.customer_id) as n_churned_customers
    from mrr
    inner join customers
        on mrr.customer_id = customers.customer_id
    inner join ownership
        on customers.hubspot_company_id = ownership.hubspot_company_id
    cross join as_of
    where
        mrr.movement = 'churn'
        and {{ recon.to_unix('mrr.measured_at') }} > as_of.as_of_unix - 90 * 86400
        and {{ recon.to_unix('mrr.measured_at') }} <= as_of.as_of_unix
    group by ownership.owner_id
)

select
    cast(owners.owner_id as varchar) as owner_id,
    cast(owners.owner_name as varchar) as owner_name,
    cast(owners.email as varchar) as email,
    cast(owners.is_active as boolean) as is_active,
    cast(coalesce(books.n_accounts, 0) as integer) as n_accounts,
    cast(coalesce(books.n_paying_accounts, 0) as integer) as n_paying_accounts,
    {{ recon.to_money('coalesce(books.mrr_reporting, 0)') }} as mrr_reporting,
    {{ recon.to_money('12 * coalesce(books.mrr_reporting, 0)') }} as arr_reporting,
    {{ recon.to_money('coalesce(recent_churn.churned_mrr, 0)') }} as churned_mrr_last_90_days,
    cast(coalesce(recent_churn.n_churned_customers, 0) as integer) as n_churned_customers_last_90_days
from owners
left join books
    on owners.owner_id = books.owner_id
left join recent_churn
    on owners.owner_id = recent_churn.owner_id
