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
    effect at once one item, and one subscription, may carry. The discount arithmetic of
    int_subscription_mrr_snapshotted is unrolled to these depths. They are at least 3 and 5,
    and more when the warehouse holds a version with more discounts attached to one item (or
    to the subscription itself): when dbt executes a model or a data test, they ask
    int_subscription_discounts_attached. A long history can stack more than a fixed depth
    (a build failed on it, DECISIONLOG "discount depth follows the data"). A
    depth above what the data needs gives the same amounts, so nothing depends on the depth
    but the SQL's length. Unit tests (and parsing) use the floors. The data tests on the
    snapshots' step numbers check that the depth covered every discount. -#}
{% macro max_item_discount_steps() -%}
    {{ return(recon.discount_steps_needed('item', 3)) }}
{%- endmacro %}

{% macro max_subscription_discount_steps() -%}
    {{ return(recon.discount_steps_needed('subscription', 5)) }}
{%- endmacro %}

{% macro discount_steps_needed(level, floor) -%}
    {%- if not execute or model is none or model.resource_type == 'unit_test' -%}
        {{ return(floor) }}
    {%- endif -%}
    {#- found through dbt's graph, not ref(): the data tests that call this do not read it -#}
    {%- set node = graph.nodes.values()
        | selectattr('resource_type', 'equalto', 'model')
        | selectattr('name', 'equalto', 'int_subscription_discounts_attached')
        | first -%}
    {#- the warehouse is asked, not adapter.get_relation (see table_exists) -#}
    {%- if not recon.table_exists(node.schema, node.alias, node.database) -%}
        {{ return(floor) }}
    {%- endif -%}
    {%- set attached = api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias) -%}
    {%- set per = 'version_id, subscription_item_id' if level == 'item' else 'version_id' -%}
    {%- set deepest = run_query(
        'select max(n_attached) from (select count(*) as n_attached from ' ~ attached
        ~ " where discount_level = '" ~ level ~ "' group by " ~ per ~ ') as attached_counts'
    ).columns[0].values()[0] -%}
    {{ return([floor, (deepest or 0) | int] | max) }}
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
