"""``python -m app scan IN_DIR --out OUT_DIR``: build a dataset of enrolment-grade faces.

Every image under ``IN_DIR`` goes through the same ``Pipeline`` and gates as the service
(settings from ``config/config.yaml`` and ``FACEQ_*``). Accepted faces are written as aligned
112x112 PNGs to ``OUT_DIR/accepted/<name>_<n>.png`` (``n`` is the face's index among the image's
detections, as in the report line), optionally the marked image to ``OUT_DIR/marked/``, and one
JSON line per image to ``OUT_DIR/report.jsonl``.

Consistency: a report line is written (one ``write`` plus ``flush``) only after that image's
files exist, so an interrupted run leaves a report that names only finished images, and
``--resume`` skips exactly those. The first Ctrl-C stops after the image in progress; a second
one stops at once (the report stays valid: a half-written last line is dropped on resume).

Decoding runs on ``--workers`` threads feeding the one model thread (the models are not
thread-safe for parallel calls).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from tqdm import tqdm

from app.models_state import build_pipeline, default_policy
from app.runtime import configure_logging, configure_threads
from app.settings import SettingsError, load_settings
from models.decode import ImageError, decode_image
from models.pipeline import REASONS, Assessment, Pipeline, Policy
from models.png import encode_png
from models.report import face_entry, marked_jpeg

log = logging.getLogger(__name__)

EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".mpo"}
)
REPORT_NAME = "report.jsonl"
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class ScanOptions:
    """What to scan and where to write; see ``python -m app scan --help``."""

    in_dir: Path
    out_dir: Path
    recursive: bool = False
    workers: int = 2
    resume: bool = False
    marked: bool = False
    progress: bool = True


@dataclass
class Summary:
    """Counts of one run (images skipped by ``--resume`` are not assessed again)."""

    images_total: int = 0
    images_skipped: int = 0
    images_done: int = 0
    images_failed: int = 0
    faces_found: int = 0
    faces_accepted: int = 0
    faces_rejected: int = 0
    reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    seconds: float = 0.0
    interrupted: bool = False
    # Images below ``in_dir`` that a run without ``--recursive`` did not read.
    images_in_subfolders: int = 0

    @property
    def images_per_second(self) -> float:
        return self.images_done / self.seconds if self.seconds > 0 else 0.0

    def table(self) -> str:
        """The summary printed at the end of a run."""
        rows: list[tuple[str, str]] = [
            ("images found", str(self.images_total)),
            ("images skipped (--resume)", str(self.images_skipped)),
            ("images assessed", str(self.images_done)),
            ("images failed", str(self.images_failed)),
            ("faces found", str(self.faces_found)),
            ("faces accepted", str(self.faces_accepted)),
            ("faces rejected", str(self.faces_rejected)),
        ]
        rows += [(f"  rejected: {r}", str(self.reasons[r])) for r in REASONS]
        rows += [
            ("seconds", f"{self.seconds:.1f}"),
            ("images/s", f"{self.images_per_second:.2f}"),
        ]
        if self.interrupted:
            rows.append(("stopped early", "yes (run again with --resume)"))
        width = max(len(name) for name, _ in rows)
        lines = [f"{name:<{width}}  {value:>8}" for name, value in rows]
        rule = "-" * (width + 10)
        notes = ["(a rejected face counts under every gate it failed)"]
        if self.images_in_subfolders:
            count = self.images_in_subfolders
            notes.append(
                f"{count} image{'s' if count != 1 else ''} in subfolders not read: "
                "add --recursive to read them"
            )
        return "\n".join([rule, *lines, rule, *notes])


def find_images(in_dir: Path, recursive: bool, exclude: Path | None = None) -> list[Path]:
    """Image files under ``in_dir`` by extension (any case), sorted, ``exclude`` left out."""
    pattern = "**/*" if recursive else "*"
    excluded = exclude.resolve() if exclude is not None else None
    found = []
    for path in in_dir.glob(pattern):
        if path.suffix.lower() not in EXTENSIONS or not path.is_file():
            continue
        if excluded is not None and path.resolve().is_relative_to(excluded):
            continue
        found.append(path)
    return sorted(found, key=lambda p: p.relative_to(in_dir).as_posix())


def output_names(relpaths: Sequence[str]) -> dict[str, str]:
    """A unique, stable file-name stem per image: ``sub__dir__stem`` (``stem`` at the top).

    Two images that would share a stem (``a.jpg`` and ``a.png``, or a name that ``__`` joining
    makes ambiguous) get the extension and then a counter appended, in sorted order, so that a
    resumed run names files as the first run did.
    """
    names: dict[str, str] = {}
    taken: set[str] = set()
    for rel in sorted(relpaths):
        p = Path(rel)
        base = "__".join([*p.parent.parts, p.stem]) if p.parent.parts else p.stem
        name = base
        if name in taken:
            name = f"{base}_{p.suffix.lstrip('.').lower()}"
        counter = 2
        while name in taken:
            name = f"{base}_{counter}"
            counter += 1
        taken.add(name)
        names[rel] = name
    return names


def read_done(report: Path) -> set[str]:
    """Paths of the images already in ``report``; rewrites it without a torn last line."""
    if not report.is_file():
        return set()
    done: set[str] = set()
    kept: list[str] = []
    torn = False
    with report.open("r", encoding="utf-8") as fh:
        for line in fh:
            try:
                entry = json.loads(line)
                path = entry["path"]
            except (json.JSONDecodeError, KeyError, TypeError):
                torn = True
                continue
            if not line.endswith("\n"):
                line += "\n"
            done.add(path)
            kept.append(line)
    if torn:
        _write_atomic(report, "".join(kept).encode("utf-8"))
        log.warning("dropped an incomplete line from %s", report)
    return done


def _clear_previous(out_dir: Path) -> None:
    """Before a fresh run: remove the previous report and the files it names (nothing else)."""
    report = out_dir / REPORT_NAME
    if not report.is_file():
        return
    with report.open("r", encoding="utf-8") as fh:
        for line in fh:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            names = [f.get("crop") for f in entry.get("faces", [])] + [entry.get("marked")]
            for name in names:
                if name and not Path(name).is_absolute() and ".." not in Path(name).parts:
                    (out_dir / name).unlink(missing_ok=True)
    report.unlink()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # a file is either whole or absent


def _decode(path: Path, max_pixels: int) -> tuple[np.ndarray, float]:
    """Read and decode one file (runs on a decoding thread)."""
    start = time.perf_counter()
    image = decode_image(path.read_bytes(), max_pixels)
    return image, round((time.perf_counter() - start) * 1000.0, 2)


class _Interrupt:
    """First SIGINT: finish the current image, then stop. Second: KeyboardInterrupt."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after the current image (Ctrl-C again to stop now)", file=sys.stderr)


