{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='version_id',
        on_schema_change='append_new_columns',
        post_hook="{{ recon.delete_versions_gone() }}",
    )
}}

-- The discounts attached to each subscription version, in the order they apply: each
-- item's own discounts (its `discounts` array), then the subscription's (its `discounts`
-- array, then the single `discount` of older API versions when not already listed).
-- Elements are discount ids (events) or discount objects (expanded listings).
-- Incremental: only the versions rebuilt since the last build are read (a version's
-- discounts never change); rows of versions that no longer exist are removed after the build.

{#- Each part below reads the versions it needs straight from the table, in a subquery, not
    from a shared CTE: a CTE read three times is materialised whole (every version's JSON),
    and DuckDB streams the unnesting (recon.json_array_rows) only over a table or a subquery
    (DECISIONLOG "Models: memory"). -#}
{%- set incremental = recon.is_incremental_with(['built_at']) -%}
{%- set built_since_last_build = recon.built_since_last_build('all_versions') %}

with

subscription_level as (
    select
        versions.version_id,
        versions.subscription_id,
        versions.built_at,
        'subscription' as discount_level,
        cast(null as varchar) as subscription_item_id,
        subscription_discount.idx + 1 as discount_position,
        case
            when {{ recon.json_type('subscription_discount.value_json') }} = 'string'
                then {{ recon.json_str('subscription_discount.value_json') }}
            else {{ recon.json_str('subscription_discount.value_json', 'id') }}
        end as discount_id
    from (
        select
            all_versions.version_id,
            all_versions.subscription_id,
            all_versions.built_at,
            all_versions.discounts_json
        from {{ ref('int_subscription_versions_unioned') }} as all_versions
        {% if incremental %}
            where {{ built_since_last_build }}
        {% endif %}
    ) as versions
    {{ recon.json_array_rows('versions.discounts_json', 'subscription_discount') }}
),

legacy_subscription_level as (
    select
        versions.version_id,
        versions.subscription_id,
        versions.built_at,
        'subscription' as discount_level,
        cast(null as varchar) as subscription_item_id,
        1000 as discount_position,
        {{ recon.discount_id('versions.discount_json') }} as discount_id
    from (
        select
            all_versions.version_id,
            all_versions.subscription_id,
            all_versions.built_at,
            all_versions.discount_json
        from {{ ref('int_subscription_versions_unioned') }} as all_versions
        {% if incremental %}
            where {{ built_since_last_build }}
        {% endif %}
    ) as versions
    where {{ recon.json_type('versions.discount_json') }} = 'object'
),

item_level as (
    select
        version_items.version_id,
        version_items.subscription_id,
        version_items.built_at,
        'item' as discount_level,
        version_items.subscription_item_id,
        item_discount.idx + 1 as discount_position,
        case
            when {{ recon.json_type('item_discount.value_json') }} = 'string'
                then {{ recon.json_str('item_discount.value_json') }}
            else {{ recon.json_str('item_discount.value_json', 'id') }}
        end as discount_id
    from (
        select
            versions.version_id,
            versions.subscription_id,
            versions.built_at,
            {{ recon.json_str('subscription_item.value_json', 'id') }} as subscription_item_id,
            {{ recon.json_get('subscription_item.value_json', 'discounts') }} as item_discounts_json
        from (
            -- few versions have an item with discounts: only these are unnested (a cheap test
            -- of the text first)
            select
                all_versions.version_id,
                all_versions.subscription_id,
                all_versions.built_at,
                all_versions.items_json
            from {{ ref('int_subscription_versions_unioned') }} as all_versions
            where
                {{ recon.json_may_hold_nonempty_array('all_versions.items_json', 'discounts') }}
            {% if incremental %}
                and {{ built_since_last_build }}
            {% endif %}
        ) as versions
        {{ recon.json_array_rows('versions.items_json', 'subscription_item') }}
    ) as version_items
    {{ recon.json_array_rows('version_items.item_discounts_json', 'item_discount') }}
)

select * from subscription_level
union all
select * from legacy_subscription_level
where not exists (
        select 1
        from subscription_level
        where
            subscription_level.version_id = legacy_subscription_level.version_id
            and subscription_level.discount_id = legacy_subscription_level.discount_id
    )
union all
select * from item_level
