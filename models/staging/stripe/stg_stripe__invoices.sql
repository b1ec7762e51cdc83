with

source as (
    select * from {{ recon.raw_source('stripe', 'invoices') }}
),

renamed as (
    select
        id as invoice_id,
        {{ recon.json_str('payload', 'customer') }} as customer_id,
        coalesce(
            {{ recon.json_str('payload', 'parent.subscription_details.subscription') }},
            {{ recon.json_str('payload', 'subscription') }}
        ) as subscription_id,
        {{ recon.json_str('payload', 'status') }} as status,
        upper({{ recon.json_str('payload', 'currency') }}) as currency,
        cast({{ recon.json_str('payload', 'amount_due') }} as bigint) as amount_due,
        cast({{ recon.json_str('payload', 'amount_paid') }} as bigint) as amount_paid,
        cast({{ recon.json_str('payload', 'total') }} as bigint) as total,
        cast({{ recon.json_str('payload', 'period_start') }} as bigint) as period_start_unix,
        cast({{ recon.json_str('payload', 'period_end') }} as bigint) as period_end_unix,
        coalesce(deleted, false) as is_deleted,
        created as created_unix,
        {{ recon.from_unix('created') }} as created_at,
        livemode as is_livemode,
        api_version,
        _recon_fetched_at as fetched_at
    from source
)

select * from renamed
