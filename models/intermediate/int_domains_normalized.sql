-- Every company domain and customer e-mail domain with the form reconciliation.md §1
-- compares: lower case, no scheme, path, port, `www.` or trailing dot, internationalised
-- labels in their punycode form (RFC 3492, as IDNA 2003 / Python's idna codec writes them).
-- Punycode is computed here in portable SQL, one inserted code point per row:
-- for the j-th code point inserted (by value, then position) the encoder's delta is
-- (m - 128) × (h + 1) + (smaller code points before it) for the first, the smaller code
-- points between two equal ones, or (smaller-than-previous after the previous one) + 1
-- + (m - previous - 1) × (h + 1) + (smaller before it) on a new value; each delta is
-- written as a variable-length integer with the bias adapted after the delta before.

with recursive

companies as (
    select * from {{ ref('stg_hubspot__companies') }}
),

customers as (
    select * from {{ ref('stg_stripe__customers') }}
),

numbers as (
    select cast(generated_number as integer) as n
    from ({{ dbt.generate_series(253) }}) as generated_numbers
),

domain_texts as (
    select distinct domain as domain_text
    from companies
    where domain is not null
    union
    select distinct {{ recon.email_domain('email') }} as domain_text
    from customers
    where strpos(email, '@') > 0
),

prepared as materialized (
    select
        domain_text,
        host_name,
        {{ recon.is_ascii('host_name') }}
        and length(host_name) - length(replace(host_name, '.', '')) + 1 <= 253 as is_ascii_host
    from (
        select
            domain_text,
            {{ recon.domain_before_idna('domain_text') }} as host_name
        from domain_texts
    ) as domain_hosts
),

-- Only the host names with a non-ASCII character are split into labels: an ASCII host name
-- (of at most 253 labels, the most `numbers` splits) is its own normalized form, its labels
-- joined again as they were (normalized, below).
labels as (
    select
        prepared.domain_text,
        prepared.host_name,
        numbers.n as label_number,
        split_part(prepared.host_name, '.', numbers.n) as domain_label
    from prepared
    inner join numbers
        on numbers.n <= length(prepared.host_name) - length(replace(prepared.host_name, '.', '')) + 1
    where not prepared.is_ascii_host
),

idn_labels as (
    select distinct domain_label
    from labels
    where not {{ recon.is_ascii('domain_label') }}
),

label_chars as (
    select
        idn_labels.domain_label,
        numbers.n as char_position,
        {{ recon.code_point('substring(idn_labels.domain_label, numbers.n, 1)') }} as code_point
    from idn_labels
    inner join numbers
        on numbers.n <= length(idn_labels.domain_label)
),

label_basics as (
    select
        domain_label,
        sum(case when code_point < 128 then 1 else 0 end) as n_basic,
        coalesce(
            {{ recon.ordered_agg(
                'case when code_point < 128 then ' ~ recon.char_of('code_point') ~ ' end',
                'char_position',
                ''
            ) }},
            ''
        ) as basic_text
    from label_chars
    group by domain_label
),

insertions as (
    select
        domain_label,
        char_position,
        code_point,
        row_number() over (partition by domain_label order by code_point, char_position) - 1 as insertion_number
    from label_chars
    where code_point >= 128
),

insertions_with_previous as (
    select
        insertions.*,
        lag(insertions.code_point) over (
            partition by insertions.domain_label order by insertions.insertion_number
        ) as previous_code_point,
        lag(insertions.char_position) over (
            partition by insertions.domain_label order by insertions.insertion_number
        ) as previous_position
    from insertions
),

insertion_counts as (
    select
        insertions_with_previous.domain_label,
        insertions_with_previous.insertion_number,
        insertions_with_previous.code_point,
        insertions_with_previous.previous_code_point,
        label_basics.n_basic,
        sum(
            case
                when
                    label_chars.char_position < insertions_with_previous.char_position
                    and label_chars.code_point < insertions_with_previous.code_point
                    then 1
                else 0
            end
        ) as n_smaller_before,
        sum(
            case
                when
                    label_chars.char_position > insertions_with_previous.previous_position
                    and label_chars.char_position < insertions_with_previous.char_position
                    and label_chars.code_point < insertions_with_previous.code_point
                    then 1
                else 0
            end
        ) as n_smaller_between,
        sum(
            case
                when
                    label_chars.char_position > insertions_with_previous.previous_position
                    and label_chars.code_point < insertions_with_previous.previous_code_point
                    then 1
                else 0
            end
        ) as n_smaller_than_previous_after
    from insertions_with_previous
    inner join label_chars
        on insertions_with_previous.domain_label = label_chars.domain_label
    inner join label_basics
        on insertions_with_previous.domain_label = label_basics.domain_label
    group by
        insertions_with_previous.domain_label,
        insertions_with_previous.insertion_number,
        insertions_with_previous.code_point,
        insertions_with_previous.previous_code_point,
        label_basics.n_basic
),

deltas as (
    select
        domain_label,
        insertion_number,
        n_basic + insertion_number as n_handled,
        case
            when insertion_number = 0
                then (code_point - 128) * (n_basic + 1) + n_smaller_before
            when code_point = previous_code_point
                then n_smaller_between
            else n_smaller_than_previous_after + 1
                + (code_point - previous_code_point - 1) * (n_basic + insertion_number + 1)
                + n_smaller_before
        end as delta
    from insertion_counts
),

bias_inputs as (
    -- the bias of insertion j is adapted from delta j-1 (RFC 3492 §6.1)
    select
        domain_label,
        insertion_number,
        delta,
        lag(delta) over (partition by domain_label order by insertion_number) as previous_delta,
        n_handled
    from deltas
),

bias_scaled as (
    select
        domain_label,
        insertion_number,
        delta,
        previous_delta,
        n_handled,
        case
            when previous_delta is null then null
            when insertion_number = 1 then {{ recon.int_div('previous_delta', 700) }}
            else {{ recon.int_div('previous_delta', 2) }}
        end as scaled
    from bias_inputs
),

bias_adapt_0 as (
    select
        domain_label,
        insertion_number,
        delta,
        previous_delta,
        scaled + {{ recon.int_div('scaled', 'n_handled') }} as adapted,
        0 as k
    from bias_scaled
),
{%- for step in range(1, 6) %}

    bias_adapt_{{ step }} as (
        select
            domain_label,
            insertion_number,
            delta,
            previous_delta,
            case when adapted > 455 then {{ recon.int_div('adapted', 35) }} else adapted end as adapted,
            case when adapted > 455 then k + 36 else k end as k
        from bias_adapt_{{ step - 1 }}
    ),
{%- endfor %}

biased as (
    select
        domain_label,
        insertion_number,
        delta,
        case
            when previous_delta is null then 72
            else k + {{ recon.int_div('36 * adapted', 'adapted + 38') }}
        end as bias
    from bias_adapt_5
),

digits (domain_label, insertion_number, digit_number, remaining, bias) as (
    -- the variable-length integer of each delta: digit k uses threshold
    -- t = clamp(36 × k - bias, 1, 26)
    select
        domain_label,
        insertion_number,
        1 as digit_number,
        cast(delta as bigint) as remaining,
        bias
    from biased
    union all
    select
        domain_label,
        insertion_number,
        digit_number + 1 as digit_number,
        {{ recon.int_div(
            'remaining - least(26, greatest(1, 36 * digit_number - bias))',
            '36 - least(26, greatest(1, 36 * digit_number - bias))'
        ) }} as remaining,
        bias
    from digits
    where remaining >= least(26, greatest(1, 36 * digit_number - bias))
),

digit_chars as (
    select
        domain_label,
        insertion_number,
        digit_number,
        case
            when remaining < least(26, greatest(1, 36 * digit_number - bias)) then remaining
            else least(26, greatest(1, 36 * digit_number - bias))
                + mod(
                    remaining - least(26, greatest(1, 36 * digit_number - bias)),
                    36 - least(26, greatest(1, 36 * digit_number - bias))
                )
        end as digit_value
    from digits
),

punycoded_labels as (
    select
        digit_chars.domain_label,
        'xn--' || label_basics.basic_text
        || case when label_basics.n_basic > 0 then '-' else '' end
        || {{ recon.ordered_agg(
            recon.char_of('case when digit_chars.digit_value < 26 then 97 + digit_chars.digit_value else 22 + digit_chars.digit_value end'),
            'digit_chars.insertion_number, digit_chars.digit_number',
            ''
        ) }} as ascii_label
    from digit_chars
    inner join label_basics
        on digit_chars.domain_label = label_basics.domain_label
    group by digit_chars.domain_label, label_basics.basic_text, label_basics.n_basic
),

normalized as (
    select
        labels.domain_text,
        {{ recon.ordered_agg(
            'coalesce(punycoded_labels.ascii_label, labels.domain_label)',
            'labels.label_number',
            '.'
        ) }} as normalized_domain
    from labels
    left join punycoded_labels
        on labels.domain_label = punycoded_labels.domain_label
    group by labels.domain_text

    union all

    select
        domain_text,
        host_name as normalized_domain
    from prepared
    where is_ascii_host
)

select
    domain_text,
    nullif(normalized_domain, '') as normalized_domain
from normalized
