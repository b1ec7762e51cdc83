{#- Generic test: no value of the column exceeds max_value. -#}
{% test accepted_range_max(model, column_name, max_value) %}

select {{ column_name }}
from {{ model }}
where {{ column_name }} > {{ max_value }}

{% endtest %}
