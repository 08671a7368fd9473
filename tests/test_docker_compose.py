"""Static checks of docker-compose.yml, .env.example and docker/Dockerfile (no Docker engine needed).

The compose file is parsed with yaml.safe_load; ${VAR} references are resolved the way docker
compose does, with the values of .env.example (empty secrets replaced by dummies), so URLs and the
connection JSON can be checked as the containers would see them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / "docker" / "Dockerfile.dockerignore"

AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
EXPECTED_SERVICES = ("postgres", "redis", "minio", "minio-create-bucket", *AIRFLOW_SERVICES)
ONE_SHOT_SERVICES = {"airflow-init", "minio-create-bucket"}
LONG_RUNNING_AIRFLOW = tuple(s for s in AIRFLOW_SERVICES if s not in ONE_SHOT_SERVICES)

# Env var names whose values are credentials (access key ids included: they must come from .env).
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|JWT|TOKEN|ACCESS_KEY|PRIVATE_KEY|^AIRFLOW_CONN_", re.IGNORECASE)
# ... of which these are secret values .env.example must leave empty.
SECRET_VALUE_NAME = re.compile(r"PASSWORD|SECRET|FERNET|JWT|TOKEN|PRIVATE_KEY", re.IGNORECASE)
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, ${NAME?err}, ${NAME:+alt}, $NAME
REF = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)
ESCAPED_DOLLAR = "\0DOLLAR\0"


# --------------------------------------------------------------------------------------------
# helpers


def _refs(text: str) -> list[re.Match]:
    """Compose interpolation references in text ($$ is an escaped literal dollar)."""
    return list(REF.finditer(text.replace("$$", ESCAPED_DOLLAR)))


def _strings(obj):
    """Every string value in the parsed YAML (compose interpolates values, not comments)."""
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, str):
        yield obj


def _compose_refs(compose: dict) -> list[re.Match]:
    return [m for text in _strings(compose) for m in _refs(text)]


def _interpolate(value, env: dict[str, str]):
    """Resolve ${...} like docker compose; recurse through lists and dicts."""
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        name = m.group("name") or m.group("bare")
        op, arg = m.group("op"), m.group("arg") or ""
        val = env.get(name)
        if op in (":-", "-"):
            use_default = val is None or (op == ":-" and val == "")
            return arg if use_default else val
        if op in (":?", "?"):
            if val is None or (op == ":?" and val == ""):
                raise AssertionError(f"required variable {name} unset: {arg}")
            return val
        if op in (":+", "+"):
            return arg if val else ""
        return val or ""

    return REF.sub(sub, value.replace("$$", ESCAPED_DOLLAR)).replace(ESCAPED_DOLLAR, "$")


def _parse_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, val = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        key = key.strip()
        assert key not in values, f"{path.name}: {key} defined twice"
        values[key] = val.strip().strip("'\"")
    return values


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def _mounts(service: dict) -> dict[str, str]:
    """Container path -> source (./dir for bind mounts, name for named volumes)."""
    mounts = {}
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            mounts[vol["target"]] = vol["source"]
            continue
        assert isinstance(vol, str), f"unexpected volume entry {vol!r} (a nested list?)"
        source, target, *_mode = vol.split(":")
        mounts[target] = source
    return mounts


def _command_text(service: dict) -> str:
    cmd = service.get("command") or ""
    return "\n".join(cmd) if isinstance(cmd, list) else str(cmd)


def _healthcheck_command(service: dict) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text()


@pytest.fixture(scope="module")
def compose(compose_text) -> dict:
    return yaml.safe_load(compose_text)


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return _parse_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def test_env(env_example) -> dict[str, str]:
    """.env.example with each empty (to-be-filled) secret replaced by a dummy value."""
    return {k: v or f"dummy-{k.lower().replace('_', '-')}" for k, v in env_example.items()}


@pytest.fixture(scope="module")
def resolved(services, test_env) -> dict[str, dict]:
    return _interpolate(services, test_env)


@pytest.fixture(scope="module")
def settings_module():
    # event_pipeline is installed from include/ (pyproject package-dir); fall back to the source tree.
    try:
        from event_pipeline import settings
    except ImportError:
        import sys

        sys.path.insert(0, str(REPO / "include"))
        from event_pipeline import settings
    return settings


# --------------------------------------------------------------------------------------------
# services, healthchecks, dependencies


def test_expected_services_exist(services):
    missing = [s for s in EXPECTED_SERVICES if s not in services]
    assert not missing, f"docker-compose.yml lacks services {missing}"


def test_one_shot_services_do_not_restart_and_are_awaited(services):
    awaited = {
        dep
        for svc in services.values()
        for dep, cond in (svc.get("depends_on") or {}).items()
        if cond.get("condition") == "service_completed_successfully"
    }
    assert awaited == ONE_SHOT_SERVICES
    for name in ONE_SHOT_SERVICES:
        assert services[name].get("restart", "no") == "no", name


def test_every_long_running_service_has_a_healthcheck(services):
    for name, svc in services.items():
        if name in ONE_SHOT_SERVICES:
            continue
        hc = svc.get("healthcheck")
        assert hc, f"{name} has no healthcheck"
        assert not hc.get("disable"), f"{name} disables its healthcheck"
        assert hc.get("test") and hc["test"] not in (["NONE"], "NONE"), f"{name}: empty healthcheck"
        assert svc.get("restart") in ("always", "unless-stopped", "on-failure"), f"{name}: restart policy"


def test_depends_on_uses_conditions(services):
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on must be a mapping with conditions"
        for dep, cond in deps.items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            condition = cond.get("condition")
            assert condition in ("service_healthy", "service_completed_successfully"), (name, dep)
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy"
            else:
                assert dep in ONE_SHOT_SERVICES, (name, dep)

    def cond(svc, dep):
        return (services[svc].get("depends_on") or {}).get(dep, {}).get("condition")

    for name in AIRFLOW_SERVICES:
        assert cond(name, "postgres") == "service_healthy", name
        assert cond(name, "redis") == "service_healthy", name
    for name in LONG_RUNNING_AIRFLOW:
        assert cond(name, "airflow-init") == "service_completed_successfully", name
    # tasks read the raw dumps: the bucket and the pipeline's MinIO user must exist first
    assert cond("airflow-worker", "minio-create-bucket") == "service_completed_successfully"
    assert cond("airflow-worker", "airflow-apiserver") == "service_healthy"  # execution API
    assert cond("minio-create-bucket", "minio") == "service_healthy"


def test_healthchecks_probe_the_right_component(services):
    assert "pg_isready" in _healthcheck_command(services["postgres"])
    assert "redis-cli ping" in _healthcheck_command(services["redis"])
    assert "/api/v2/version" in _healthcheck_command(services["airflow-apiserver"])
    assert ":8974/health" in _healthcheck_command(services["airflow-scheduler"])
    assert services["airflow-scheduler"]["environment"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert "DagProcessorJob" in _healthcheck_command(services["airflow-dag-processor"])
    assert "TriggererJob" in _healthcheck_command(services["airflow-triggerer"])
    assert "inspect ping" in _healthcheck_command(services["airflow-worker"])


def test_airflow_services_share_the_custom_image(compose, services):
    assert "x-airflow-common" in compose
    for name in AIRFLOW_SERVICES:
        build = services[name].get("build")
        assert build == {"context": ".", "dockerfile": "docker/Dockerfile"}, name
        assert services[name]["image"] == services["airflow-apiserver"]["image"], name
    commands = {name: _command_text(services[name]) for name in LONG_RUNNING_AIRFLOW}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
        "airflow-worker": "celery worker",
    }


# --------------------------------------------------------------------------------------------
# code mounts and paths


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_code_is_mounted_where_the_env_points(services, name):
    svc = services[name]
    env = _env(svc)
    by_source = {src: target for target, src in _mounts(svc).items()}
    home = env["AIRFLOW_HOME"]

    for folder in ("dags", "include", "dbt_project", "segments", "mappings"):
        assert f"./{folder}" in by_source, f"{name} does not mount ./{folder}"
        # the repo layout is mirrored under AIRFLOW_HOME: settings.REPO_ROOT resolves to it
        assert by_source[f"./{folder}"] == f"{home}/{folder}", (name, folder)

    assert by_source["./dags"] == env["AIRFLOW__CORE__DAGS_FOLDER"]
    assert by_source["./include"] in env["PYTHONPATH"].split(":")
    assert by_source["./dbt_project"] == env["EVENTS_DBT_PROJECT_DIR"] == env["DBT_PROFILES_DIR"]
    assert by_source["./segments"] == env["EVENTS_SEGMENTS_DIR"]
    assert by_source["./mappings"] == env["EVENTS_MAPPINGS_DIR"]


def test_repo_root_inside_the_image_is_airflow_home(services, settings_module):
    """settings.REPO_ROOT (default for the dbt/segments/mappings dirs) resolves to AIRFLOW_HOME."""
    settings_file = Path(settings_module.__file__).resolve()
    package_rel = settings_file.relative_to(settings_file.parents[1])  # event_pipeline/settings.py
    assert settings_file.parents[2] == settings_module.REPO_ROOT
    assert (REPO / "include" / package_rel).is_file()
    env = _env(services["airflow-worker"])
    include_target = {src: t for t, src in _mounts(services["airflow-worker"]).items()}["./include"]
    assert (Path(include_target) / package_rel).parents[2] == Path(env["AIRFLOW_HOME"])


def test_warehouse_volume_is_mounted_at_events_home_on_workers_only(compose, services):
    env = _env(services["airflow-worker"])
    home = env["EVENTS_HOME"]
    assert env["EVENTS_WAREHOUSE_PATH"] == f"{home}/warehouse/work.duckdb"
    assert env["EVENTS_ANALYTICS_PATH"] == f"{home}/warehouse/analytics.duckdb"

    volume = _mounts(services["airflow-worker"]).get(home)
    assert volume, "airflow-worker must mount a volume at EVENTS_HOME"
    assert not volume.startswith((".", "/")), "the warehouse must be a named volume"
    assert volume in (compose.get("volumes") or {}), f"volume {volume} is not declared"

    writers = {name for name, svc in services.items() if volume in _mounts(svc).values()}
    # init only fixes ownership; every worker service shares the one volume (single DuckDB writer
    # serialised by the duckdb_warehouse pool)
    assert writers - {"airflow-init"} == {n for n in services if n.startswith("airflow-worker")}
    for name in writers:
        assert _mounts(services[name])[_env(services[name])["EVENTS_HOME"]] == volume


def test_no_nested_volume_lists(services):
    for name, svc in services.items():
        for vol in svc.get("volumes") or []:
            assert isinstance(vol, (str, dict)), f"{name}: nested volume list {vol!r}"


# --------------------------------------------------------------------------------------------
# executor, database, broker


def test_celery_executor_points_at_postgres_and_redis(services, resolved, test_env):
    pg_env = resolved["postgres"]["environment"]
    for name in AIRFLOW_SERVICES:
        env = resolved[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert str(env["AIRFLOW__CORE__LOAD_EXAMPLES"]).lower() == "false"

        db = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert db.scheme == "postgresql+psycopg2"
        backend = urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"])
        assert backend.scheme == "db+postgresql"
        for url in (db, backend):
            assert url.hostname == "postgres" and url.hostname in services
            assert url.port == 5432
            assert url.username == pg_env["POSTGRES_USER"]
            assert url.password == pg_env["POSTGRES_PASSWORD"] == test_env["POSTGRES_PASSWORD"]
            assert url.path == f"/{pg_env['POSTGRES_DB']}"

        broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
        assert broker.scheme == "redis" and broker.hostname == "redis" and broker.hostname in services
        assert broker.port == 6379

        api = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        assert (api.hostname, api.port, api.path) == ("airflow-apiserver", 8080, "/execution/")

    api_ports = [str(p).rsplit(":", 1)[-1] for p in resolved["airflow-apiserver"]["ports"]]
    assert "8080" in api_ports


def test_secrets_shared_by_all_airflow_services(services):
    shared = (
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    )
    for key in shared:
        values = {_env(services[name]).get(key) for name in AIRFLOW_SERVICES}
        assert len(values) == 1 and None not in values, key


def test_scheduling_latency_settings_match_the_makefile_and_the_tests(services):
    """The settings that keep the hourly DAG's chain of short tasks quick: the same in every long-running
    Airflow container, in the Makefile (`make airflow`) and in the tests' and the benchmark's Airflow."""
    from airflow_services import SCHEDULING_LATENCY_ENV

    makefile = (REPO / "Makefile").read_text()
    assert set(SCHEDULING_LATENCY_ENV) == {"AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL",
                                           "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"}
    for key, value in SCHEDULING_LATENCY_ENV.items():
        assert {_env(services[name]).get(key) for name in LONG_RUNNING_AIRFLOW} == {value}, key
        assert re.search(rf"^export {key} \?= {re.escape(value)}$", makefile, re.MULTILINE), key


# --------------------------------------------------------------------------------------------
# object storage


def _created_bucket(resolved) -> tuple[str, str]:
    cmd = _command_text(resolved["minio-create-bucket"])
    alias = re.search(r"mc\s+alias\s+set\s+(\S+)\s+(\S+)", cmd)
    made = re.search(r"mc\s+mb\s+(?:--[\w-]+\s+)*[\"']?([\w-]+)/([\w.-]+)", cmd)
    assert alias and made, "minio-create-bucket must run `mc alias set` and `mc mb`"
    assert made.group(1) == alias.group(1)
    return alias.group(2), made.group(2)


def test_s3_connection_matches_minio_and_bucket(services, resolved, test_env, settings_module):
    conn_var = f"AIRFLOW_CONN_{settings_module.DEFAULT_S3_CONN_ID.upper()}"
    minio_cmd = _command_text(services["minio"])
    address = re.search(r"--address\s+[\"']?[^:\s]*:(\d+)", minio_cmd)
    minio_port = int(address.group(1)) if address else 9000
    mc_url, bucket = _created_bucket(resolved)

    for name in AIRFLOW_SERVICES:
        raw_env = _env(services[name])
        assert conn_var in raw_env, f"{name} lacks {conn_var}"
        assert raw_env.get("EVENTS_S3_CONN_ID", settings_module.DEFAULT_S3_CONN_ID) == (
            settings_module.DEFAULT_S3_CONN_ID
        )
        json.loads(raw_env[conn_var])  # valid JSON before interpolation too

        conn = json.loads(resolved[name]["environment"][conn_var])
        assert conn["conn_type"] == "aws"
        endpoint = urlsplit(conn["extra"]["endpoint_url"])
        assert endpoint.hostname == "minio" and endpoint.hostname in services
        assert endpoint.port == minio_port
        assert conn["extra"]["endpoint_url"] == mc_url
        assert conn["extra"]["bucket"] == bucket
        # the pipeline uses the bucket-scoped user minio-create-bucket creates, not MinIO root
        assert conn["login"] == test_env["EVENTS_S3_ACCESS_KEY"]
        assert conn["password"] == test_env["EVENTS_S3_SECRET_KEY"]
        assert conn["login"] != test_env["MINIO_ROOT_USER"]


def test_s3_connection_is_read_by_the_pipeline(resolved, settings_module, monkeypatch):
    """The code's own parser gets endpoint, bucket and keys from the compose connection."""
    env = resolved["airflow-worker"]["environment"]
    conn_var = f"AIRFLOW_CONN_{settings_module.DEFAULT_S3_CONN_ID.upper()}"
    monkeypatch.setenv("EVENTS_S3_CONN_ID", env["EVENTS_S3_CONN_ID"])
    monkeypatch.setenv(conn_var, env[conn_var])
    cfg = settings_module.s3_config()
    conn = json.loads(env[conn_var])
    assert cfg.endpoint_url == conn["extra"]["endpoint_url"]
    assert cfg.bucket == conn["extra"]["bucket"]
    assert (cfg.key, cfg.secret) == (conn["login"], conn["password"])