def _prefetch(
    paths: Sequence[Path], pool: concurrent.futures.Executor, depth: int, max_pixels: int
) -> Iterator[tuple[Path, concurrent.futures.Future[tuple[np.ndarray, float]]]]:
    """Yield (path, decode future) in order, keeping at most ``depth`` decodes ahead."""
    queue: collections.deque[tuple[Path, concurrent.futures.Future[Any]]] = collections.deque()
    it = iter(paths)
    for path in it:
        queue.append((path, pool.submit(_decode, path, max_pixels)))
        if len(queue) >= depth:
            break
    while queue:
        yield queue.popleft()
        nxt = next(it, None)
        if nxt is not None:
            queue.append((nxt, pool.submit(_decode, nxt, max_pixels)))


def _line(rel: str, assessment: Assessment, crops: dict[int, str], marked: str | None) -> str:
    faces = []
    for index, face in enumerate(assessment.faces):
        entry: dict[str, Any] = {"index": index}
        entry.update(face_entry(face, assessment.image, "none"))
        entry["verdict"] = "accepted" if face.accepted else "rejected"
        entry["reasons"] = list(face.reasons)
        if index in crops:
            entry["crop"] = crops[index]
        faces.append(entry)
    h, w = assessment.image.shape[:2]
    record = {
        "path": rel,
        "status": "ok",
        "image_id": assessment.image_id,
        "width": w,
        "height": h,
        "faces_found": len(assessment.faces),
        "faces_accepted": len(assessment.accepted),
        "faces_rejected": len(assessment.rejected),
        "faces": faces,
        "timing_ms": assessment.timing_ms,
        "pose_estimator": assessment.pose_estimator,
    }
    if marked is not None:
        record["marked"] = marked
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def _error_line(rel: str, code: str, message: str) -> str:
    record = {"path": rel, "status": "error", "error": {"code": code, "message": message}}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def _commit(report: TextIO, line: str) -> None:
    report.write(line)  # one write of a whole line, then flush: never half a record
    report.flush()


