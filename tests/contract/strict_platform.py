"""Both platforms as one strict server, written from api-contracts.md only (README.md here).

Every deviation from the contract is answered as the platform would and recorded,
so test_client_contract.py can say what our real client did wrong.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


from contract_fixture import fixture_item, ASSERTION_TYPE, T_FAIL, T_ODD, T_OK

dataclass_frozen = dataclass(frozen=True)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass_frozen
class RawAnswer:
    content_type: str
    text: str


DROP = object()  # a route's answer: processed, then the connection is closed without a response


class StrictPlatform:
    """Both platforms, written from api-contracts.md only, strict where the contract is.

    Every deviation from the contract is answered as the platform would (an error
    status) and also recorded in `violations`, so a test can say what was wrong.
    """

    TENANT = "5f4dcc3b-5aa7-4c8e-9d2b-0a1b2c3d4e5f"
    KID = "b1946ac9-2492-4c1f-8d7e-6a5b4c3d2e1f"
    CLIENT_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
    CLIENT_SECRET = "s3cr3t-7c9e6679"
    FILTERS = frozenset(
        {
            "id",
            "uuid",
            "type",
            "queue",
            "priority",
            "startedBy",
            "policyId",
            "policyName",
            "policyType",
            "resourceId",
            "resourceName",
            "resourceType",
            "workflowId",
            "tag",
            "state",
            "resultCode",
        }
    )
    TIME_FILTERS = frozenset({"enqueuedAt", "assignedAt", "startedAt", "updatedAt", "completedAt"})
    OTHER = frozenset({"lod", "order", "executorId", "allow_deleted", "limit", "after", "before"})

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.lock = threading.Lock()
        self.violations: list[str] = []
        self.log: list[dict[str, Any]] = []
        self.jtis: set[str] = set()
        self.assertions: list[dict[str, Any]] = []
        self.tokens: dict[str, dict[str, Any]] = {}
        self.tasks = {
            T_OK: ("Pull partner orders", ["success"]),
            T_FAIL: ("Broken export", ["failed"]),
            T_ODD: ("Orders & invoices + 50% #1/2?", ["success"]),
        }
        self.runs: dict[str, dict[str, Any]] = {}
        self.acronis: list[dict[str, Any]] = []
        # platform -> (N, status): the platform's first token dies after N API calls, answering
        # `status` from then on (401 revoked/unknown; 403 for an MFT token that expired early).
        self.kill_first_token: dict[str, tuple[int, int]] = {}
        self.forbid: set[str] = set()  # platforms whose API answers 403 to every call
        self.api_calls = {"mft": 0, "acronis": 0}
        self.expires_in: int | None = 300
        self.expiry_grace = 0.0  # seconds a token still works after its announced expiry
        self.phases: tuple[str, ...] = ("queued", "running")  # a run's statuses before its outcome
        self.policy_runs: list[dict[str, Any]] = []
        self.policy_run_answer: str = (
            "ok"  # ok | drop (processed, then the connection closes) | 503
        )
        self.raw_start_answer: tuple[int, str, str] | None = None  # status, content type, text
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        server.daemon_threads = True
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self.thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def private_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def violation(self, text: str) -> None:
        with self.lock:
            self.violations.append(text)

    def calls(self, method: str, prefix: str) -> list[dict[str, Any]]:
        return [r for r in self.log if r["method"] == method and r["path"].startswith(prefix)]

    # ---------------------------------------------------------------- Acronis data

    def add_acronis_task(
        self,
        *,
        state: str,
        type_: str = "backup",
        code: str | None = None,
        complete_after: float | None = None,
        result: str = "ok",
    ) -> int:
        """An Acronis task in the fixture's shape; it completes `complete_after` s from now."""
        with self.lock:
            task_id = (
                (1 << 60) + 1 + 2 * len(self.acronis)
            )  # above 2**53, odd: a float would change it
            item = dict(fixture_item())
            item.update(
                id=task_id,
                idString=str(task_id),
                uuid=str(uuid.uuid4()),
                state=state,
                type=type_,
                assignCount=1,
                queue="backup",
            )
            item.pop("result", None)
            item.pop("completedAt", None)
            if state == "completed":
                item["result"] = {"code": code or "ok", "payload": ""}
                item["completedAt"] = item["updatedAt"]
            self.acronis.append(
                {
                    "item": item,
                    "complete_at": None if complete_after is None else time.time() + complete_after,
                    "result": result,
                }
            )
            return task_id

    def acronis_items(self) -> list[dict[str, Any]]:
        now = time.time()
        out = []
        for entry in self.acronis:
            item = dict(entry["item"])
            if entry["complete_at"] is not None and now >= entry["complete_at"]:
                item["state"] = "completed"
                item["completedAt"] = "2026-11-23T10:00:00.123456789Z"
                item["result"] = {"code": entry["result"], "payload": ""}
                if entry["result"] == "error":
                    item["result"]["error"] = {
                        "domain": "backup",
                        "code": "Failed",
                        "reason": "disk full",
                    }
            out.append(item)
        return out

    # ---------------------------------------------------------------- HTTP

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                split = urlsplit(self.path)
                body = self._body()
                record = {
                    "method": method,
                    "path": split.path,
                    "query": split.query,
                    "headers": dict(self.headers),
                    "body": body,
                }
                with platform.lock:
                    platform.log.append(record)
                try:
                    status, answer = platform.route(
                        method,
                        split.path,
                        parse_qs(split.query, keep_blank_values=True),
                        self.headers,
                        body,
                        split.query,
                    )
                except Exception as exc:  # noqa: BLE001 - a bug here must show, not hang the client
                    platform.violation(f"server error {exc!r}")
                    status, answer = 500, {"error": "server", "message": repr(exc)}
                record["status"] = status
                if answer is DROP:  # processed, but the answer never leaves
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if isinstance(answer, RawAnswer):
                    data = answer.text.encode()
                    self.send_response(status)
                    self.send_header("Content-Type", answer.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self._send(status, answer)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        return Handler

    def route(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Any,
        body: bytes,
        raw_query: str,
    ) -> tuple[int, Any]:
        if path == "/v1/oauth/token" and method == "POST":
            return self.mft_token(headers, body)
        if path == "/api/2/idp/token" and method == "POST":
            return self.acronis_token(headers, body)
        if path.startswith("/v1/"):
            return self.mft_api(method, path, query, headers, body, raw_query)
        if path.startswith("/api/task_manager/v2/"):
            return self.acronis_api(method, path, query, headers, raw_query)
        if path == "/api/policy_management/v4/applications/run" and method == "PUT":
            return self.policy_run(headers, body)
        self.violation(f"undocumented call {method} {path}")
        return 404, {"error": "not_found", "message": path}

    # ---------------------------------------------------------------- Automate MFT

    def mft_token(self, headers: Any, body: bytes) -> tuple[int, Any]:
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype == "application/json":
            fields = json.loads(body or b"{}")
        elif ctype == "application/x-www-form-urlencoded":
            fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        else:
            self.violation(f"MFT token request with Content-Type {ctype!r}")
            return 400, {"error": "invalid_request", "error_description": "bad content type"}
        if (
            fields.get("grant_type") != "client_credentials"
            or fields.get("client_assertion_type") != ASSERTION_TYPE
        ):
            self.violation(f"MFT token fields {sorted(fields)} {fields.get('grant_type')!r}")
            return 400, {"error": "invalid_request", "error_description": "grant"}
        text = fields.get("client_assertion", "")
        try:
            header = jwt.get_unverified_header(text)
            if header.get("alg") != "ES256" or header.get("kid") != self.KID:
                raise jwt.InvalidTokenError(f"header {header}")
            claims = jwt.decode(
                text,
                self.key.public_key(),
                algorithms=["ES256"],
                audience=f"{self.url}/v1/oauth/token",
                leeway=5,
                options={"require": ["aud", "iss", "sub", "exp", "iat", "nbf", "jti"]},
            )
            now = time.time()
            if claims["iss"] != self.TENANT or claims["sub"] != self.TENANT:
                raise jwt.InvalidTokenError("iss/sub")
            if claims["exp"] > now + 600:
                raise jwt.InvalidTokenError("exp more than 10 minutes ahead")
            if claims["nbf"] > now + 5 or claims["iat"] > now + 5:
                raise jwt.InvalidTokenError("nbf/iat in the future")
            with self.lock:
                self.assertions.append(dict(claims, _header=header))
                if claims["jti"] in self.jtis:
                    raise jwt.InvalidTokenError("jti replayed")
                self.jtis.add(claims["jti"])
        except jwt.PyJWTError as exc:
            self.violation(f"MFT assertion rejected: {exc}")
            return 401, {"error": "invalid_client", "error_description": str(exc)}
        token = _b64(uuid.uuid4().bytes + uuid.uuid4().bytes)
        lifetime = self.expires_in or 300
        with self.lock:
            self.tokens[token] = {
                "platform": "mft",
                "expires": time.time() + lifetime,
                "revoked": False,
                "n": sum(1 for t in self.tokens.values() if t["platform"] == "mft") + 1,
            }
        answer: dict[str, Any] = {"access_token": token, "token_type": "bearer"}
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        return 200, answer

    def bearer(self, headers: Any, platform: str) -> tuple[dict[str, Any] | None, int]:
        value = headers.get("Authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None, 401
        with self.lock:
            info = self.tokens.get(token.strip())
        if info is None or info["platform"] != platform or info["revoked"]:
            return None, 401
        if time.time() >= info["expires"] + self.expiry_grace:
            return None, 403 if platform == "mft" else 401
        return info, 200

    def count_call(self, info: dict[str, Any], platform: str) -> int:
        with self.lock:
            self.api_calls[platform] += 1
            if platform in self.forbid:
                return 403
            if info.get("dead"):
                return info["dead"]
            kill = self.kill_first_token.get(platform)
            if kill is not None and info["n"] == 1 and self.api_calls[platform] > kill[0]:
                info["dead"] = kill[1]
                return kill[1]
        return 200

    def mft_api(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Any,
        body: bytes,
        raw_query: str,
    ) -> tuple[int, Any]:
        info, status = self.bearer(headers, "mft")
        if info is None:
            return status, {
                "error": "unauthorized" if status == 401 else "forbidden",
                "message": "token",
            }
        status = self.count_call(info, "mft")
        if status != 200:
            return status, {
                "error": "unauthorized" if status == 401 else "forbidden",
                "message": "token",
            }
        if method == "GET" and path == "/v1/licenses/current":
            return 200, {
                "tier": "Professional",
                "startDate": "2026-01-01",
                "endDate": "2027-01-01",
                "taskExecutions": {"used": len(self.runs), "limit": 1000},
            }
        if method == "POST" and (
            path == "/v1/tasks/start" or (path.startswith("/v1/tasks/") and path.endswith("/start"))
        ):
            if (headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
                self.violation(
                    f"start without a JSON body: {headers.get('Content-Type')!r} {body!r}"
                )
                return 400, {
                    "error": "bad_request",
                    "message": "a JSON object is expected ({} for none)",
                }
            try:
                params = json.loads(body)
            except ValueError:
                params = None
            if not isinstance(params, dict):
                self.violation(f"start body is not a JSON object: {body!r}")
                return 400, {"error": "bad_request", "message": "a JSON object is expected"}
            if path == "/v1/tasks/start":
                # RFC 3986 reading of ?name={task_name}: '+' is a plus sign, not a space.
                names = [
                    unquote(part[len("name=") :])
                    for part in raw_query.split("&")
                    if part.startswith("name=")
                ]
                task_id = next(
                    (tid for tid, (name, _) in self.tasks.items() if [name] == names), None
                )
            else:
                task_id = path[len("/v1/tasks/") : -len("/start")]
            if task_id not in self.tasks:
                return 404, {"error": "not_found", "message": "no such task"}
            if self.raw_start_answer is not None:
                status, ctype, text = self.raw_start_answer
                return status, RawAnswer(ctype, text)
            run_id = str(uuid.uuid4())
            with self.lock:
                outcomes = self.tasks[task_id][1]
                attempt = sum(1 for r in self.runs.values() if r["task"] == task_id)
                self.runs[run_id] = {
                    "task": task_id,
                    "params": params,
                    "polls": 0,
                    "outcome": outcomes[min(attempt, len(outcomes) - 1)],
                }
            return 200, {"id": run_id}
        if method == "GET" and path.startswith("/v1/task-runs/"):
            run_id = path[len("/v1/task-runs/") :]
            with self.lock:
                run = self.runs.get(run_id)
                if run is None:
                    return 404, {"error": "not_found", "message": "no such run"}
                run["polls"] += 1
                polls = run["polls"]
            phases = self.phases
            status = phases[polls - 1] if polls <= len(phases) else run["outcome"]
            return 200, {
                "id": run_id,
                "taskId": run["task"],
                "status": {"taskRunStatus": status},
                "agent": "agent-1",
                "startTime": "2026-11-23T10:00:00Z",
            }
        self.violation(f"undocumented MFT call {method} {path}")
        return 404, {"error": "not_found", "message": path}

    # ---------------------------------------------------------------- Acronis

    def acronis_token(self, headers: Any, body: bytes) -> tuple[int, Any]:
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/x-www-form-urlencoded":
            self.violation(f"Acronis token request with Content-Type {ctype!r}")
            return 400, {"error": "invalid_request", "error_description": "form body expected"}
        if parse_qs(body.decode()) != {"grant_type": ["client_credentials"]}:
            self.violation(f"Acronis token body {body!r}")
            return 400, {"error": "unsupported_grant_type", "error_description": "grant"}
        scheme, _, encoded = (headers.get("Authorization") or "").partition(" ")
        try:
            user, _, secret = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            user = secret = ""
        if scheme.lower() != "basic" or (user, secret) != (self.CLIENT_ID, self.CLIENT_SECRET):
            self.violation("Acronis token request without the right HTTP Basic credentials")
            return 401, {"error": "invalid_client", "error_description": "Invalid client"}
        token = _b64(uuid.uuid4().bytes * 2)
        expires_on = int(time.time()) + 7200
        with self.lock:
            self.tokens[token] = {
                "platform": "acronis",
                "expires": expires_on,
                "revoked": False,
                "n": sum(1 for t in self.tokens.values() if t["platform"] == "acronis") + 1,
            }
        return 200, {
            "access_token": token,
            "expires_on": expires_on,
            "id_token": "x.y.z",
            "token_type": "bearer",
        }

    def policy_run(self, headers: Any, body: bytes) -> tuple[int, Any]:
        """Start a protection plan [doc].

        Answer: {"state": "running", "policy_id": ..., "context_ids": [...]}.
        """
        info, status = self.bearer(headers, "acronis")
        if info is None:
            return status, {"error": "unauthorized"}
        fields = json.loads(body or b"null")
        if (
            not isinstance(fields, dict)
            or fields.get("state") != "running"
            or not fields.get("policy_id")
        ):
            self.violation(f"policy run body {body!r}")
            return self.acronis_error(400, "state running and policy_id expected")
        with self.lock:
            self.policy_runs.append(fields)
        if self.policy_run_answer == "drop":
            return 200, DROP
        if self.policy_run_answer == "503":
            return self.acronis_error(503, "busy")
        return 200, {}

    def acronis_error(self, status: int, reason: str) -> tuple[int, Any]:
        return status, {
            "domain": "TaskManager",
            "code": "Error",
            "reason": reason,
            "context": {},
            "kbLink": {},
            "debug": {},
        }

    def acronis_api(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, raw_query: str
    ) -> tuple[int, Any]:
        if not (headers.get("Authorization") or "").startswith("Bearer "):
            self.violation(
                "Acronis call without 'Authorization: Bearer': "
                f"{headers.get('Authorization')!r:.12}"
            )
        info, status = self.bearer(headers, "acronis")
        if info is None:
            return status, {"error": "unauthorized"}
        status = self.count_call(info, "acronis")
        if status != 200:
            return (
                self.acronis_error(status, "token")
                if status == 403
                else (status, {"error": "unauthorized"})
            )
        if method != "GET":
            self.violation(f"Acronis task manager is read-only: {method} {path}")
            return 405, {}
        items = self.acronis_items()
        if path.startswith("/api/task_manager/v2/tasks/"):
            wanted = path.rsplit("/", 1)[1]
            for item in items:
                if wanted in (item["idString"], item["uuid"]):
                    return 200, item
            return self.acronis_error(404, f"task {wanted} not found")
        if path != "/api/task_manager/v2/tasks":
            self.violation(f"undocumented Acronis call {path}")
            return self.acronis_error(404, path)
        for name, values in query.items():
            if name not in self.FILTERS | self.TIME_FILTERS | self.OTHER:
                self.violation(f"unknown query parameter {name}")
            if any("," in v for v in values) and name in self.FILTERS:
                self.violation(f"comma-separated values for {name}: {values}")
                return self.acronis_error(400, "comma-separated values")
            if name in self.TIME_FILTERS | {"limit", "after", "before", "lod"} and len(values) > 1:
                self.violation(f"{name} given {len(values)} times")
        limit = int(query.get("limit", ["3"])[0])
        if "after" in query or "before" in query:
            extra = set(query) - {"limit", "after", "before", "lod"}
            if extra:
                self.violation(f"a follow-up page repeats the query: {sorted(extra)}")
                return self.acronis_error(400, "a cursor carries the query")
            text = query.get("after", query.get("before"))[0]
            if not (text.startswith("+/") and text.endswith("==")):
                self.violation(f"cursor mangled in transit: {text!r}")
                return self.acronis_error(400, "bad cursor")
            cursor = json.loads(base64.b64decode(text[2:-2]))
            query, position, direction = cursor["query"], cursor["key"], cursor["dir"]
        else:
            position, direction = None, "after"
        for name, values in query.items():
            if name in self.FILTERS:

                def field(item: dict[str, Any], name: str = name) -> str | None:
                    if name == "resultCode":
                        return (item.get("result") or {}).get("code")
                    return str(item.get(name)) if name != "id" else item["idString"]

                items = [i for i in items if field(i) in values]
        # Keyset paging by id: a cursor names the id it follows (or precedes), so tasks leaving
        # the result between two pages shift nothing.
        items.sort(key=lambda i: i["id"])
        if position is None:
            offset = 0
        elif direction == "after":
            offset = next((n for n, i in enumerate(items) if i["id"] > position), len(items))
        else:
            end = next((n for n, i in enumerate(items) if i["id"] >= position), len(items))
            offset, limit = max(0, end - limit), min(limit, end)
        page = items[offset : offset + limit]
        cursors: dict[str, str] = {}
        keep = {k: v for k, v in query.items() if k not in ("limit", "after", "before", "lod")}
        # Cursors carry '+', '/' and '=' (like the documented "0A8AAAAAAAAAAA=="): a client that
        # does not URL-encode them sends a different cursor.
        if page and offset + len(page) < len(items):
            cursors["after"] = (
                "+/"
                + base64.b64encode(
                    json.dumps({"query": keep, "key": page[-1]["id"], "dir": "after"}).encode()
                ).decode()
                + "=="
            )
        if page and offset > 0:
            cursors["before"] = (
                "+/"
                + base64.b64encode(
                    json.dumps({"query": keep, "key": page[0]["id"], "dir": "before"}).encode()
                ).decode()
                + "=="
            )
        return 200, {"items": page, "paging": {"cursors": cursors}}
