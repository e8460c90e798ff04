"""``knack-nb last-success`` against recorded answers of a real Airflow 3 API server
(``tests/airflow3_responses``, replayed by a small HTTP server on 127.0.0.1).

The live check, against Airflow's own API server, is in ``tests_airflow/``."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from lib import airflow_api, cli

RECORDED = Path(__file__).resolve().parents[1] / "airflow3_responses"
PASSWORD = "right-password"
TOKEN = json.loads((RECORDED / "token.json").read_text())["access_token"]


def recorded(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


class Replay(BaseHTTPRequestHandler):
    """Airflow 3's answers, as recorded, to the requests the client makes."""

    seen: list[tuple[str, str, dict]] = []

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(("POST", self.path, body))
        if self.path == "/auth/token" and body.get("password") == PASSWORD:
            self._send(201, recorded("token.json"))
        else:
            self._send(401, recorded("token_invalid_credentials_401.json"))

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.seen.append(("GET", url.path, parse_qs(url.query)))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, recorded("not_authenticated_401.json"))
        elif url.path == "/api/v2/dags/tiny/dagRuns":
            self._send(200, recorded("dag_runs_success.json"))
        elif url.path == "/api/v2/dags/never_ok/dagRuns":
            self._send(200, recorded("dag_runs_none.json"))
        else:
            self._send(404, recorded("dag_not_found_404.json"))


@pytest.fixture
def airflow(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Replay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Replay.seen = []
    monkeypatch.setenv("AIRFLOW_API_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("AIRFLOW_USERNAME", "reviewer")
    monkeypatch.setenv("AIRFLOW_PASSWORD", PASSWORD)
    monkeypatch.delenv("AIRFLOW_API_TOKEN", raising=False)
    yield Replay
    server.shutdown()
    server.server_close()


def test_prints_the_start_of_the_last_successful_run(airflow, capsys):
    assert cli.main(["last-success", "--dag", "tiny"]) == 0
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)  # the recorded run's start_date
    assert capsys.readouterr().out.strip() == str(int(start.timestamp()))
    assert cli.main(["last-success", "--dag", "tiny", "--iso"]) == 0
    assert capsys.readouterr().out.strip() == "2026-11-01T00:00:00+00:00"
    token, runs = airflow.seen[0], airflow.seen[1]
    assert token == ("POST", "/auth/token", {"username": "reviewer", "password": PASSWORD})
    assert runs == (
        "GET",
        "/api/v2/dags/tiny/dagRuns",
        {"state": ["success"], "order_by": ["-start_date"], "limit": ["1"]},
    )


def test_an_unknown_dag_is_named(airflow, capsys):
    assert cli.main(["last-success", "--dag", "nope"]) == 1
    err = capsys.readouterr().err
    assert "no DAG 'nope'" in err and "check the DAG id" in err


def test_a_dag_that_never_succeeded_says_so(airflow):
    with pytest.raises(airflow_api.NoSuccessfulRun, match="'never_ok' has no successful run"):
        airflow_api.last_success("never_ok")


def test_wrong_credentials_and_a_given_token(airflow, monkeypatch):
    monkeypatch.setenv("AIRFLOW_PASSWORD", "wrong")
    with pytest.raises(airflow_api.AirflowAPIError, match="refused AIRFLOW_USERNAME"):
        airflow_api.last_success("tiny")
    monkeypatch.setenv("AIRFLOW_API_TOKEN", TOKEN)  # a token skips the login
    assert airflow_api.last_success("tiny") == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert airflow.seen[-1][0] == "GET"
    monkeypatch.setenv("AIRFLOW_API_TOKEN", "expired")
    with pytest.raises(airflow_api.AirflowAPIError, match="refused the request"):
        airflow_api.last_success("tiny")


def test_an_unreachable_api_is_named(monkeypatch, capsys):
    monkeypatch.setenv("AIRFLOW_API_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AIRFLOW_API_TOKEN", "t")
    assert cli.main(["last-success", "--dag", "tiny"]) == 1
    assert "cannot reach Airflow's API at http://127.0.0.1:9" in capsys.readouterr().err


def test_missing_credentials_are_named(monkeypatch):
    for name in ("AIRFLOW_API_TOKEN", "AIRFLOW_USERNAME", "AIRFLOW_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(
        airflow_api.MissingCredentialError, match="AIRFLOW_USERNAME and AIRFLOW_PASSWORD"
    ):
        airflow_api.last_success("tiny")
