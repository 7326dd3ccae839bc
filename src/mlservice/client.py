"""A typed Python client for the ML Service API, over httpx.

    from mlservice.client import Client

    with Client("http://localhost:8085", token="mls_api_...") as ml:
        ml.train("adult", "data.csv", target="income")           # waits, with progress
        frame = ml.predict("adult", "data.csv")                  # a pandas DataFrame
        report = ml.drift_check("adult")                         # waits for the report

Authenticate with an API token (``token=``, or ``ML_TOKEN``) or ``client.login(username, password)``.
Every non-2xx answer raises :class:`ApiError` (or a subclass) carrying the server's
``{"error": {"code", "message", "details"}}``; a job that ends failed or cancelled raises
:class:`JobFailed`. ``ML_URL`` and ``ML_TOKEN`` are read by the client only — they are not server
settings.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Union

import httpx

__all__ = ["ApiError", "AuthError", "Client", "JobFailed", "NotFoundError", "DEFAULT_URL"]

DEFAULT_URL = "http://127.0.0.1:8085"
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
SYNC_CHUNK_ROWS = 1000  # the server's default ML_SYNC_PREDICT_MAX_ROWS

Json = dict[str, Any]
Table = Union[str, os.PathLike, "Any"]  # a file path, a pandas DataFrame, or a list of records
Progress = Callable[[Json], None]


class ApiError(Exception):
    """The server answered with an error; ``code``, ``message`` and ``details`` are its own."""

    def __init__(self, status_code: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details


class AuthError(ApiError):
    """401 or 403: no, a wrong, or an insufficient token."""


class NotFoundError(ApiError):
    """404: the model, job, dataset or report does not exist (or is not yours)."""


class JobFailed(Exception):
    """A job ended ``failed`` or ``cancelled``; ``job`` is its last state."""

    def __init__(self, job: Json) -> None:
        super().__init__(f"job {job.get('id')} ({job.get('type')}) {job.get('status')}: {job.get('error')}")
        self.job = job


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    code, message, details = "http_error", response.reason_phrase or "error", None
    try:
        error = response.json().get("error") or {}
        code, message, details = error.get("code", code), error.get("message", message), error.get("details")
    except (ValueError, AttributeError):
        if response.text:
            message = response.text[:500]
    kind = AuthError if response.status_code in (401, 403) else NotFoundError if response.status_code == 404 else ApiError
    raise kind(response.status_code, code, message, details)


def client_user_agent(product: str = "mlservice-client") -> str:
    """``mlservice-client/0.12.0 (Linux; Python 3.11.7)``: the server's security rules tell
    clients apart by this name and OS (see ``events.clients``), so keep the shape."""
    import platform

    from mlservice import __version__

    return f"{product}/{__version__} ({platform.system() or 'unknown'}; Python {platform.python_version()})"


class Client:
    """One connection pool to one server. Use as a context manager or call :meth:`close`.

    :param url: the server, e.g. ``https://ml.example:8085`` (default ``ML_URL`` or ``http://127.0.0.1:8085``)
    :param token: a session or API token (default ``ML_TOKEN``)
    :param verify: TLS verification: ``True``, ``False``, or a CA file such as the one
        ``mlservice gen-cert`` wrote (default ``ML_CA_FILE`` if set)
    """

    def __init__(self, url: str | None = None, token: str | None = None, *, verify: bool | str | None = None,
                 timeout: float = 60.0, user_agent: str | None = None) -> None:
        self.url = (url or os.environ.get("ML_URL") or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get("ML_TOKEN") or None
        if verify is None:
            verify = os.environ.get("ML_CA_FILE") or True
        if isinstance(verify, str):
            import ssl

            verify = ssl.create_default_context(cafile=verify)  # type: ignore[assignment]
        self._http = httpx.Client(base_url=self.url, timeout=timeout, verify=verify,
                                  headers={"User-Agent": user_agent or client_user_agent()})

    # -- plumbing -------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Any API call; raises :class:`ApiError` on an error answer."""
        headers = {**self._headers(), **kwargs.pop("headers", {})}
        params = kwargs.pop("params", None)
        if params:
            params = {k: v for k, v in params.items() if v is not None}
        response = self._http.request(method, path, headers=headers, params=params, **kwargs)
        _raise_for(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    # -- service and authentication -----------------------------------------------------------------
    def health(self) -> Json:
        """``GET /health`` (no authentication)."""
        return self._json("GET", "/health")

    def metrics(self) -> str:
        """``GET /metrics`` in Prometheus text format (needs ML_METRICS_TOKEN or an admin)."""
        return self.request("GET", "/metrics").text

    def login(self, username: str, password: str) -> Json:
        """Log in; later calls use the new session token. Returns the server's answer."""
        answer = self._json("POST", "/auth/login", json={"username": username, "password": password})
        self.token = answer["token"]
        return answer

    def logout(self) -> None:
        self._json("POST", "/auth/logout")
        self.token = None

    def user_info(self) -> Json:
        return self._json("GET", "/auth/user-info")

    def create_token(self, name: str, expires_in_days: int | None = None) -> Json:
        """A new API token; its secret (``["token"]``) is shown only in this answer."""
        body: Json = {"name": name}
        if expires_in_days is not None:
            body["expires_in_days"] = expires_in_days
        return self._json("POST", "/auth/tokens", json=body)

    # -- datasets --------------------------------------------------------------------------------
    def upload(self, data: Table, name: str | None = None) -> Json:
        """Upload a CSV/JSON/Parquet file or a DataFrame; returns the dataset (``["id"]``, columns…)."""
        filename, content, media = _as_file(data, name)
        form = {"name": name} if name else None
        return self._json("POST", "/datasets", files={"file": (filename, content, media)}, data=form)

    def datasets(self, limit: int = 100, offset: int = 0) -> Json:
        return self._json("GET", "/datasets", params={"limit": limit, "offset": offset})

    def dataset(self, dataset_id: str) -> Json:
        return self._json("GET", f"/datasets/{dataset_id}")

    # -- jobs ------------------------------------------------------------------------------------
    def job(self, job_id: str) -> Json:
        return self._json("GET", f"/jobs/{job_id}")

    def jobs(self, **filters: Any) -> Json:
        """``GET /jobs`` with filters: type, status, model_key, user_id, created_after, …, limit, offset."""
        return self._json("GET", "/jobs", params=filters)

    def cancel(self, job_id: str) -> Json:
        return self._json("POST", f"/jobs/{job_id}/cancel")

    def wait(self, job_id: str, *, timeout: float | None = None, poll_s: float = 0.5,
             progress: Progress | None = None, raise_on_failure: bool = True) -> Json:
        """Poll a job until it ends; ``progress(job)`` is called after every poll.

        Raises :class:`JobFailed` when it fails or is cancelled (unless ``raise_on_failure=False``)
        and ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = min(0.1, poll_s)
        while True:
            job = self.job(job_id)
            if progress is not None:
                progress(job)
            if job["status"] in FINAL_STATUSES:
                if raise_on_failure and job["status"] != "completed":
                    raise JobFailed(job)
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout} s")
            time.sleep(delay)
            delay = min(poll_s, delay * 2)

    # -- training and models ---------------------------------------------------------------------
    def train(self, model_key: str, data: Table | None = None, *, target: str, dataset_id: str | None = None,
              params: Mapping[str, Any] | None = None, features: list[str] | None = None,
              column_types: Mapping[str, str] | None = None, wait: bool = True,
              timeout: float | None = None, progress: Progress | None = None) -> Json:
        """Train a new version of ``model_key`` on a file, DataFrame, records or an uploaded dataset.

        Returns the finished job (``["result"]`` holds the version and metrics), or, with
        ``wait=False``, ``{"job_id"}`` at once."""
        body: Json = {"model_key": model_key, "target": target}
        for key, value in (("params", params), ("features", features), ("column_types", column_types)):
            if value is not None:
                body[key] = dict(value) if isinstance(value, Mapping) else list(value)
        if dataset_id is None and data is not None and not isinstance(data, list):
            dataset_id = self.upload(data)["id"]
        if dataset_id is not None:
            body["dataset_id"] = dataset_id
        elif data is not None:
            body["data"] = data
        else:
            raise ValueError("give data or dataset_id")
        created = self._json("POST", "/train", json=body)
        return self.wait(created["job_id"], timeout=timeout, progress=progress) if wait else created

    def models(self, limit: int = 100, offset: int = 0) -> Json:
        return self._json("GET", "/models", params={"limit": limit, "offset": offset})

    def model(self, model_key: str) -> Json:
        return self._json("GET", f"/models/{model_key}")

    def version(self, model_key: str, version: str) -> Json:
        return self._json("GET", f"/models/{model_key}/versions/{version}")

    def promote(self, model_key: str, version: str) -> Json:
        return self._json("POST", f"/models/{model_key}/versions/{version}/promote")

    def rollback(self, model_key: str) -> Json:
        return self._json("POST", f"/models/{model_key}/rollback")

    # -- predictions -----------------------------------------------------------------------------
    def predict(self, model_key: str, data: Table, *, version: str | None = None,
                chunk_rows: int = SYNC_CHUNK_ROWS) -> Any:
        """Sync predictions (in chunks of ``chunk_rows``) as a DataFrame: ``prediction``,
        ``confidence`` and one ``p:<class>`` column per class, in input order."""
        import pandas as pd

        rows = _records(data)
        out: list[Json] = []
        for start in range(0, len(rows), chunk_rows):
            body: Json = {"data": rows[start:start + chunk_rows]}
            if version:
                body["version"] = version
            answer = self._json("POST", f"/models/{model_key}/predict", json=body)
            out.extend(answer["results"])
        return _results_frame(pd, out)

    def predict_async(self, model_key: str, data: Table | None = None, *, dataset_id: str | None = None,
                      version: str | None = None, wait: bool = True, timeout: float | None = None,
                      progress: Progress | None = None) -> Any:
        """Batch predictions through a job; returns the results' DataFrame (input columns,
        ``prediction``, ``confidence``) or, with ``wait=False``, ``{"job_id"}``."""
        body: Json = {"model_key": model_key}
        if version:
            body["version"] = version
        if dataset_id is None and data is not None and not isinstance(data, list):
            dataset_id = self.upload(data)["id"]
        if dataset_id is not None:
            body["dataset_id"] = dataset_id
        elif data is not None:
            body["data"] = data
        else:
            raise ValueError("give data or dataset_id")
        created = self._json("POST", "/predict", json=body)
        if not wait:
            return created
        self.wait(created["job_id"], timeout=timeout, progress=progress)
        return self.prediction_results(created["job_id"])

    def prediction_results(self, job_id: str) -> Any:
        """The exported CSV of a completed prediction job, as a DataFrame."""
        import pandas as pd

        csv = self.request("GET", f"/predict/{job_id}/export", params={"format": "csv"}).content
        return pd.read_csv(io.BytesIO(csv))

    def feedback(self, job_id: str, labels: Iterable[tuple[int, str]]) -> Json:
        """True labels for rows of a prediction job: ``[(row, label), …]``."""
        return self._json("POST", f"/predict/{job_id}/feedback",
                          json={"labels": [{"row": int(r), "label": str(lbl)} for r, lbl in labels]})

    # -- drift, alerts, events -------------------------------------------------------------------
    def drift_check(self, model_key: str, *, version: str | None = None, data: Table | None = None,
                    dataset_id: str | None = None, last_days: int | None = None, wait: bool = True,
                    timeout: float | None = None, progress: Progress | None = None) -> Json:
        """Run a drift check (on the prediction log by default) and return its report
        (``verdict``, ``drifted_share``, ``features`` sorted by PSI…), or ``{"job_id"}``."""
        body: Json = {"model_key": model_key}
        if version:
            body["version"] = version
        if last_days is not None:
            body["last_days"] = last_days
        if dataset_id is None and data is not None and not isinstance(data, list):
            dataset_id = self.upload(data)["id"]
        if dataset_id is not None:
            body["dataset_id"] = dataset_id
        elif data is not None:
            body["data"] = data
        created = self._json("POST", "/drift/check", json=body)
        if not wait:
            return created
        result = self.wait(created["job_id"], timeout=timeout, progress=progress)["result"] or {}
        report_id = result.get("report_id")
        return self.drift_report(report_id) if report_id is not None else result

    def drift_reports(self, **filters: Any) -> Json:
        """``GET /drift/daily-reports`` (model_key, verdict, trigger, created_after, …, limit, offset)."""
        return self._json("GET", "/drift/daily-reports", params=filters)

    def drift_report(self, report_id: int) -> Json:
        return self._json("GET", f"/drift/reports/{report_id}")

    def retrain(self, model_key: str) -> Json:
        return self._json("POST", f"/models/{model_key}/retrain")

    def alerts(self, **filters: Any) -> Json:
        """``GET /health/alerts`` (status, kind, model_key, limit, offset)."""
        return self._json("GET", "/health/alerts", params=filters)

    def events(self, **filters: Any) -> Json:
        """``GET /events`` (type, outcome, user_id, …, limit, offset)."""
        return self._json("GET", "/events", params=filters)


def _as_file(data: Table, name: str | None) -> tuple[str, bytes, str]:
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        media = {".csv": "text/csv", ".json": "application/json", ".jsonl": "application/x-ndjson",
                 ".parquet": "application/vnd.apache.parquet"}.get(path.suffix.lower(), "application/octet-stream")
        return path.name, path.read_bytes(), media
    if isinstance(data, list):
        return (name or "data") + ".json", json.dumps(data).encode(), "application/json"
    buffer = io.BytesIO()
    data.to_parquet(buffer, index=False)  # a DataFrame: Parquet keeps the column types
    return (name or "data") + ".parquet", buffer.getvalue(), "application/vnd.apache.parquet"


def _records(data: Table) -> list[Json]:
    import pandas as pd

    if isinstance(data, list):
        return data
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        frame = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else (
            pd.read_json(path, lines=path.suffix.lower() == ".jsonl") if path.suffix.lower() in (".json", ".jsonl")
            else pd.read_csv(path)
        )
    else:
        frame = data
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def _results_frame(pd: Any, results: list[Json]) -> Any:
    rows = []
    for item in results:
        row = {"prediction": item.get("prediction"), "confidence": item.get("confidence")}
        for cls, p in (item.get("probabilities") or {}).items():
            row[f"p:{cls}"] = p
        rows.append(row)
    return pd.DataFrame(rows)
