-- One row per discount id with its coupon's terms: which customer, subscription or item it
-- belongs to, its start and end, when a `customer.discount.deleted` event removed it, and
-- the coupon it applies (resolved through int_coupons_resolved; a coupon never seen leaves
-- `is_coupon_resolved` false and the discount is ignored and flagged, mrr.md §5).

with

discounts_observed as (
    select * from {{ ref('int_discounts_observed') }}
),

coupons as (
    select * from {{ ref('int_coupons_resolved') }}
),

ranked_sightings as (
    select
        discounts_observed.*,
        row_number() over (
            partition by discounts_observed.discount_id
            order by
                case when discounts_observed.coupon_id is not null then 0 else 1 end,
                discounts_observed.observed_unix desc,
                discounts_observed.observed_in asc
        ) as sighting_rank,
        min(
            case
                when discounts_observed.observed_in = 'customer.discount.deleted'
                    then discounts_observed.observed_unix
            end
        )
            over (partition by discounts_observed.discount_id) as deleted_unix
    from discounts_observed
)

select
    ranked_sightings.discount_id,
    case
        when ranked_sightings.subscription_item_id is not null then 'item'
        when ranked_sightings.subscription_id is not null then 'subscription'
        else 'customer'
    end as discount_level,
    ranked_sightings.customer_id,
    ranked_sightings.subscription_id,
    ranked_sightings.subscription_item_id,
    ranked_sightings.coupon_id,
    ranked_sightings.start_unix,
    ranked_sightings.end_unix,
    ranked_sightings.deleted_unix,
    coupons.coupon_id is not null as is_coupon_resolved,
    coupons.percent_off,
    coupons.amount_off,
    coupons.currency as amount_off_currency,
    coupons.duration,
    coupons.duration_in_months,
    coupons.applies_to_products_json,
    coupons.currency_options_json,
    coupons.is_deleted as is_coupon_deleted,
    coupons.resolved_from as coupon_resolved_from
from ranked_sightings
left join coupons
    on ranked_sightings.coupon_id = coupons.coupon_id
where ranked_sightings.sighting_rank = 1
