"""``POST /upload`` (one ``image`` field) and ``POST /uploads`` (several), the original's API."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import tornado.httputil
import tornado.web

from app.executor import Overloaded
from app.metrics import Metrics
from handlers.base import ApiError, StreamedBodyHandler, error_body
from models.decode import ImageError
from models.pipeline import Pipeline, Policy
from models.report import FLAG_VALUES, IMAGE_OPTIONS, ReportOptions, build_report

# Bodies up to this size are parsed on the IOLoop (1 MB: well under a millisecond).
PARSE_INLINE_BYTES = 1024 * 1024


def _dumps(obj: Any) -> bytes:
    # orjson: a report carries MBs of base64 that json.dumps scans byte by byte (famous-selfie,
    # 2.3 MB: 4.5 ms against 1.2 ms), holding the GIL. Same JSON, compact, UTF-8.
    return orjson.dumps(obj)


def report_for(
    pipeline: Pipeline,
    data: bytes,
    policy: Policy,
    options: ReportOptions,
    metrics: Metrics,
) -> dict[str, Any]:
    """Assess one file, build its report and count it in the metrics (runs on the executor)."""
    assessment = pipeline.assess(data, policy)
    report = build_report(assessment, options, pipeline.spare_pool())
    # The report's timing_ms includes the encode stage.
    metrics.record_image("upload", report["timing_ms"], (f.reasons for f in assessment.faces))
    return report


def assess_one(
    pipeline: Pipeline,
    data: bytes,
    policy: Policy,
    options: ReportOptions,
    metrics: Metrics,
) -> tuple[str, bytes]:
    """Run the pipeline on one file; return its image id and JSON report (runs on the executor)."""
    report = report_for(pipeline, data, policy, options, metrics)
    return report["image_id"], _dumps(report)


def assess_many(
    pipeline: Pipeline,
    files: list[tuple[str, bytes]],
    policy: Policy,
    options: ReportOptions,
    max_image_bytes: int,
    metrics: Metrics,
) -> tuple[list[str], bytes]:
    """Assess several files in order; a bad file becomes an error entry (runs on the executor).

    Returns:
        The image ids of the files that were assessed, and the JSON list of entries.
    """
    out: list[dict[str, Any]] = []
    ids: list[str] = []
    for name, data in files:
        if len(data) > max_image_bytes:
            entry = error_body(
                "image_too_large", f"the file is larger than {max_image_bytes} bytes"
            )
        else:
            try:
                entry = report_for(pipeline, data, policy, options, metrics)
                ids.append(entry["image_id"])
            except ImageError as exc:
                entry = error_body(exc.code, exc.message)
                entry["status"] = exc.status
        entry["filename"] = name
        out.append(entry)
    return ids, _dumps(out)


@tornado.web.stream_request_body
class UploadHandler(StreamedBodyHandler):
    """Assess the image in multipart field ``image`` and answer its report."""

    many = False
    image_id: str | None = None  # set once assessed; the request log line carries it

    def prepare(self) -> None:
        self._refusal: ApiError | None = None
        limit = self.services.settings.max_body_bytes
        size = self.read_declared_length()
        try:
            super().prepare()  # the token is checked before a byte of the body is kept
            self.start_body(limit)
            # Not ``self.options``: that name is RequestHandler's HTTP OPTIONS method.
            self.report_options = self._options()
            self.policy = self._policy()
        except ApiError as exc:
            if size is None or size > limit:
                raise  # answer now: the connection closes without reading the body
            # A refusal sent while the client is still sending the body is followed by the
            # connection's close, and clients (node, Postman) then see a reset instead of
            # our answer. The declared body is bounded: swallow it, then answer.
            self._refusal = exc

    def data_received(self, chunk: bytes) -> None:
        if self._refusal is None:
            self.keep_chunk(chunk)

    def _options(self) -> ReportOptions:
        images = self.get_query_argument("images", "all")
        if images not in IMAGE_OPTIONS:
            raise ApiError(400, "bad_parameter", "images must be one of all, aligned, none")
        flags = {}
        for name in ("mark", "rejected"):
            raw = self.get_query_argument(name, "1").strip().lower()
            if raw not in FLAG_VALUES:
                raise ApiError(400, "bad_parameter", f"{name} must be 0 or 1")
            flags[name] = FLAG_VALUES[raw]
        return ReportOptions(images=images, mark=flags["mark"], rejected=flags["rejected"])

    def _policy(self) -> Policy:
        params = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        try:
            return self.services.policy.with_overrides(params)
        except ValueError as exc:
            raise ApiError(400, "bad_parameter", str(exc)) from None

    def _files(self) -> list[tuple[str, bytes]]:
        content_type = self.request.headers.get("Content-Type", "")
        if not content_type.lower().startswith("multipart/form-data"):
            raise ApiError(
                415, "unsupported_media_type", "send multipart/form-data with an 'image' field"
            )
        args: dict[str, list[bytes]] = {}
        files: dict[str, list[tornado.httputil.HTTPFile]] = {}
        try:
            tornado.httputil.parse_body_arguments(
                content_type, self.take_body(), args, files, self.request.headers
            )
        except tornado.httputil.HTTPInputError:
            raise ApiError(
                400, "bad_multipart", "the multipart/form-data body is malformed"
            ) from None
        found = [(f.filename or "image", f.body) for f in files.get("image", [])]
        # A client that sends the bytes as a plain field (no filename) still means an image.
        found += [("image", body) for body in args.get("image", [])]
        if not found:
            raise ApiError(400, "missing_field", "the multipart field 'image' is missing")
        return found

    def _pipeline(self) -> Pipeline:
        pipeline = self.services.models.pipeline
        if pipeline is None:
            raise ApiError(
                503, "not_ready", "the models are still loading", headers={"Retry-After": "5"}
            )
        return pipeline

    async def post(self) -> None:
        if self._refusal is not None:
            raise self._refusal
        if self._finished:  # answered 413 while the body streamed in
            return
        if self.body_size > PARSE_INLINE_BYTES:
            # Joining and splitting a big multipart body took 10-35 ms for 20 MB: off the
            # IOLoop, so that probes and other requests are not held up meanwhile.
            files = await asyncio.get_running_loop().run_in_executor(None, self._files)
        else:
            files = self._files()
        pipeline = self._pipeline()
        max_image = self.services.settings.max_image_bytes
        metrics = self.services.metrics
        try:
            if self.many:
                ids, body = await self.services.executor.submit(
                    assess_many,
                    pipeline,
                    files,
                    self.policy,
                    self.report_options,
                    max_image,
                    metrics,
                )
                self.image_id = ",".join(ids) or None
            else:
                name, data = files[0]
                if len(data) > max_image:
                    raise ApiError(413, "image_too_large", f"the file exceeds {max_image} bytes")
                self.image_id, body = await self.services.executor.submit(
                    assess_one, pipeline, data, self.policy, self.report_options, metrics
                )
        except Overloaded:
            raise ApiError(
                503,
                "overloaded",
                "too many images in progress; retry shortly",
                headers={"Retry-After": "1"},
            ) from None
        except ImageError as exc:
            raise ApiError(exc.status, exc.code, exc.message) from None
        self.finish(body)


class UploadsHandler(UploadHandler):
    """Assess every ``image`` field in order; answer a JSON list with one entry per file."""

    many = True


routes = [
    (r"/upload", UploadHandler),
    (r"/uploads", UploadsHandler),
]
