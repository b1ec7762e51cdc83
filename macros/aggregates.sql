{#- distinct_count_0_1_many(expr): how many distinct non-null values of expr a group holds,
    as 0, 1 or 2 (meaning two or more): count(distinct ...) where only "none, one or
    several" matters. Written with min and max because DuckDB plans every aggregate of a
    query that holds a DISTINCT one on a slower path: fct_mrr's per-customer-month
    aggregate at 100,000 customers took 3.9 s with count(distinct) and 0.2 s without. -#}
{% macro distinct_count_0_1_many(expr) -%}
    case
        when min({{ expr }}) is null then 0
        when min({{ expr }}) = max({{ expr }}) then 1
        else 2
    end
{%- endmacro %}
