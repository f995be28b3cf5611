"""Camera intake under load: four devices push while two clients upload, against a real service.

Starts ``python -m app serve`` as a subprocess (free port, temporary data dir, real models),
waits until it is ready, then for ``--duration`` seconds runs concurrently:

- four simulated devices, one per push style, each pushing as fast as it is answered (or at
  ``--rate`` events/s): an eventinfo camera, a Hikvision DeepinView (``alarmResult``), a
  Hikvision face terminal (``AccessControllerEvent`` + ``Picture``) and a Sophon SE box
  (``HistoryEvent`` JSON). Bodies are the ``data/cameras`` samples with a real face JPEG inside,
  each push made unique (pId / dateTime / timestamp / usn) so that none is a duplicate;
- two ``/upload`` clients, one image at a time each.

It reports the 200s and latency of intake (which must not wait for the pipeline) and of the
uploads, then checks that the events stored (``GET /events``) equal the pushes answered 200
(``events_lost``: answered 200 and not stored, must be 0), and with ``--drain`` waits for the
backlog to be processed and reports how long that took after the load stopped.
The last line printed is one JSON object with every figure.

With ``--postgres`` the service runs on a throwaway PostgreSQL server (``tests/pg.py``, the
schema made by ``app.push.schema.upgrade``), and ``--replicas N`` starts N services on it:
devices and uploaders are spread over them, and every replica's ``GET /events`` must list the
same events.

    .venv/bin/python bench/push_load.py --duration 60
    .venv/bin/python bench/push_load.py --duration 60 --postgres --replicas 2
    .venv/bin/python bench/push_load.py --duration 30 --rate 1 --uploaders 0 --drain \
        --postgres --replicas 2
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from service import Service  # noqa: E402 - bench/service.py, beside this script

from tests import pg  # noqa: E402
from tests.conftest import shared_data_dir  # noqa: E402

PLACEHOLDER_JPEG = b"\xff\xd8\xff\xd9"
PLACEHOLDER_B64 = b"/9j/2Q=="
_PART_LENGTH_RE = re.compile(rb"(?i)content-length:[ \t]*4(\r?\n\r?\n)(?=\xff\xd8\xff\xd9)")


def sample_body(path: Path, jpeg: bytes) -> tuple[bytes, str]:
    """Return a sample's body with the real JPEG in place of the placeholders, and its type."""
    raw = path.read_bytes()
    if path.suffix == ".http":
        head, _, body = raw.partition(b"\r\n\r\n")
        headers = dict(
            line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ": " in line
        )
        headers = {k.lower(): v for k, v in headers.items()}
        body = body[: int(headers["content-length"])]
        content_type = headers["content-type"]
    else:
        body, content_type = raw, "application/json"
    body = _PART_LENGTH_RE.sub(lambda m: b"Content-Length: %d" % len(jpeg) + m.group(1), body)
    body = body.replace(PLACEHOLDER_JPEG, jpeg).replace(PLACEHOLDER_B64, base64.b64encode(jpeg))
    return body, content_type


@dataclass
class Device:
    """One simulated device: its receiver path and how to make its n-th unique body."""

    name: str
    path: str
    content_type: str
    make: Callable[[int], bytes]
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0


def devices(cameras: Path, jpeg: bytes) -> list[Device]:
    """The four push styles; each ``make(n)`` replaces an id by one of the same length."""
    eventinfo, ct_a = sample_body(cameras / "A_eventinfo_face_pct2B.http", jpeg)
    alarm, ct_d = sample_body(cameras / "D_hik_alarmResult_multipart.http", jpeg)
    terminal, ct_t = sample_body(cameras / "D_hik_acs_AccessControllerEvent_Picture.http", jpeg)
    history, ct_c = sample_body(cameras / "C_sophon_historyevent_ext_data.http", jpeg)
    pid = b"2026080710460290900BYIGGXTwpPeGD"
    when = b"2026-07-14T11:33:19+08:00"
    base = datetime(2026, 7, 14, 11, 33, 19)
    stamp = 1560408984678
    assert b"usn=TN0123456789" in eventinfo and pid in alarm and when in terminal
    assert str(stamp).encode() in history

    def terminal_time(n: int) -> bytes:
        return ((base + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S") + "+08:00").encode()

    return [
        Device(
            "eventinfo",
            "/eventinfo",
            ct_a,
            lambda n: eventinfo.replace(b"usn=TN0123456789", b"usn=TN%010d" % n),
        ),
        Device(
            "hik_alarmResult", "/hikvision", ct_d, lambda n: alarm.replace(pid, b"LOAD%028d" % n)
        ),
        Device(
            "hik_terminal",
            "/hikvision",
            ct_t,
            lambda n: terminal.replace(when, terminal_time(n)),
        ),
        Device(
            "sophon_history",
            "/sophon/EventServer/api/HistoryEvent",
            ct_c,
            lambda n: history.replace(str(stamp).encode(), str(stamp + n).encode()),
        ),
    ]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100.0 * len(ordered)) - 1))]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000.0, 1)