def test_minio_user_gets_the_bucket_policy(resolved, test_env):
    cmd = _command_text(resolved["minio-create-bucket"])
    _, bucket = _created_bucket(resolved)
    key = "${EVENTS_S3_ACCESS_KEY}"  # shell variable, from the service's environment
    assert f'mc admin user add local "{key}"' in cmd
    assert f'--user "{key}"' in cmd
    assert resolved["minio-create-bucket"]["environment"]["EVENTS_S3_ACCESS_KEY"] == (test_env["EVENTS_S3_ACCESS_KEY"])
    assert f"arn:aws:s3:::{bucket}/*" in cmd


# --------------------------------------------------------------------------------------------
# secrets and .env.example


def test_no_literal_secrets_in_compose(compose, services):
    for name, svc in services.items():
        for key, value in _env(svc).items():
            if SECRET_NAME.search(key) and not key.endswith(("_FILE", "_PATH", "_DIR")):
                assert "${" in value, f"{name}: {key} has a literal value; read it from .env"
            # credentials embedded in URLs must be references too
            for url in re.findall(r"[a-z0-9+]+://[^\s\"]+", value):
                parts = urlsplit(url.replace("$$", ""))
                if "@" in parts.netloc:
                    userinfo = parts.netloc.rsplit("@", 1)[0]
                    assert ":" in userinfo and "${" in userinfo.split(":", 1)[1], f"{name}: {key}"

    refs = _compose_refs(compose)
    for m in refs:
        name = m.group("name") or m.group("bare")
        if SECRET_NAME.search(name):
            # a secret must be required: no ${SECRET:-default}, no ${SECRET} falling back to ""
            assert m.group("op") == ":?", f"${{{name}}} must be written ${{{name}:?...}}"
    for m in refs:
        if m.group("op") in (":-", "-"):
            default = m.group("arg").lower()
            assert not re.search(r"pass|secret|minioadmin", default), m.group(0)


