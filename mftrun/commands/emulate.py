"""`mftrun emulate`: run the emulator standalone until Ctrl-C.

Prints the base URL, the export lines and a ready-to-paste `environments:` block,
so a user can rehearse a pipeline (failure branches included) before it touches
production. Ctrl-C or SIGTERM is the normal way to stop a foreground server, so
both exit 0.
"""

from __future__ import annotations

import argparse

HELP = "run a local emulator of the Automate MFT and Acronis APIs (until Ctrl-C)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        metavar="FILE",
        help="scenario YAML (tasks, timelines, faults); default: one tenant, one client, no tasks",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        metavar="N",
        help="port on 127.0.0.1 (default: any free port)",
    )
    parser.add_argument(
        "--credentials-dir",
        metavar="DIR",
        help="where to write the generated private key and env.sh "
        "(default: a temporary folder removed on exit)",
    )


def environment_block(url: str, env: dict[str, str]) -> str:
    return "\n".join(
        [
            "environments:",
            "  mft:",
            "    provider: automate-mft",
            "    base_url: {env: MFT_BASE_URL}",
            "    credentials:",
            "      tenant_id: {env: MFT_TENANT_ID}",
            "      key_id: {env: MFT_KEY_ID}",
            "      private_key: {file: {env: MFT_PRIVATE_KEY_FILE}}"
            + (
                ""
                if "MFT_PRIVATE_KEY_FILE" in env
                else "   # the scenario registers public keys only: export your own key's path"
            ),
            "  backup:",
            "    provider: acronis",
            "    base_url: {env: ACRONIS_BASE_URL}",
            "    credentials:",
            "      client_id: {env: ACRONIS_CLIENT_ID}",
            "      client_secret: {env: ACRONIS_CLIENT_SECRET}",
        ]
    )


def run(args: argparse.Namespace) -> int:
    import os
    import shlex
    import signal
    import sys
    import tempfile
    import threading
    from contextlib import ExitStack
    from pathlib import Path

    from mftrun.emulator import Emulator, Scenario, load_scenario
    from mftrun.errors import UsageError

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0..65535, not {args.port}")
    scenario = load_scenario(args.scenario) if args.scenario else Scenario.default()
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    with ExitStack() as stack:
        emulator = Emulator(scenario, port=args.port)
        try:
            emulator.start()
        except OSError as exc:
            raise UsageError(
                f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}",
                hint="choose another --port, or 0 for any free port",
            ) from None
        stack.callback(emulator.stop)
        if args.credentials_dir:
            folder = Path(os.path.expanduser(args.credentials_dir))
        else:
            folder = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="mftrun-emulator-"))
            )
        env = {
            "MFT_BASE_URL": emulator.url,
            "ACRONIS_BASE_URL": emulator.url,
            **emulator.write_credentials(folder),
        }
        exports = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())
        from mftrun.private_files import write_private

        write_private(folder, "env.sh", exports + "\n")
        url = emulator.url
        print(f"mftrun emulator listening on {url}  (Automate MFT under /v1, Acronis under /api)")
        print(
            f"scenario: {scenario.source}  speed {scenario.speed:g}x, "
            f"{len(scenario.mft_tasks)} MFT tasks, "
            f"{len(scenario.acronis_tasks)} Acronis tasks, {len(scenario.faults)} faults"
        )
        print(f"journal:  {url}/_emulator/journal")
        print(f"credentials written to {folder} (source {folder / 'env.sh'})")
        print()
        print(exports)
        print()
        print("# paste into your pipeline file:")
        print(environment_block(url, env))
        print()
        previous = signal.signal(signal.SIGTERM, on_signal)
        try:
            # said inside the try: a Ctrl-C the moment the line appears is a clean stop too
            print("Press Ctrl-C to stop.", flush=True)
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
        journal = emulator.journal
        print(
            f"\nstopped: {journal.request_count} requests, {len(journal.runs)} MFT runs started, "
            f"{len(journal.faults)} faults applied",
            file=sys.stderr,
        )
    return 0
