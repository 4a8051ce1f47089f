"""Metrics read from a real Prometheus server through PromQL (used when
``DATAOPS_PROMETHEUS_URL`` is set; the in-process registry otherwise)."""

from __future__ import annotations

import ast
import json
import math
import re
from typing import Any

from app.errors import InputError, StorageError
from tools._base import ToolResult

__all__ = ["PrometheusMetrics", "metric_names", "selector"]

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# prometheus-api-client's message for a non-200 answer: HTTP Status Code 400 (b'{"status":"error",...}')
_HTTP_ERROR = re.compile(r"^HTTP Status Code (\d+) \((b(?:'|\").*)\)$", re.DOTALL)
# Series a family of samples is exported as (counters' _created left out: a timestamp, not a reading).
_SUFFIXES = ("", "_total", "_bucket", "_count", "_sum")


def metric_names(name: str) -> list[str]:
    """The series names ``name`` may mean, as the in-process reader matches
    them: with or without the ``dataops_`` prefix and the ``_total`` suffix,
    and a histogram's ``_bucket``/``_count``/``_sum`` series."""
    base = name.removesuffix("_total")
    bases = [base] if base.startswith("dataops_") else [base, f"dataops_{base}"]
    names = [b + s for b in bases for s in _SUFFIXES]
    return list(dict.fromkeys([name, *names]))


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def selector(name: str, labels: dict[str, str] | None = None) -> str:
    """A PromQL selector for every series ``name`` may mean, with exact label matches."""
    if not _METRIC_NAME.match(name):
        raise InputError(f"not a metric name: {name!r}")
    bad = [k for k in labels or {} if not _LABEL_NAME.match(k) or k == "__name__"]
    if bad:
        raise InputError(f"not a label name: {bad[0]!r}")
    names = "|".join(re.escape(n) for n in metric_names(name))
    matchers = [f"__name__=~{_quote(names)}"]
    matchers += [f"{k}={_quote(v)}" for k, v in sorted((labels or {}).items())]
    return "{" + ", ".join(matchers) + "}"


def _api_error(body_repr: str) -> str | None:
    """Prometheus' ``error`` field out of the body's repr, if it is its JSON error."""
    try:
        body = json.loads(ast.literal_eval(body_repr))
    except (ValueError, SyntaxError):
        return None
    return str(body["error"]) if isinstance(body, dict) and body.get("error") else None


def _value(raw: Any) -> float:
    return float(raw[1]) if isinstance(raw, list | tuple) and len(raw) == 2 else math.nan


class PrometheusMetrics:
    """A PromQL reader over ``prometheus-api-client``. The client is made
    lazily; every failure (unreachable, bad query, unexpected answer) is a
    :class:`StorageError` with one line."""

    def __init__(self, url: str, *, timeout: float = 10.0, retries: int = 2) -> None:
        if not url.startswith(("http://", "https://")):
            raise StorageError(f"prometheus URL must start with http:// or https://, not {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self._client: Any = None

    def _connect(self) -> Any:
        if self._client is None:
            from prometheus_api_client import PrometheusConnect
            from urllib3.util.retry import Retry

            retry = Retry(total=self.retries, backoff_factor=0.2, status_forcelist=[502, 503, 504])
            self._client = PrometheusConnect(url=self.url, retry=retry, timeout=self.timeout)  # type: ignore[arg-type]
        return self._client

    def _fail(self, promql: str, exc: Exception) -> StorageError:
        found = _HTTP_ERROR.match(str(exc))
        detail = (_api_error(found.group(2)) or f"HTTP {found.group(1)}") if found else f"{exc.__class__.__name__}: {exc}"
        detail = " ".join(detail.split())[:300]
        return StorageError(f"prometheus {self.url}: query {promql!r} failed: {detail}")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query. Each result is ``{"name", "labels", "value"}``
        (``name`` is the series name, ``None`` for computed series; a range
        vector gives its latest value; a scalar gives one unlabelled result)."""
        from prometheus_api_client import PrometheusApiClientException
        from requests import RequestException

        try:
            data = self._connect().custom_query(query=promql)
        except (RequestException, PrometheusApiClientException, ValueError, KeyError, TypeError) as exc:
            raise self._fail(promql, exc) from None
        return self._rows(promql, data)

    def _rows(self, promql: str, data: Any) -> list[dict[str, Any]]:
        if isinstance(data, list) and len(data) == 2 and not isinstance(data[0], dict):
            return [{"name": None, "labels": {}, "value": _value(data)}]  # scalar or string
        if not isinstance(data, list):
            raise StorageError(f"prometheus {self.url}: query {promql!r} answered {type(data).__name__}, not a vector")
        out = []
        for item in data:
            labels = {str(k): str(v) for k, v in dict(item.get("metric") or {}).items()}
            raw = item.get("value") or (item.get("values") or [None])[-1]
            out.append({"name": labels.pop("__name__", None), "labels": labels, "value": _value(raw)})
        return out

    def metric(self, name: str, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """The current value of every series ``name`` means (see
        :func:`metric_names`) whose labels include ``labels``."""
        return self.query(selector(name, labels))

    def reachable(self) -> bool:
        try:
            self.query("vector(1)")
        except StorageError:
            return False
        return True

    def tool_result(self, name: str, labels: dict[str, str] | None = None) -> ToolResult:
        """``get_metrics``'s answer, in the in-process reader's shape."""
        rows = [{"name": r["name"], "labels": r["labels"], "value": r["value"]} for r in self.metric(name, labels)]
        rows.sort(key=lambda r: (r["name"] or "", sorted(r["labels"].items())))
        if not rows:
            return ToolResult.no_data("get_metrics", f"no metric {name!r} in prometheus")
        return ToolResult.ok("get_metrics", rows)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