def test_env_example_defines_every_variable_compose_requires(compose, env_example):
    required, referenced = set(), set()
    for m in _compose_refs(compose):
        name = m.group("name") or m.group("bare")
        referenced.add(name)
        if m.group("op") in (":?", "?") or m.group("op") is None:
            required.add(name)
    missing = sorted(required - env_example.keys())
    assert not missing, f".env.example lacks {missing}"
    unused = sorted(env_example.keys() - referenced)
    assert not unused, f".env.example defines variables compose never uses: {unused}"


def test_env_example_ships_no_secret_values(env_example):
    for key, value in env_example.items():
        if SECRET_VALUE_NAME.search(key):
            assert value == "", f".env.example must leave {key} empty (compose then refuses to start)"


def test_env_example_is_ignored_by_git():
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert ".env" in [line.strip() for line in ignored]


# --------------------------------------------------------------------------------------------
# airflow-init: pool and admin user


def test_init_creates_the_warehouse_pool(services, settings_module):
    cmd = _command_text(services["airflow-init"])
    assert "airflow db migrate" in cmd
    pools = re.findall(r"airflow\s+pools\s+set\s+(\S+)\s+(\d+)", cmd)
    assert pools == [(settings_module.WAREHOUSE_POOL, "1")]


def test_admin_user_comes_only_from_env(services):
    init, api = services["airflow-init"], services["airflow-apiserver"]
    env = _env(init)
    assert re.fullmatch(r"\$\{_AIRFLOW_WWW_USER_PASSWORD:\?[^}]*\}", env["_AIRFLOW_WWW_USER_PASSWORD"])
    # the auth manager's user list and the passwords file init writes name the same user
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == env["_AIRFLOW_WWW_USER_USERNAME"] + ":admin"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("simple_auth_manager.SimpleAuthManager")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"].lower() == "false"

    cmd = _command_text(init)
    assert "SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in cmd and "_AIRFLOW_WWW_USER_PASSWORD" in cmd
    assert "users create" not in cmd  # FAB-only command; FAB is not installed
    assert "_AIRFLOW_WWW_USER_CREATE" not in env

    # the passwords file lives on a volume that init writes and the api-server reads
    pw_dir = str(Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).parent)
    volume = _mounts(init).get(pw_dir)
    assert volume and _mounts(api).get(pw_dir) == volume