def run_device(url: str, token: str, device: Device, stop_at: float, rate: float) -> None:
    session = requests.Session()
    n = 0
    next_at = time.monotonic()
    while time.monotonic() < stop_at:
        body = device.make(n)
        n += 1
        start = time.perf_counter()
        try:
            resp = session.post(
                f"{url}/push/{token}{device.path}",
                data=body,
                headers={"Content-Type": device.content_type},
                timeout=30,
            )
        except requests.RequestException:
            device.errors += 1
            continue
        device.latencies.append(time.perf_counter() - start)
        device.statuses[resp.status_code] = device.statuses.get(resp.status_code, 0) + 1
        if rate > 0:
            next_at += 1.0 / rate
            time.sleep(max(0.0, next_at - time.monotonic()))


@dataclass
class Uploader:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)


def run_uploader(url: str, token: str, image: bytes, stop_at: float, out: Uploader) -> None:
    session = requests.Session()
    while time.monotonic() < stop_at:
        start = time.perf_counter()
        resp = session.post(
            f"{url}/upload?images=none&mark=0",
            files={"image": ("face.jpg", image, "image/jpeg")},
            headers={"Authorization": token},
            timeout=120,
        )
        out.latencies.append(time.perf_counter() - start)
        out.statuses[resp.status_code] = out.statuses.get(resp.status_code, 0) + 1
        if resp.status_code == 503:
            time.sleep(0.2)


def stored_events(url: str, token: str) -> list[dict[str, Any]]:
    """Every stored event, through the paged ``GET /events``."""
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500}
        if cursor:
            params["since"] = cursor
        page = requests.get(
            f"{url}/events", params=params, headers={"Authorization": token}, timeout=60
        ).json()
        events.extend(page["events"])
        cursor = page["next"]
        if not cursor:
            return events


