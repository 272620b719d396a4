"""Configuration: defaults, precedence, validation, and the password's isolation."""

from pathlib import Path

import pytest

from mailmig.config import ConfigError, load_config


def write(tmp_path, text):
    path = tmp_path / "mailmig.yaml"
    path.write_text(text)
    return path


def test_defaults_target_the_local_cluster(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(write(tmp_path, ""), environ={})
    assert cfg.is_local
    assert cfg.raw["local_cluster"]["port"] == 54329
    assert cfg.sources.emails_db == tmp_path / "data/emails.db"
    assert cfg.db_mode == "sqlite"
    assert cfg.display_url().startswith("postgresql://postgres@/mailmig?host=")


def test_environment_overrides_yaml_and_dotenv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("POSTGRES_HOST=from-dotenv\nPOSTGRES_PORT=6000\n# comment\nDB_MODE='dual'\n")
    cfg = load_config(write(tmp_path, "database:\n  host: from-yaml\n  port: 5555\n"), environ={"POSTGRES_PORT": "7000"})
    assert cfg.raw["database"]["host"] == "from-dotenv"
    assert cfg.raw["database"]["port"] == 7000
    assert cfg.db_mode == "dual"
    assert not cfg.is_local


@pytest.mark.parametrize(
    "text, env, named",
    [
        ("database:\n  hots: x\n", {}, "database.hots"),
        ("databse:\n  host: x\n", {}, "databse"),
        ("database:\n  port: 99999\n", {}, "database.port"),
        ("maintenance:\n  retention: forever\n", {}, "maintenance.retention"),
        ("", {"DB_MODE": "both"}, "DB_MODE"),
        ("", {"POSTGRES_PORT": "abc"}, "POSTGRES_PORT"),
        ("database:\n  password: hunter2\n", {}, "database.password"),
    ],
)
def test_bad_keys_and_values_name_the_key(tmp_path, monkeypatch, text, env, named):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")) as err:
        load_config(write(tmp_path, text), environ=env)
    assert "hunter2" not in str(err.value)


def test_password_reaches_libpq_but_never_the_printed_url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"POSTGRES_HOST": "db.internal", "POSTGRES_PASSWORD": "s3cr3t-pw", "POSTGRES_USER": "mig"}
    cfg = load_config(write(tmp_path, ""), environ=env)
    assert "s3cr3t-pw" in cfg.conninfo()
    assert "s3cr3t-pw" not in cfg.display_url()
    assert cfg.display_url().startswith("postgresql://mig@db.internal:5432/mailmig")
    assert cfg.libpq_env()["PGPASSWORD"] == "s3cr3t-pw"


def test_a_dsn_with_a_password_is_not_printed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(write(tmp_path, ""), environ={"POSTGRES_DSN": "postgresql://u:pw-in-dsn@h:5433/d"})
    assert "pw-in-dsn" not in cfg.display_url()
    assert cfg.display_url().startswith("postgresql://u@h:5433/d")


def test_missing_explicit_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml", environ={})


def test_the_shipped_config_file_is_valid_and_matches_the_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    from mailmig.config import DEFAULT_CONFIG, SCHEMA

    shipped = load_config(DEFAULT_CONFIG, environ={})
    empty = load_config(write(tmp_path, ""), environ={})
    assert shipped.raw == empty.raw
    assert set(shipped.raw) == set(SCHEMA)


def test_source_files_take_a_command_s_paths_over_the_configured_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(write(tmp_path, ""), environ={"EMAILS_DB": "live/emails.db"})
    assert cfg.source_files() == cfg.sources
    assert cfg.source_files().emails_db == tmp_path / "live" / "emails.db"
    given = cfg.source_files("/x/e.db", None)
    assert given.emails_db == Path("/x/e.db") and given.auth_db == cfg.sources.auth_db
