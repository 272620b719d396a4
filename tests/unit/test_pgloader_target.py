"""pgloader's connection to the target: certificate verification, sslmode, no secret in the load file."""

from pathlib import Path

import pytest

from mailmig.mapping import load_mapping
from mailmig.staging import StagingError, pgloader_ssl_arguments, render_load_file


@pytest.mark.parametrize("conninfo", [
    "host=/work/.pgdata/run port=5432 user=postgres dbname=mailmig",
    "host=127.0.0.1 port=5432 user=postgres dbname=mailmig",
    "host=127.0.0.2 port=5432 user=postgres dbname=mailmig",
    "host=localhost port=5432 user=postgres dbname=mailmig",
    "host=::1 port=5432 user=postgres dbname=mailmig",
])
def test_verification_is_off_only_for_the_socket_and_loopback(conninfo):
    assert pgloader_ssl_arguments(conninfo) == ["--no-ssl-cert-verification"]


@pytest.mark.parametrize("conninfo", [
    "host=db.internal port=5432 user=mig dbname=mailmig",
    "host=10.0.0.7 port=5432 user=mig dbname=mailmig",
    "host=127.0.0.1.example.com port=5432 user=mig dbname=mailmig",
    "host=localhost port=5432 user=mig dbname=mailmig sslmode=verify-full",  # asked for, so kept
])
def test_verification_stays_on_for_any_other_host(conninfo):
    assert pgloader_ssl_arguments(conninfo) == []


def _render(tmp_path: Path, conninfo: str) -> str:
    table = next(t for t in load_mapping() if t.name == "emails")
    out = tmp_path / "emails.load"
    render_load_file(tmp_path / "emails.db", table, conninfo, {}, out)
    return out.read_text()


def test_sslmode_reaches_the_load_file_and_the_password_does_not(tmp_path):
    text = _render(tmp_path, "host=db.internal port=5433 user=mig dbname=mailmig sslmode=verify-full "
                             "password=pw-never-in-a-file")
    assert "postgresql://mig@db.internal:5433/mailmig?sslmode=require" in text
    assert "pw-never-in-a-file" not in text
    assert "?sslmode" not in _render(tmp_path, "host=db.internal port=5433 user=mig dbname=mailmig")


def test_an_sslmode_pgloader_does_not_know_is_refused(tmp_path):
    with pytest.raises(StagingError, match="sslmode 'bogus'"):
        _render(tmp_path, "host=db.internal user=mig dbname=mailmig sslmode=bogus")
