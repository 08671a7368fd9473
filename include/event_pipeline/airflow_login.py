"""Print the local Airflow UI address and login (simple auth manager, embedded default)."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


def main() -> None:
    users = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    username = users.split(",")[0].split(":")[0]
    path = Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    passwords = json.loads(path.read_text()) if path.exists() else {}
    if username not in passwords:
        # a random local password, kept in var/airflow so it survives restarts; nothing baked into the repo
        passwords[username] = secrets.token_urlsafe(12)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(passwords))
    print(f"Airflow UI: http://localhost:8080  login: {username}  password: {passwords[username]}")


if __name__ == "__main__":
    main()
