-- One row per coupon id ever referenced or listed, with its terms. A live coupon is read
-- from the coupons list; a deleted one (deleted coupons vanish from the list) still applies
-- with the coupon as last seen: its last listed payload, `coupon.*` events, or coupon
-- objects expanded inside discounts (mrr.md §5).

with

coupons as (
    select * from {{ ref('stg_stripe__coupons') }}
),

events as (
    select * from {{ ref('int_stripe_events_deduped') }}
),

discounts_observed as (
    select * from {{ ref('int_discounts_observed') }}
),

coupon_documents as (
    select
        coupon_json,
        {{ recon.to_unix('fetched_at') }} as observed_unix,
        case when is_deleted then 'coupons_deleted' else 'coupons' end as observed_in,
        not is_deleted as is_listed_live,
        is_deleted as is_known_deleted
    from coupons

    union all
    select
        data_object_json as coupon_json,
        created_unix as observed_unix,
        event_type as observed_in,
        false as is_listed_live,
        event_type = 'coupon.deleted' as is_known_deleted
    from events
    where event_type like 'coupon.%'

    union all
    select
        coupon_json,
        observed_unix,
        'discount:' || observed_in as observed_in,
        false as is_listed_live,
        false as is_known_deleted
    from discounts_observed
    where coupon_json is not null
),

coupon_sightings as (
    select
        {{ recon.coupon_columns('coupon_json') }}
        observed_unix,
        observed_in,
        is_listed_live,
        is_known_deleted
    from coupon_documents
),

ranked_sightings as (
    select
        coupon_sightings.*,
        row_number() over (
            partition by coupon_sightings.coupon_id
            order by
                case when coupon_sightings.is_listed_live then 0 else 1 end,
                case
                    when coupon_sightings.percent_off is not null or coupon_sightings.amount_off is not null then 0
                    else 1
                end,
                coupon_sightings.observed_unix desc,
                coupon_sightings.observed_in asc
        ) as sighting_rank,
        row_number() over (
            partition by coupon_sightings.coupon_id
            order by
                case when coupon_sightings.applies_to_products_json is not null then 0 else 1 end,
                case when coupon_sightings.is_listed_live then 0 else 1 end,
                coupon_sightings.observed_unix desc,
                coupon_sightings.observed_in asc
        ) as applies_to_rank,
        row_number() over (
            partition by coupon_sightings.coupon_id
            order by
                case when coupon_sightings.currency_options_json is not null then 0 else 1 end,
                case when coupon_sightings.is_listed_live then 0 else 1 end,
                coupon_sightings.observed_unix desc,
                coupon_sightings.observed_in asc
        ) as currency_options_rank,
        max(case when coupon_sightings.is_known_deleted then 1 else 0 end)
            over (partition by coupon_sightings.coupon_id) as n_deleted_sightings,
        max(case when coupon_sightings.is_listed_live then 1 else 0 end)
            over (partition by coupon_sightings.coupon_id) as n_live_sightings,
        max(coupon_sightings.observed_unix) over (partition by coupon_sightings.coupon_id) as last_seen_unix
    from coupon_sightings
    where coupon_sightings.coupon_id is not null
)

select
    best.coupon_id,
    best.percent_off,
    best.amount_off,
    best.currency,
    best.duration,
    best.duration_in_months,
    with_applies_to.applies_to_products_json,
    with_currency_options.currency_options_json,
    best.n_live_sightings = 0 and best.n_deleted_sightings = 1 as is_deleted,
    best.n_live_sightings = 1 as is_listed,
    best.observed_in as resolved_from,
    best.last_seen_unix
from ranked_sightings as best
left join ranked_sightings as with_applies_to
    on
        best.coupon_id = with_applies_to.coupon_id
        and with_applies_to.applies_to_rank = 1
left join ranked_sightings as with_currency_options
    on
        best.coupon_id = with_currency_options.coupon_id
        and with_currency_options.currency_options_rank = 1
where best.sighting_rank = 1
