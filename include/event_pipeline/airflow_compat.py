"""Work-arounds for known Airflow bugs in the pinned version, each with its upstream issue and its removal rule."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def let_dag_test_finish_with_deadlines() -> None:
    """`dag.test()` / `airflow dags test` crash on a DAG with a Deadline Alert once its run has succeeded
    (apache/airflow#73428, open in 3.3.0-3.3.2; fix proposed in apache/airflow#73430): `DAG.test()` builds its
    scheduler DAG by an in-memory serialize/deserialize round trip, so `dag.deadline` holds the encoded alerts,
    not `deadline_alert` row ids, and `DagRun.update_state()` passes those dicts to
    `DeadlineAlertModel.get_by_id()` ("'dict' object has no attribute 'hex'").

    This makes `get_by_id` decode such a dict into an unsaved model, as the upstream fix does; ids (the
    scheduler's path) go to the original method untouched. Remove it with the Airflow upgrade that has the fix.
    """
    from airflow.models.deadline_alert import DeadlineAlert as DeadlineAlertModel
    from airflow.serialization.definitions.deadline import DeadlineAlertFields
    from airflow.serialization.enums import Encoding

    original = DeadlineAlertModel.get_by_id

    def get_by_id(cls, deadline_alert_id: Any, *args: Any, **kwargs: Any):
        if isinstance(deadline_alert_id, dict):
            data = deadline_alert_id.get(Encoding.VAR, deadline_alert_id)
            return cls(name=data.get(DeadlineAlertFields.NAME), reference=data[DeadlineAlertFields.REFERENCE],
                       interval=data[DeadlineAlertFields.INTERVAL], callback_def=data[DeadlineAlertFields.CALLBACK])
        return original(deadline_alert_id, *args, **kwargs)

    get_by_id.__doc__ = original.__doc__
    DeadlineAlertModel.get_by_id = classmethod(get_by_id)
