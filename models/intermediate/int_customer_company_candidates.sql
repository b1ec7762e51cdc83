-- The HubSpot companies each Stripe customer could be, by the identity rules of
-- reconciliation.md §1, tried in order; only the deciding rule's candidates are kept (the
-- first rule that yields at least one live company). Deleted customers and archived
-- companies never match.
-- 1 stripe_id: the company's stripe_customer_id is the customer's id;
-- 2 metadata: the customer's metadata.hubspot_company_id is the company's id;
-- 3 contact_email: a live contact with the customer's e-mail (trimmed of any white space,
--   tabs too; case-insensitive)
--   has the company as its primary company (association contact→company type 1);
-- 4 email_domain: the customer's e-mail domain is the company's domain (both normalised,
--   int_domains_normalized), unless it is a free e-mail domain.

with

customers as (
    select * from {{ ref('stg_stripe__customers') }}
    where not is_deleted
),

companies as (
    select * from {{ ref('stg_hubspot__companies') }}
    where not is_archived
),

contacts as (
    select * from {{ ref('stg_hubspot__contacts') }}
    where not is_archived
),

associations as (
    select * from {{ ref('stg_hubspot__associations') }}
),

domains as (
    select * from {{ ref('int_domains_normalized') }}
),

free_email_domains as (
    select * from {{ ref('free_email_domains') }}
),

by_stripe_id as (
    select
        customers.customer_id,
        companies.company_id,
        1 as rule_number,
        'stripe_id' as match_method
    from customers
    inner join companies
        on customers.customer_id = companies.stripe_customer_id
),

by_metadata as (
    select
        customers.customer_id,
        companies.company_id,
        2 as rule_number,
        'metadata' as match_method
    from customers
    inner join companies
        on trim(customers.metadata_hubspot_company_id) = companies.company_id
),

primary_contact_companies as (
    select distinct
        {{ recon.lower_text(recon.trim_space('contacts.email')) }} as email,
        associations.to_id as company_id
    from contacts
    inner join associations
        on
            associations.from_object_type = 'contacts'
            and associations.to_object_type = 'companies'
            and contacts.contact_id = associations.from_id
    where
        associations.association_type_id = 1
        and coalesce(associations.association_category, 'HUBSPOT_DEFINED') = 'HUBSPOT_DEFINED'
        and contacts.email is not null
),

by_contact_email as (
    select distinct
        customers.customer_id,
        companies.company_id,
        3 as rule_number,
        'contact_email' as match_method
    from customers
    inner join primary_contact_companies
        on {{ recon.lower_text(recon.trim_space('customers.email')) }} = primary_contact_companies.email
    inner join companies
        on primary_contact_companies.company_id = companies.company_id
),

customer_domains as (
    select
        customers.customer_id,
        domains.normalized_domain
    from customers
    inner join domains
        on {{ recon.email_domain('customers.email') }} = domains.domain_text
    where
        domains.normalized_domain is not null
        and {{ recon.trim_space('customers.email') }} <> ''
        and not exists (
            select 1
            from free_email_domains
            where lower(trim(free_email_domains.domain)) = domains.normalized_domain
        )
),

company_domains as (
    select
        companies.company_id,
        domains.normalized_domain
    from companies
    inner join domains
        on companies.domain = domains.domain_text
    where domains.normalized_domain is not null
),

by_email_domain as (
    select
        customer_domains.customer_id,
        company_domains.company_id,
        4 as rule_number,
        'email_domain' as match_method
    from customer_domains
    inner join company_domains
        on customer_domains.normalized_domain = company_domains.normalized_domain
),

all_candidates as (
    select * from by_stripe_id
    union all
    select * from by_metadata
    union all
    select * from by_contact_email
    union all
    select * from by_email_domain
),

deciding as (
    select
        all_candidates.*,
        min(all_candidates.rule_number) over (partition by all_candidates.customer_id) as deciding_rule_number
    from all_candidates
)

select
    customer_id,
    company_id as hubspot_company_id,
    rule_number,
    match_method,
    count(*) over (partition by customer_id) as n_candidates
from deciding
where rule_number = deciding_rule_number
