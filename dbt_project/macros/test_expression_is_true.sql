{#- Generic test: every row satisfies the SQL expression. -#}
{% test expression_is_true(model, expression) -%}
    select *
    from {{ model }}
    where not coalesce(({{ expression }}), false)
{%- endtest %}