def wait_drained(urls: list[str], token: str, timeout: float) -> float | None:
    """Seconds until the backlog (``/readyz`` ``camera.backlog``: events waiting or in
    processing, in the shared store) is 0; None when not within ``timeout``. The figure is
    refreshed every 2 s by the service, so it is good to about 2 s."""
    start = time.monotonic()
    time.sleep(2.5)  # past one refresh of the figure after the last push
    while time.monotonic() - start < timeout:
        backlog = requests.get(urls[0] + "/readyz", timeout=10).json()["camera"]["backlog"]
        if backlog == 0:
            return round(time.monotonic() - start, 1)
        time.sleep(1.0)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--rate", type=float, default=0.0, help="events/s per device; 0 = max")
    parser.add_argument("--uploaders", type=int, default=2, help="concurrent /upload clients")
    parser.add_argument("--inbox-workers", type=int, default=1)
    parser.add_argument(
        "--data",
        type=Path,
        default=shared_data_dir(),
        help="the shared data folder (cameras/ and faces/)",
    )
    parser.add_argument("--face", default="faces/deepface/img5.jpg", help="JPEG inside pushes")
    parser.add_argument("--upload-image", default="faces/deepface/img11.jpg")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    parser.add_argument("--postgres", action="store_true", help="on a throwaway PostgreSQL")
    parser.add_argument("--replicas", type=int, default=1, help="services (needs --postgres)")
    parser.add_argument("--drain", action="store_true", help="wait for the backlog to empty")
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    if args.replicas > 1 and not args.postgres:
        parser.error("several replicas share a store only with --postgres")

    jpeg = (args.data / args.face).read_bytes()
    upload_image = (args.data / args.upload_image).read_bytes()
    fleet = devices(args.data / "cameras", jpeg)
    token = secrets.token_urlsafe(18)
    work = Path(tempfile.mkdtemp(prefix="faceq-push-load-"))
    work.chmod(0o755)  # the PostgreSQL server may run as another user below it
    env = {"FACEQ_INBOX_WORKERS": str(args.inbox_workers)}
    database = None
    services: list[Service] = []
    drain_s: float | None = None
    try:
        if args.postgres:
            from app.push import schema, store

            database = pg.start_server(work / "pg", durable=True)  # fsync on, as deployed
            env["FACEQ_DATABASE_URL"] = database.url("postgres")
            engine = store.create_engine(work, env["FACEQ_DATABASE_URL"])
            schema.upgrade(engine)
            engine.dispose()
        for n in range(args.replicas):
            services.append(Service(work / f"replica{n}", token, env))
        for service in services:
            service.wait_ready()
        stop_at = time.monotonic() + args.duration
        uploaders = [Uploader() for _ in range(args.uploaders)]
        urls = [s.url for s in services]
        threads = [
            threading.Thread(
                target=run_device, args=(urls[i % len(urls)], token, d, stop_at, args.rate)
            )
            for i, d in enumerate(fleet)
        ] + [
            threading.Thread(
                target=run_uploader,
                args=(urls[i % len(urls)], token, upload_image, stop_at, u),
            )
            for i, u in enumerate(uploaders)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        if args.drain:
            drain_s = wait_drained(urls, token, args.drain_timeout)
        listings = [stored_events(url, token) for url in urls]
        events = listings[0]
        ready = requests.get(urls[0] + "/readyz", timeout=10).json()
    finally:
        for service in services:
            service.stop()
        if database is not None:
            database.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    same_lists = all(
        sorted(e["id"] for e in listing) == sorted(e["id"] for e in events) for listing in listings
    )

    intake = [lat for d in fleet for lat in d.latencies]
    ok_pushes = sum(d.statuses.get(200, 0) for d in fleet)
    pushes = sum(len(d.latencies) for d in fleet) + sum(d.errors for d in fleet)
    upload_lat = [lat for u in uploaders for lat in u.latencies]
    upload_ok = sum(u.statuses.get(200, 0) for u in uploaders)
    done = sum(1 for e in events if e["status"] == "done")
    by_source: dict[str, int] = {}
    for event in events:
        by_source[event["source"]] = by_source.get(event["source"], 0) + 1

    print(f"camera intake load: {args.duration:.0f} s, 4 devices + {args.uploaders} uploaders")
    print(f"{'device':<16}{'pushes':>8}{'200':>8}{'other':>7}{'p50 ms':>9}{'p99 ms':>9}")
    for d in fleet:
        other = len(d.latencies) - d.statuses.get(200, 0) + d.errors
        print(
            f"{d.name:<16}{len(d.latencies) + d.errors:>8}{d.statuses.get(200, 0):>8}{other:>7}"
            f"{ms(percentile(d.latencies, 50)) or 0:>9}{ms(percentile(d.latencies, 99)) or 0:>9}"
        )
    print(
        f"{'all devices':<16}{pushes:>8}{ok_pushes:>8}{pushes - ok_pushes:>7}"
        f"{ms(percentile(intake, 50)) or 0:>9}{ms(percentile(intake, 99)) or 0:>9}"
    )
    print(
        f"{'uploads':<16}{len(upload_lat):>8}{upload_ok:>8}{len(upload_lat) - upload_ok:>7}"
        f"{ms(percentile(upload_lat, 50)) or 0:>9}{ms(percentile(upload_lat, 99)) or 0:>9}"
    )
    print(
        f"stored events {len(events)} (by source {by_source}); answered 200: {ok_pushes}; "
        f"processed by the end: {done}; backlog {ready.get('camera', {}).get('backlog')}"
    )
    consistent = len(events) == ok_pushes and same_lists
    print("stored == answered 200: " + ("yes" if len(events) == ok_pushes else "NO"))
    if len(services) > 1:
        print("every replica lists the same events: " + ("yes" if same_lists else "NO"))
    if args.drain:
        print(f"backlog drained {drain_s} s after the load stopped" if drain_s else "NOT drained")
    result = {
        "bench": "push_load",
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "store": "postgresql" if args.postgres else "sqlite",
        "replicas": len(services),
        "inbox_workers": args.inbox_workers,
        "rate_per_device": args.rate,
        "duration_s": round(elapsed, 1),
        "devices": len(fleet),
        "uploaders": args.uploaders,
        "pushes": pushes,
        "pushes_200": ok_pushes,
        "pushes_per_s": round(ok_pushes / elapsed, 1),
        "intake_p50_ms": ms(percentile(intake, 50)),
        "intake_p99_ms": ms(percentile(intake, 99)),
        "intake_max_ms": ms(max(intake) if intake else None),
        "accepted_events": len(events),
        "stored_equals_200": len(events) == ok_pushes,
        "events_lost": max(0, ok_pushes - len(events)),
        "replicas_list_the_same": same_lists,
        "drain_s": drain_s,
        "events_by_source": by_source,
        "events_processed": done,
        "uploads": len(upload_lat),
        "uploads_200": upload_ok,
        "upload_p50_ms": ms(percentile(upload_lat, 50)),
        "upload_p99_ms": ms(percentile(upload_lat, 99)),
        "upload_mean_ms": ms(statistics.fmean(upload_lat) if upload_lat else None),
    }
    print(json.dumps(result, sort_keys=False))
    return 0 if consistent else 1


if __name__ == "__main__":
    sys.exit(main())
