{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='subscription_id',
        on_schema_change='append_new_columns',
        post_hook="{{ recon.delete_versions_gone() }}",
    )
}}

-- The history of every subscription: one row per version, valid from `valid_from` until
-- `valid_to` (mrr.md §6), with its status, items and discounts as of that version.
-- Incremental (the history grows with every event): a build rewrites the subscriptions whose
-- versions were rebuilt since this model's last build, and those whose MRR inputs changed
-- (int_subscription_mrr_inputs: an item priced again in place when its price's tiers arrive,
-- or a change of this model's code, which marks every subscription changed), all their
-- versions; the post-hook removes the versions that no longer exist.
-- depends_on: {{ ref('int_subscription_mrr_inputs') }}

{%- set incremental = recon.is_incremental_with(['built_at']) %}

with

{% if incremental %}
    changed_subscriptions as (
        select rebuilt.subscription_id
        from {{ ref('int_subscription_versions_unioned') }} as rebuilt
        where {{ recon.built_since_last_build('rebuilt') }}
        union
        {{ recon.changed_since_last_build('subscription_id') }}
    ),
{% endif %}

versions as (
    select
        version_id,
        subscription_id,
        version_number,
        customer_id,
        version_source,
        event_id,
        event_type,
        is_order_tied,
        valid_from,
        valid_to,
        valid_to_unix,
        status,
        is_collection_paused,
        currency,
        api_version
    from {{ ref('int_subscription_versions_unioned') }}
    {% if incremental %}
        where subscription_id in (select changed_subscriptions.subscription_id from changed_subscriptions)
    {% endif %}
),

items as (
    select
        version_id,
        item_position,
        price_id,
        quantity,
        is_counted,
        monthly_amount
    from {{ ref('int_subscription_items_priced') }}
    {% if incremental %}
        where version_id in (select versions.version_id from versions)
    {% endif %}
),

discounts_attached as (
    select
        version_id,
        discount_id,
        discount_level,
        discount_position,
        subscription_item_id
    from {{ ref('int_subscription_discounts_attached') }}
    {% if incremental %}
        where version_id in (select versions.version_id from versions)
    {% endif %}
),

item_summaries as (
    select
        version_id,
        count(*) as n_items,
        sum(case when is_counted then monthly_amount else 0 end) as gross_monthly_amount,
        {{ recon.ordered_agg("price_id || ' x' || cast(quantity as varchar)", 'item_position') }} as items
    from items
    group by version_id
),

discount_summaries as (
    select
        version_id,
        {{ recon.ordered_agg(
            'discount_id', 'discount_level, discount_position, subscription_item_id, discount_id'
        ) }} as discount_ids
    from discounts_attached
    group by version_id
)

select
    cast(versions.version_id as varchar) as version_id,
    cast(versions.subscription_id as varchar) as subscription_id,
    cast(versions.version_number as integer) as version_number,
    cast(versions.customer_id as varchar) as customer_id,
    cast(versions.version_source as varchar) as version_source,
    cast(versions.event_id as varchar) as event_id,
    cast(versions.event_type as varchar) as event_type,
    cast(versions.is_order_tied as boolean) as is_order_tied,
    cast(versions.valid_from as timestamp) as valid_from,
    cast(versions.valid_to as timestamp) as valid_to,
    cast(versions.valid_to_unix is null as boolean) as is_latest,
    cast(versions.status as varchar) as status,
    cast(versions.is_collection_paused as boolean) as is_collection_paused,
    cast(versions.currency as varchar) as currency,
    cast(coalesce(item_summaries.n_items, 0) as integer) as n_items,
    cast(item_summaries.items as varchar) as items,
    {{ recon.to_money('coalesce(item_summaries.gross_monthly_amount, 0)') }} as gross_monthly_amount,
    cast(discount_summaries.discount_ids as varchar) as discount_ids,
    cast(versions.api_version as varchar) as api_version,
    {{ recon.build_started_at() }} as built_at
from versions
left join item_summaries
    on versions.version_id = item_summaries.version_id
left join discount_summaries
    on versions.version_id = discount_summaries.version_id
