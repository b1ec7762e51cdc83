{#- the models whose code is part of the fingerprint (recon's build state reads the same list
    from meta, so that editing one of them builds this model again) -#}
{%- set code_of = ['int_subscription_mrr_snapshotted', 'fct_mrr', 'fct_subscription_versions'] -%}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='subscription_id',
        on_schema_change='append_new_columns',
        meta={'recon_code_of': code_of},
    )
}}

-- One row per subscription and customer its versions name: a fingerprint (`inputs_md5`) of
-- everything the MRR of that subscription is computed from, and the build that last changed it
-- (`changed_at`). The incremental builds of int_subscription_mrr_snapshotted, fct_mrr and
-- fct_subscription_versions rebuild the subscriptions, and the customers, changed since their
-- own last build.
-- The fingerprint covers, for the subscription: its versions, their priced items, their
-- attached discounts, the resolved terms of those discounts and of its customers' customer-level
-- discounts; and, for every subscription, the build's configuration: the vars the MRR rules
-- read, the currency exponent and fx rate seeds, and the code of the three models. A change in
-- any of them marks the subscription changed, whatever changed it upstream.
-- A subscription-customer pair no longer found keeps a row with a null fingerprint (so that
-- fct_mrr rebuilds that customer too), changed when it went.

{%- set incremental = recon.is_incremental_with(['changed_at']) -%}
{#- the code of the models that read this one: a change in it recomputes every subscription -#}
{%- set model_checksums = [] -%}
{%- if execute -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model' and node.name in code_of -%}
            {%- do model_checksums.append(node.name ~ '=' ~ node.checksum.checksum) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif -%}
{%- set configuration = [
    'statuses=' ~ recon.counted_statuses(),
    'paused=' ~ recon.bool_var('mrr_count_paused_collection'),
    'policy=' ~ recon.mrr_discount_policy(),
    'reporting=' ~ recon.reporting_currency(),
] + (model_checksums | sort) %}

with

versions as (
    select * from {{ ref('int_subscription_versions_unioned') }}
),

discounts_resolved as (
    select * from {{ ref('int_discounts_resolved') }}
),

build_configuration as (
    select
        md5(concat(
            '{{ configuration | join(";") | replace("'", "''") }}',
            '|',
            (
                select {{ recon.sorted_agg(recon.row_md5(['currency', 'exponent']), ',') }}
                from {{ ref('currency_exponents') }}
            ),
            '|',
            (
                select {{ recon.sorted_agg(recon.row_md5(['currency', 'rate_to_reporting']), ',') }}
                from {{ ref('fx_rates') }}
            )
        )) as configuration_md5
),

resolved_discount_rows as (
    select
        discount_id,
        discount_level,
        customer_id,
        {{ recon.row_md5([
            'discount_id', 'discount_level', 'customer_id', 'subscription_id', 'subscription_item_id',
            'coupon_id', 'start_unix', 'end_unix', 'deleted_unix', 'is_coupon_resolved',
            'percent_off', 'amount_off', 'amount_off_currency', 'duration', 'duration_in_months',
            'applies_to_products_json', 'currency_options_json',
        ]) }} as row_md5
    from discounts_resolved
),

subscription_customers as (
    select distinct
        subscription_id,
        coalesce(customer_id, '') as customer_id
    from versions
),

input_rows as (
    select
        subscription_id,
        {{ recon.row_md5([
            "'version'", 'version_id', 'customer_id', 'valid_from_unix', 'valid_to_unix', 'status',
            'currency', 'pause_collection_behavior', 'ended_at_unix',
        ]) }} as row_md5
    from versions

    union all

    select
        subscription_id,
        {{ recon.row_md5([
            "'item'", 'version_id', 'item_position', 'subscription_item_id', 'product_id',
            'monthly_amount', 'is_counted', 'months_numerator', 'months_denominator',
        ]) }} as row_md5
    from {{ ref('int_subscription_items_priced') }}

    union all

    select
        versions.subscription_id,
        md5(concat(
            {{ recon.row_md5([
                "'attached'", 'attached.version_id', 'attached.discount_level',
                'attached.subscription_item_id', 'attached.discount_position', 'attached.discount_id',
            ]) }},
            coalesce(resolved_discount_rows.row_md5, '')
        )) as row_md5
    from {{ ref('int_subscription_discounts_attached') }} as attached
    inner join versions
        on attached.version_id = versions.version_id
    left join resolved_discount_rows
        on attached.discount_id = resolved_discount_rows.discount_id

    union all

    select
        subscription_customers.subscription_id,
        resolved_discount_rows.row_md5
    from subscription_customers
    inner join resolved_discount_rows
        on
            subscription_customers.customer_id = resolved_discount_rows.customer_id
            and resolved_discount_rows.discount_level = 'customer'
),

fingerprints as (
    select
        input_rows.subscription_id,
        md5(concat(
            max(build_configuration.configuration_md5),
            '|',
            {{ recon.sorted_agg('input_rows.row_md5', ',') }}
        )) as inputs_md5
    from input_rows
    cross join build_configuration
    group by input_rows.subscription_id
),

current_pairs as (
    select
        subscription_customers.subscription_id,
        subscription_customers.customer_id,
        fingerprints.inputs_md5
    from subscription_customers
    inner join fingerprints
        on subscription_customers.subscription_id = fingerprints.subscription_id
)

{% if incremental %}
    ,

    known_pairs as (
        select
            subscription_id,
            customer_id,
            inputs_md5,
            changed_at
        from {{ this }}
    ),

    changed_subscriptions as (
        -- a new or changed fingerprint, or a pair gone (not one that was gone already)
        select distinct coalesce(current_pairs.subscription_id, known_pairs.subscription_id) as subscription_id
        from current_pairs
        full outer join known_pairs
            on
                current_pairs.subscription_id = known_pairs.subscription_id
                and current_pairs.customer_id = known_pairs.customer_id
        where current_pairs.inputs_md5 is distinct from known_pairs.inputs_md5
    )

    select
        current_pairs.subscription_id,
        current_pairs.customer_id,
        current_pairs.inputs_md5,
        {{ recon.build_started_at() }} as changed_at
    from current_pairs
    inner join changed_subscriptions
        on current_pairs.subscription_id = changed_subscriptions.subscription_id

    union all

    select
        known_pairs.subscription_id,
        known_pairs.customer_id,
        cast(null as varchar) as inputs_md5,
        case
            when known_pairs.inputs_md5 is null then known_pairs.changed_at
            else {{ recon.build_started_at() }}
        end as changed_at
    from known_pairs
    inner join changed_subscriptions
        on known_pairs.subscription_id = changed_subscriptions.subscription_id
    where not exists (
        select 1
        from current_pairs
        where
            current_pairs.subscription_id = known_pairs.subscription_id
            and current_pairs.customer_id = known_pairs.customer_id
    )
{% else %}
    select
        subscription_id,
        customer_id,
        inputs_md5,
        {{ recon.build_started_at() }} as changed_at
    from current_pairs
{% endif %}
