"""Stand-ins for the dbt context and the project's macros, for sqlfluff's jinja templater.

sqlfluff provides ref, source, var, config, this and is_incremental itself. The project's scope
macros are stubbed with representative SQL of an hourly run (rather than loaded from macros/):
sqlfluff's macro wrapper lets a nested macro's `return` escape to the outermost call, which
would render is_full_scope() inside another macro as the text "False".
"""

from types import SimpleNamespace


class _Adapter:
    @staticmethod
    def get_relation(database=None, schema=None, identifier=None):
        return f"{schema}.{identifier}"

    @staticmethod
    def get_columns_in_relation(relation):
        return [SimpleNamespace(name=name) for name in ("id_type", "id_value", "component_root", "user_key")]


adapter = _Adapter()
execute = True
flags = SimpleNamespace(FULL_REFRESH=False)
target = SimpleNamespace(schema="main", database="warehouse")

_SCOPE = "select event_hour from intermediate.int_run_scope"


def table_before_this_run(schema, identifier):
    return adapter.get_relation(schema=schema, identifier=identifier)


def restamp_compares_changed_ids_only():
    return True


def rows_to_restamp_table():
    return "int_events_restamped__rowids"


def is_full_scope():
    return False


def builds_whole_model():
    return False


def rows_where(relation, predicate):
    return f"select * from {relation} where {predicate}"


def rows_where_in(relation, column, values_sql):
    return rows_where(relation, f"{column} in ({values_sql})")


def cluster_whole_build_by(column):
    return ""  # an hourly run's rendering (builds_whole_model() is False here)


def batch_hour_sql():
    return "date_trunc('hour', cast('2026-11-20 05:00:00' as timestamp))"


def run_scope_events_predicate(hour_column="event_hour", id_column="event_id"):
    return (f"({hour_column} in ({_SCOPE})"
            f" and {id_column} in (select event_id from intermediate.int_run_scope_events))")


def event_hour_in_scope(column="event_hour", id_column="event_id"):
    return run_scope_events_predicate(column, id_column)


def affected_event_hours():
    return _SCOPE


def restamped_events_predicate(hour_column="event_hour", id_column="event_id"):
    return (f"({hour_column} in (select event_hour from intermediate.int_events_restamped)"
            f" and {id_column} in (select event_id from intermediate.int_events_restamped))")


def sessions_rebuild_cutoffs():
    return ("select user_key, min(first_changed_event_at) - interval 30 minute as rebuild_cutoff"
            " from intermediate.int_run_scope_user_days group by user_key")


def changed_user_keys():
    return "select user_key from intermediate.int_identity_map"


def affected_batch_hours():
    return f"select {batch_hour_sql()} as batch_hour"


def scope_daily_activity(date_column="activity_date"):
    return f"{date_column} in (select cast(event_hour as date) from intermediate.int_run_scope)"


def scope_sessions():
    return "user_key in (select user_key from intermediate.int_identity_map)"


def identity_component_ctes(observed_ids, links):
    return (f"nodes as (select id_type, id_value, id_type || ':' || id_value as node from {observed_ids}),"
            f" edges as (select from_id_type as from_node, to_id_type as to_node from {links}),"
            " identity_components as (select nodes.id_type, nodes.id_value, nodes.node as component_root,"
            " nodes.node as user_key from nodes inner join edges on nodes.node = edges.from_node)")


def identity_assertions(events, links):
    return (f"select event_id, identity_type as id_type, identity_value as id_value,"
            f" null as linked_id_type, null as linked_id_value from {events}"
            f" union select event_id, from_id_type, from_id_value, to_id_type, to_id_value from {links}")


def ordered_id_pair(from_type, from_value, to_type, to_value):
    first = f"{from_type} <= {to_type}"
    return (f"case when {first} then {from_type} else {to_type} end as id_a_type,"
            f" case when {first} then {from_value} else {to_value} end as id_a_value,"
            f" case when {first} then {to_type} else {from_type} end as id_b_type,"
            f" case when {first} then {to_value} else {from_value} end as id_b_value")


def identity_merges_affected_pairs():
    return ("select id_type as id_a_type, id_value as id_a_value, linked_id_type as id_b_type,"
            " linked_id_value as id_b_value from intermediate.int_run_scope_previous_assertions")


def identity_merges_changed_ids():
    return "select id_type, id_value from intermediate.int_identity_map"


def scope_identity_merges():
    return "(id_a_type, id_a_value) in (select id_type, id_value from intermediate.int_identity_map)"
