{#- dbt's get_where_subquery with placeholders for a data test's `where` config. Tests on tables that
    grow with history check, every hour, only what that hour wrote; a full-scope build or test run
    (`make test`, historical imports, the daily warehouse_maintenance `dbt test`) checks every row.

      __this_batch__            `batch_hour = <the run's dump hour>`: tables partitioned by dump hour
      __this_run_event_hours__  `event_hour in (the event hours int_run_scope lists)`: the partitions
                                an hourly run of the event-level models rewrites
      __this_run_people__       `user_key in (...)`: the people whose sessions and daily activity an
                                hourly run rewrites (int_run_scope_user_days, and the user keys whose
                                identity changed); a duplicate session or activity row can only be
                                one person's
      __full_scope_only__       `false`: a test of a view over all history (it would recompute the
                                view every hour), run whole by the daily full-scope `dbt test`

    Each is `true` in a full-scope run. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- set full_scope = is_full_scope() -%}
        {%- if '__this_batch__' in where -%}
            {%- set batch_predicate = 'true' if full_scope else 'batch_hour = ' ~ batch_hour_sql() -%}
            {%- set where = where | replace('__this_batch__', batch_predicate) -%}
        {%- endif -%}
        {%- if '__this_run_event_hours__' in where -%}
            {#- not ref(): a test may not ref a model it does not declare; every model these tests
                check is built after int_run_scope in the same run -#}
            {%- set run_scope = api.Relation.create(
                database=relation.database, schema='intermediate', identifier='int_run_scope') -%}
            {%- set hours_predicate = 'true' if full_scope
                else 'event_hour in (select event_hour from ' ~ run_scope ~ ')' -%}
            {%- set where = where | replace('__this_run_event_hours__', hours_predicate) -%}
        {%- endif -%}
        {%- if '__this_run_people__' in where -%}
            {%- set run_days = api.Relation.create(
                database=relation.database, schema='intermediate', identifier='int_run_scope_user_days') -%}
            {%- set identity_map = api.Relation.create(
                database=relation.database, schema='intermediate', identifier='int_identity_map') -%}
            {%- set people_predicate = 'true' if full_scope
                else 'user_key in (select user_key from ' ~ run_days
                    ~ ' union select user_key from ' ~ identity_map
                    ~ ' where changed_batch_hour = ' ~ batch_hour_sql()
                    ~ ' union select previous_user_key from ' ~ identity_map
                    ~ ' where changed_batch_hour = ' ~ batch_hour_sql() ~ ')' -%}
            {%- set where = where | replace('__this_run_people__', people_predicate) -%}
        {%- endif -%}
        {%- if '__full_scope_only__' in where -%}
            {%- set where = where | replace('__full_scope_only__', 'true' if full_scope else 'false') -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
