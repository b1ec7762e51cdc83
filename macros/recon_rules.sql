{#- Lists and vars of the MRR and reconciliation specs, kept in one place. -#}

{#- subscription_event_types(): the event types whose data.object is a subscription version
    (mrr.md §6), as a quoted SQL list. -#}
{% macro subscription_event_types() -%}
    'customer.subscription.created',
    'customer.subscription.updated',
    'customer.subscription.deleted',
    'customer.subscription.paused',
    'customer.subscription.resumed',
    'customer.subscription.pending_update_applied',
    'customer.subscription.pending_update_expired'
{%- endmacro %}


{#- bool_var(name): a boolean var, accepting true/false in any case or 1/0 (as given on the
    command line). -#}
{% macro bool_var(name) -%}
    {%- set value = var(name) -%}
    {%- if value is boolean -%}
        {{ return(value) }}
    {%- endif -%}
    {%- set text = (value | string | lower | trim) -%}
    {%- if text in ('true', '1', 'yes') -%}
        {{ return(true) }}
    {%- elif text in ('false', '0', 'no') -%}
        {{ return(false) }}
    {%- endif -%}
    {{ exceptions.raise_compiler_error("var " ~ name ~ " must be true or false, got " ~ value) }}
{%- endmacro %}


{#- mrr_discount_policy(): the var, checked: 'active', 'forever_only' or 'none'. -#}
{% macro mrr_discount_policy() -%}
    {%- set value = var('mrr_discount_policy') | string | lower | trim -%}
    {%- if value not in ('active', 'forever_only', 'none') -%}
        {{ exceptions.raise_compiler_error(
            "var mrr_discount_policy must be 'active', 'forever_only' or 'none', got '" ~ value ~ "'") }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}


{#- reporting_currency(): the var in upper case, checked to be a 3-letter code. -#}
{% macro reporting_currency() -%}
    {%- set value = var('reporting_currency') | string | upper | trim -%}
    {%- if value | length != 3 or not value.isalpha() -%}
        {{ exceptions.raise_compiler_error(
            "var reporting_currency must be a 3-letter ISO code, got '" ~ value ~ "'") }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}


{#- counted_statuses(): the statuses that contribute MRR (mrr.md §1), as a quoted SQL list. -#}
{% macro counted_statuses() -%}
    'active'{% if recon.bool_var('mrr_count_past_due') %}, 'past_due'{% endif %}
{%- endmacro %}


{#- max_item_discount_steps() / max_subscription_discount_steps(): how many discounts in
    effect at once one item, and one subscription, may carry. The discount arithmetic is
    unrolled to these depths; a data test on int_subscription_mrr_snapshotted fails loudly if
    an account ever carries more (raise them here). -#}
{% macro max_item_discount_steps() -%}
    {{ return(3) }}
{%- endmacro %}

{% macro max_subscription_discount_steps() -%}
    {{ return(5) }}
{%- endmacro %}


{#- email_domain(expr): the part of an e-mail address after its last '@' (null without '@'). -#}
{% macro email_domain(expr) -%}
    case
        when strpos({{ expr }}, '@') > 0 then {{ recon.regexp_replace_all(expr, "'^.*@'", "''") }}
    end
{%- endmacro %}


{#- domain_before_idna(expr): a domain or URL as reconciliation.md §1 compares it, short of the
    punycode step: trimmed of white space (tabs too), lower-cased, without scheme, path, query,
    port, leading `www.` or trailing dots, with IDNA 2003's mapping of ß to ss, in Unicode NFC. -#}
{% macro domain_before_idna(expr) -%}
    {%- set lowered = recon.lower_text(recon.trim_space(expr)) -%}
    {%- set no_scheme = 'case when strpos(' ~ lowered ~ ", '://') > 0 then substring(" ~ lowered
        ~ ' from strpos(' ~ lowered ~ ", '://') + 3) else " ~ lowered ~ ' end' -%}
    {%- set host = "split_part(split_part(split_part(" ~ no_scheme ~ ", '/', 1), '?', 1), ':', 1)" -%}
    {%- set no_www = recon.regexp_replace_all(host, "'^www[.]'", "''") -%}
    {%- set no_dots = recon.regexp_replace_all(no_www, "'[.]+$'", "''") -%}
    {{ recon.nfc("replace(" ~ no_dots ~ ", 'ß', 'ss')") }}
{%- endmacro %}