def run_scan(
    options: ScanOptions,
    pipeline: Pipeline,
    policy: Policy,
    max_pixels: int = 40_000_000,
    out: TextIO | None = None,
    on_image: Callable[[Summary], None] | None = None,
) -> Summary:
    """Scan ``options.in_dir`` with ``pipeline``; return the counts (also when interrupted).

    Raises:
        KeyboardInterrupt: never; an interruption ends the run with ``summary.interrupted``.
    """
    out_dir = options.out_dir
    accepted_dir = out_dir / "accepted"
    marked_dir = out_dir / "marked"
    accepted_dir.mkdir(parents=True, exist_ok=True)
    if options.marked:
        marked_dir.mkdir(parents=True, exist_ok=True)
    report_path = out_dir / REPORT_NAME
    if not options.resume:
        _clear_previous(out_dir)
    done = read_done(report_path) if options.resume else set()

    paths = find_images(options.in_dir, options.recursive, exclude=out_dir)
    rels = {p: p.relative_to(options.in_dir).as_posix() for p in paths}
    names = output_names(list(rels.values()))
    todo = [p for p in paths if rels[p] not in done]
    summary = Summary(images_total=len(paths), images_skipped=len(paths) - len(todo))
    if not options.recursive:
        # "0 images found" alone leaves someone whose photos sit in subfolders guessing.
        below = find_images(options.in_dir, recursive=True, exclude=out_dir)
        summary.images_in_subfolders = len(below) - len(paths)

    start = time.perf_counter()
    bar = tqdm(
        total=len(todo),
        unit="img",
        desc="scan",
        disable=not options.progress,
        file=sys.stderr,
        mininterval=0.5,
        dynamic_ncols=True,
    )
    workers = max(1, options.workers)
    pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="decode")
    try:
        with _Interrupt() as interrupt, report_path.open("a", encoding="utf-8") as report:
            for path, future in _prefetch(todo, pool, depth=2 * workers, max_pixels=max_pixels):
                if interrupt.requested:
                    summary.interrupted = True
                    break
                rel = rels[path]
                line = _assess_one(
                    path, rel, future, pipeline, policy, names[rel], options, summary
                )
                _commit(report, line)
                bar.update(1)
                bar.set_postfix(kept=summary.faces_accepted, failed=summary.images_failed)
                if on_image is not None:
                    on_image(summary)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        bar.close()
        summary.seconds = time.perf_counter() - start
    print(summary.table(), file=out or sys.stdout, flush=True)
    return summary


def _assess_one(
    path: Path,
    rel: str,
    future: concurrent.futures.Future[tuple[np.ndarray, float]],
    pipeline: Pipeline,
    policy: Policy,
    name: str,
    options: ScanOptions,
    summary: Summary,
) -> str:
    """Assess one image, write its files and return its report line (not yet written)."""
    try:
        image, decode_ms = future.result()
    except ImageError as exc:
        summary.images_failed += 1
        return _error_line(rel, exc.code, exc.message)
    except OSError as exc:
        summary.images_failed += 1
        return _error_line(rel, "unreadable", exc.strerror or type(exc).__name__)
    try:
        assessment = pipeline.assess_image(image, policy)
    except Exception as exc:
        # One image the models choke on must not end a long run; its line says so.
        log.exception("assessing %s failed", rel)
        summary.images_failed += 1
        return _error_line(rel, "assessment_failed", type(exc).__name__)
    assessment = replace(assessment, timing_ms={"decode": decode_ms, **assessment.timing_ms})
    crops: dict[int, str] = {}
    for index, face in enumerate(assessment.faces):
        if face.accepted:
            crop = Path("accepted") / f"{name}_{index}.png"
            _write_atomic(options.out_dir / crop, encode_png(face.aligned))
            crops[index] = crop.as_posix()
    marked = None
    if options.marked:
        marked = (Path("marked") / f"{name}.jpg").as_posix()
        _write_atomic(options.out_dir / marked, marked_jpeg(assessment))
    summary.images_done += 1
    summary.faces_found += len(assessment.faces)
    summary.faces_accepted += len(assessment.accepted)
    summary.faces_rejected += len(assessment.rejected)
    for face in assessment.rejected:
        summary.reasons.update(face.reasons)
    return _line(rel, assessment, crops, marked)


def parse_args(argv: Sequence[str]) -> ScanOptions:
    parser = argparse.ArgumentParser(
        prog="python -m app scan",
        description="Run the face-quality pipeline over a folder of images and keep the "
        "accepted faces as aligned 112x112 PNGs, with a JSON-lines report.",
    )
    parser.add_argument("in_dir", type=Path, help="folder of images")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--recursive", action="store_true", help="also scan subfolders")
    parser.add_argument(
        "--workers", type=int, default=2, help="decoding threads (the models use one thread)"
    )
    parser.add_argument(
        "--resume", action="store_true", help=f"skip images already in OUT/{REPORT_NAME}"
    )
    parser.add_argument("--marked", action="store_true", help="also write OUT/marked/*.jpg")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(list(argv))
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if not args.in_dir.is_dir():
        parser.error(f"not a folder: {args.in_dir}")
    return ScanOptions(
        in_dir=args.in_dir,
        out_dir=args.out,
        recursive=args.recursive,
        workers=args.workers,
        resume=args.resume,
        marked=args.marked,
        progress=not args.no_progress,
    )


def main(argv: Sequence[str]) -> int:
    """Entry point of ``python -m app scan``; 0 when done, 130 when interrupted, 2 on errors."""
    try:
        options = parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"faceq scan: {exc}", file=sys.stderr)
        return 2
    configure_logging("WARNING" if settings.log_level == "INFO" else settings.log_level)
    configure_threads(settings.torch_threads)
    try:
        options.out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"faceq scan: cannot create {options.out_dir}: {exc.strerror}", file=sys.stderr)
        return 2
    print("loading the models...", file=sys.stderr, flush=True)
    pipeline = build_pipeline(settings)
    summary = run_scan(options, pipeline, default_policy(settings), settings.max_pixels)
    print(f"report: {options.out_dir / REPORT_NAME}", flush=True)
    return EXIT_INTERRUPTED if summary.interrupted else 0