# --------------------------------------------------------------------------------------------
# Dockerfile


def _requirement_pin(path: Path, package: str) -> str:
    for line in path.read_text().splitlines():
        m = re.match(rf"^{re.escape(package)}==(\S+)", line.strip())
        if m:
            return m.group(1)
    raise AssertionError(f"{package} is not pinned in {path.name}")


def test_dockerfile_base_image_matches_the_airflow_pin():
    text = DOCKERFILE.read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert len(froms) == 1, froms
    m = re.fullmatch(r"apache/airflow:(?P<airflow>[\d.]+)-python(?P<python>\d+\.\d+)", froms[0])
    assert m, f"unexpected base image {froms[0]}"
    assert m["airflow"] == _requirement_pin(REPO / "requirements.txt", "apache-airflow")
    assert m["airflow"] == _requirement_pin(REPO / "constraints.txt", "apache-airflow")
    requires_python = re.search(r'requires-python\s*=\s*"([^"]+)"', (REPO / "pyproject.toml").read_text())
    assert requires_python and SpecifierSet(requires_python.group(1)).contains(m["python"] + ".0")


def test_dockerfile_installs_requirements_with_constraints():
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())  # join continuation lines
    copy = re.search(r"^COPY\s.*\brequirements\.txt\s+constraints\.txt\s+(\S+)", text, re.MULTILINE)
    assert copy, "the Dockerfile must COPY requirements.txt and constraints.txt"
    install = re.search(r"^RUN\s+pip install\b(.*)$", text, re.MULTILINE)
    assert install, "the Dockerfile must pip install the requirements"
    args = install.group(1)
    assert re.search(r"-r\s+\S*requirements\.txt", args) and re.search(r"-c\s+\S*constraints\.txt", args)

    # both files survive the Dockerfile-specific ignore file (context is the repo root)
    ignore = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    assert "!requirements.txt" in ignore and "!constraints.txt" in ignore
