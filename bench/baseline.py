"""The plain operator script mftrun is compared with, written from the vendor's "Start task" sample.

What an operator writes without a runner: run the tasks one after another (in
the file's order, which respects the dependencies), and for each task get a fresh
token with a JWT client assertion, start the task, then poll every 5 seconds until
it is `success` or `failed`. Every call is a bare `requests.post` / `requests.get`
(no Session): a new TCP connection per call, as in the sample. A 403 renews the
token once, as the sample does.

    MFT_TENANT_ID=... MFT_KEY_ID=... MFT_PRIVATE_KEY_FILE=... \
    python bench/baseline.py --base-url http://127.0.0.1:PORT --tasks tasks.json [--poll 5]

`tasks.json` is a JSON list of task ids. Prints one JSON line: tasks run, failures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid

import jwt
import requests


def get_token(base_url: str, tenant_id: str, key_id: str, private_key: str) -> str:
    now = int(time.time())
    assertion = jwt.encode(
        {
            "iss": tenant_id,
            "sub": tenant_id,
            "aud": f"{base_url}/v1/oauth/token",
            "iat": now,
            "nbf": now,
            "exp": now + 240,
            "jti": str(uuid.uuid4()),
        },
        private_key,
        algorithm="ES256",
        headers={"kid": key_id},
    )
    response = requests.post(
        f"{base_url}/v1/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def run_task(base_url: str, task_id: str, creds: tuple[str, str, str], poll: float) -> str:
    token = get_token(base_url, *creds)
    response = requests.post(
        f"{base_url}/v1/tasks/{task_id}/start",
        json={},
        headers={"Authorization": f"bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    run_id = response.json()["id"]
    while True:
        time.sleep(poll)
        response = requests.get(
            f"{base_url}/v1/task-runs/{run_id}",
            headers={"Authorization": f"bearer {token}"},
            timeout=30,
        )
        if response.status_code == 403:  # the sample's renewal path
            token = get_token(base_url, *creds)
            continue
        response.raise_for_status()
        status = response.json()["status"]["taskRunStatus"]
        if status in ("success", "failed"):
            return status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--tasks", required=True, help="JSON file: a list of task ids in run order")
    parser.add_argument(
        "--poll", type=float, default=5.0, help="seconds between polls (the sample's 5)"
    )
    args = parser.parse_args()
    with open(os.environ["MFT_PRIVATE_KEY_FILE"], encoding="utf-8") as fh:
        creds = (os.environ["MFT_TENANT_ID"], os.environ["MFT_KEY_ID"], fh.read())
    with open(args.tasks, encoding="utf-8") as fh:
        tasks = json.load(fh)
    failed = sum(run_task(args.base_url, t, creds, args.poll) != "success" for t in tasks)
    print(json.dumps({"tasks": len(tasks), "failed": failed}))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
