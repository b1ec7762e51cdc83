-- One row per HubSpot owner: those the owners API lists (archived ones included) and those
-- a company or deal names that the API does not list. An owner is active only when listed
-- and not archived (reconciliation.md §1).

with

owners as (
    select
        owner_id,
        email,
        first_name,
        last_name,
        is_archived
    from {{ ref('stg_hubspot__owners') }}
),

companies as (
    select hubspot_owner_id
    from {{ ref('stg_hubspot__companies') }}
),

deals as (
    select hubspot_owner_id
    from {{ ref('stg_hubspot__deals') }}
),

referenced as (
    select hubspot_owner_id as owner_id
    from companies
    where hubspot_owner_id is not null
    union
    select hubspot_owner_id as owner_id
    from deals
    where hubspot_owner_id is not null
),

all_owners as (
    select
        owner_id,
        email,
        first_name,
        last_name,
        is_archived,
        true as is_listed
    from owners
    union all
    select
        referenced.owner_id,
        cast(null as varchar) as email,
        cast(null as varchar) as first_name,
        cast(null as varchar) as last_name,
        cast(null as boolean) as is_archived,
        false as is_listed
    from referenced
    where not exists (
            select 1
            from owners
            where owners.owner_id = referenced.owner_id
        )
)

select
    cast(owner_id as varchar) as owner_id,
    cast(email as varchar) as email,
    cast(first_name as varchar) as first_name,
    cast(last_name as varchar) as last_name,
    cast(
        coalesce(
            nullif(trim(coalesce(first_name, '') || ' ' || coalesce(last_name, '')), ''),
            email,
            'owner ' || owner_id
        ) as varchar
    ) as owner_name,
    cast(is_listed as boolean) as is_listed,
    cast(coalesce(is_archived, false) as boolean) as is_archived,
    cast(is_listed and not coalesce(is_archived, false) as boolean) as is_active
from all_owners
