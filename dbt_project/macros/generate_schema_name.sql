{#- Models land in exactly the schema their folder names (staging, intermediate, marts), with no
    target-schema prefix; a model without a custom schema uses the target's schema. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
