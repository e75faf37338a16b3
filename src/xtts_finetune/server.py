"""REST server: an OpenAI-compatible speech endpoint over one `Synthesizer`.

The model runs on a single worker thread that speaks the requests together, as one continuous batch
of at most `max_batch` sentences (a request arriving joins the batch in flight, one whose client left
leaves it); at most `max_queue` requests are admitted (running or waiting), the rest get 503 with
Retry-After, so a burst never exhausts memory.
The text front end runs on that thread too, inside the admitted work, so `/health` and open streams
never wait for it. Before any body is read, the Host header (DNS rebinding) and the token are
checked, and the body is counted as it arrives (chunked too). A client that leaves stops its work.
Every error is JSON in OpenAI's shape, {"error": {"message", "type"}}, and bad input is never a 500
(a Host header off the allow-list, a browser's rebinding attempt rather than a client, gets a plain 400).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from xtts_finetune import __version__
from xtts_finetune.audio_out import encode, pcm16, wav_header
from xtts_finetune.errors import UserError
from xtts_finetune.languages import guess_language
from xtts_finetune.synthesis import Synthesizer
from xtts_finetune.utils import is_loopback

log = logging.getLogger(__name__)

MEDIA_TYPES = {"wav": "audio/wav", "pcm": "audio/pcm", "mp3": "audio/mpeg", "flac": "audio/flac", "opus": "audio/ogg"}
STREAMED_FORMATS = ("wav", "pcm")
# Names a browser may use for a loopback server; any other Host header is a DNS-rebinding attempt.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
OPEN_PATHS = ("/health",)  # everything else, /docs and /openapi.json included, needs the token
TOKEN_ENV = "XTTS_FINETUNE_TOKEN"
MAX_INPUT_CHARS = 4000  # characters one request may speak; the web UI's Speak tab keeps the same limit
_DONE = object()
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
# OpenAI's voice names: its clients send one of these; each means the model's default voice unless the
# model has a voice of that name.
OPENAI_VOICES = ("alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx", "sage",
                 "shimmer", "verse")


class SpeechBody(BaseModel):
    """OpenAI's /v1/audio/speech body, plus `language` and `seed`; unknown fields are ignored."""

    model: Optional[str] = Field(None, description="accepted for compatibility; the server speaks with its one model")
    input: str = Field(..., description="the text to speak")
    voice: Optional[str] = Field(None, description="a name from GET /v1/voices (OpenAI's names mean the default); "
                                 "default: the model's first voice")
    response_format: str = Field("mp3", description="wav, pcm (16-bit 24 kHz mono), mp3, flac or opus")
    speed: float = Field(1.0, ge=0.25, le=4.0)
    language: Optional[str] = Field(None, description="language code; default: the server's --language, the model's "
                                    "language, or a guess from the text's script")
    seed: Optional[int] = Field(None, ge=0, le=2**62, description="fixed seed for reproducible audio")


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers


class Worker:
    """One thread for the model, and a count of admitted requests that never exceeds `max_queue`.

    Admitted jobs wait in a queue; the thread takes those there (waiting at most `max_wait` seconds for
    company once one is there) and speaks them as one continuous batch of at most `max_batch` sentences,
    which jobs arriving meanwhile join within a few tokens; each is streamed back in its own order."""

    def __init__(self, synth: Synthesizer, max_queue: int, max_batch: int = 8, max_wait: float = 0.01):
        self.synth, self.max_queue, self.max_batch, self.max_wait = synth, max_queue, max_batch, max_wait
        self.pending = 0
        self.fault: str | None = None  # set when an error left the GPU unusable: every later request would fail
        self._lock = threading.Lock()
        self._jobs: queue.Queue = queue.Queue()
        threading.Thread(target=self._run, name="xtts-synthesis", daemon=True).start()

    def admit(self) -> bool:
        with self._lock:
            if self.fault or self.pending >= self.max_queue:
                return False
            self.pending += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.pending -= 1

    def submit(self, job: "Job") -> None:
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            jobs = [self._jobs.get()]
            deadline = time.monotonic() + self.max_wait
            while len(jobs) < self.max_batch:
                try:
                    jobs.append(self._jobs.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            self._speak(jobs)

    def _ready(self, jobs: list["Job"]) -> list[tuple["Job", object]]:
        """(job, its prepared request) for each job still wanted; a job that fails here gets its error alone."""
        ready = []
        for job in jobs:
            try:
                if not job.cancel.is_set():  # else the client left while this waited in the queue
                    request = job.prepare(self.synth)
                    self.synth.voice_latents(request.voice)  # a bad reference clip fails this request, not the batch
                    ready.append((job, request))
                    continue
            except BaseException as err:
                job.put(err)
            self.release()
        return ready

    def _arrived(self) -> list["Job"]:
        jobs = []
        while True:
            try:
                jobs.append(self._jobs.get_nowait())
            except queue.Empty:
                return jobs

    def _speak(self, jobs: list["Job"]) -> None:
        """Speaks the jobs as one continuous batch, which jobs arriving meanwhile join; each job's chunks
        go to it in order, and its slot in the queue is freed as soon as it is done."""
        ready, done = self._ready(jobs), set()
        if not ready:
            return

        def incoming():
            new = self._ready(self._arrived())
            ready.extend(new)
            return [request for _, request in new]

        try:
            for index, chunk in self.synth.generate_many([r for _, r in ready], max_batch=self.max_batch, incoming=incoming,
                                                         cancelled=lambda i: ready[i][0].cancel.is_set()):
                job = ready[index][0]
                if chunk is None:
                    job.put(_DONE)
                    done.add(index)
                    self.release()
                elif not job.cancel.is_set():
                    job.put(chunk)
        except BaseException as err:  # delivered to the requests, which answer with an error
            if poisons_device(err):
                self.fault = f"{type(err).__name__}: {str(err)[:300]}"
                log.error("the GPU is in an error state; this server must be restarted: %s", self.fault)
            for i, (job, _) in enumerate(ready):
                if i not in done:
                    job.put(err)
        finally:
            for i in range(len(ready)):
                if i not in done:
                    self.release()


def poisons_device(err: BaseException) -> bool:
    """Whether `err` leaves the CUDA context unusable (a device-side assert, an illegal address): every later
    kernel fails the same way, so the process must restart. Running out of memory does not."""
    import torch

    if isinstance(err, torch.cuda.OutOfMemoryError):
        return False
    accelerator_error = getattr(torch, "AcceleratorError", ())  # torch >= 2.8 raises this for CUDA errors
    return isinstance(err, accelerator_error) or (isinstance(err, RuntimeError) and "CUDA error" in str(err))


def create_app(model_dir: str | Path | None = None, *, token: str | None = None, max_queue: int = 4,
               max_chars: int = MAX_INPUT_CHARS, synthesizer: Synthesizer | None = None, device: str = "auto",
               latents_cache_dir: Path | None = None, allowed_hosts: tuple[str, ...] | None = LOOPBACK_HOSTS,
               max_batch: int = 8, language: str | None = None, precision: str = "auto") -> FastAPI:
    """The app for `model_dir` (or an already loaded `synthesizer`, shared with e.g. the web UI).

    `allowed_hosts`: Host header names accepted (default: loopback names only); None accepts any.
    `max_batch`: sentences decoded together across requests. `language`: the default when a request has
    none (OpenAI clients cannot send one); without it the model's own, else a guess from the text's script.
    """
    synth = synthesizer or Synthesizer(model_dir, device=device, latents_cache_dir=latents_cache_dir, precision=precision)
    if language is not None:
        synth.prepare("a", language)  # an unknown or unspoken language fails at start, not per request
    worker = Worker(synth, max_queue, max_batch)
    app = FastAPI(title="xtts-finetune speech server", version=__version__)
    app.state.synthesizer, app.state.worker = synth, worker
    app.add_middleware(Gate, token=token, max_body=max_chars * 8 + 4096)  # 8 bytes a character covers JSON escapes
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))  # outermost: runs first

    _error_handlers(app)
    _info_routes(app, synth, worker)

    @app.post("/v1/audio/speech", responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}, "description": "the audio"}})
    async def speech(body: SpeechBody, http: Request):
        fmt = body.response_format.lower()
        if fmt not in MEDIA_TYPES:
            raise ApiError(400, f"response_format {body.response_format!r} is not supported; use one of: {', '.join(MEDIA_TYPES)}")
        if len(body.input) > max_chars:
            raise ApiError(413, f"input has {len(body.input)} characters; this server accepts at most {max_chars}")
        if worker.fault:
            raise ApiError(503, f"the server's GPU is in an error state ({worker.fault}); it must be restarted", "server_error")
        if not worker.admit():
            raise ApiError(503, "the server is busy; try again shortly", "server_busy",
                           {"Retry-After": str(max(1, worker.pending))})
        job = Job(body, language)
        worker.submit(job)
        chunks, cancel = job.chunks, job.cancel
        gone = asyncio.ensure_future(_disconnected(http))
        try:
            first = await _next(chunks, gone, cancel)
            if fmt in STREAMED_FORMATS:  # from here Starlette's own disconnect listener takes over
                return StreamingResponse(_stream_body(first, chunks, cancel, fmt, synth.sample_rate), media_type=MEDIA_TYPES[fmt])
            parts = [first]
            while (item := await _next(chunks, gone, cancel)) is not _DONE:
                parts.append(item)
        except ClientGone:
            return Response(status_code=499)  # nobody reads it; the work has stopped
        finally:
            gone.cancel()
        data = await run_in_threadpool(encode, np.concatenate(parts), synth.sample_rate, fmt)
        return Response(data, media_type=MEDIA_TYPES[fmt])

    return app


def _error_handlers(app: FastAPI) -> None:
    """Every error answers in OpenAI's error shape; a UserError is the client's 400, anything else a 500."""
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, err: ApiError):
        return _error(err.status, err.message, err.kind, err.headers)

    @app.exception_handler(UserError)
    async def _user_error(request: Request, err: UserError):
        return _error(400, str(err))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, err: RequestValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in err.errors())
        return _error(400, f"invalid request: {problems}")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException):
        return _error(err.status_code, str(err.detail), "invalid_request_error" if err.status_code < 500 else "server_error")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception):
        log.exception("unexpected error")
        return _error(500, f"internal error: {type(err).__name__}", "server_error")


def _info_routes(app: FastAPI, synth: Synthesizer, worker: "Worker") -> None:
    """/health, /v1/models (OpenAI's model list) and /v1/voices."""
    @app.get("/health")
    def health():
        state = {"model": synth.name, "pending": worker.pending, "max_queue": worker.max_queue}
        if worker.fault:  # a supervisor (or load balancer) sees it and restarts the server
            return JSONResponse({"status": "unhealthy", "error": worker.fault, **state}, status_code=503)
        return {"status": "ok", **state}

    @app.get("/v1/models")
    def models() -> dict:
        """OpenAI's model list: this model, under its own name and OpenAI's speech model names."""
        names = [synth.name, *(n for n in OPENAI_MODELS if n != synth.name)]
        return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "xtts-finetune"}
                                           for n in names]}

    @app.get("/v1/voices")
    def voices() -> dict:
        return {"voices": synth.voices(), "languages": synth.languages, "model": synth.name}


class ClientGone(Exception):
    """The client closed the connection before its audio was ready."""


class Job:
    """One admitted request: its body, where its chunks go (an asyncio queue) and its cancel flag."""

    def __init__(self, body: "SpeechBody", language: str | None):
        self.body, self.language = body, language
        self.loop, self.chunks, self.cancel = asyncio.get_running_loop(), asyncio.Queue(), threading.Event()

    def put(self, item) -> None:
        self.loop.call_soon_threadsafe(self.chunks.put_nowait, item)

    def prepare(self, synth: Synthesizer):
        body = self.body
        voice = None if body.voice in OPENAI_VOICES and body.voice not in synth.voices() else body.voice
        language = body.language or self.language or _model_language(synth) or guess_language(body.input, synth.languages)
        return synth.prepare(body.input, language, voice, speed=body.speed, seed=body.seed)


def _model_language(synth: Synthesizer) -> str | None:
    return synth.card.get("language") or (synth.languages[0] if len(synth.languages) == 1 else None)


async def _disconnected(request: Request) -> None:
    """Returns when the client disconnects (the body has been read, so the next message says so)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _next(chunks: asyncio.Queue, gone: asyncio.Future, cancel: threading.Event):
    """The next chunk, or ClientGone (and the work cancelled) if the client leaves first."""
    getter = asyncio.ensure_future(chunks.get())
    await asyncio.wait({getter, gone}, return_when=asyncio.FIRST_COMPLETED)
    if not getter.done():
        getter.cancel()
        cancel.set()
        raise ClientGone()
    item = getter.result()
    if isinstance(item, BaseException):
        raise item
    return item


async def _stream_body(first: np.ndarray, chunks: asyncio.Queue, cancel: threading.Event, fmt: str, sample_rate: int):
    try:
        yield (wav_header(sample_rate) if fmt == "wav" else b"") + pcm16(first)
        while (item := await chunks.get()) is not _DONE:
            if isinstance(item, BaseException):
                log.error("synthesis failed mid-stream: %s", item)  # the status line has gone; end the stream
                return
            yield pcm16(item)
    finally:
        cancel.set()


def _error(status: int, message: str, kind: str = "invalid_request_error", headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status, headers=headers)


class Gate:
    """ASGI middleware: the token is checked, then the body read in full up to `max_body` bytes, before the app runs.

    Counting what arrives (not trusting Content-Length) bounds chunked bodies too; the app then reads
    the buffered body, and later messages (the client's disconnect) pass straight through.
    """

    def __init__(self, app, token: str | None, max_body: int):
        self.app, self.token, self.max_body = app, token, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.token is not None and scope["path"] not in OPEN_PATHS and not self._authorized(scope):
            return await _error(401, "missing or wrong bearer token", "authentication_error",
                                {"WWW-Authenticate": "Bearer"})(scope, receive, send)
        too_large = _error(413, f"request body too large; at most {self.max_body} bytes")
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_body:
            return await too_large(scope, receive, send)
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                return await too_large(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    def _authorized(self, scope) -> bool:
        scheme, _, given = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode())


def read_token(token_file: str | Path | None = None) -> str | None:
    """The server's token: from `token_file` (first line), else $XTTS_FINETUNE_TOKEN; never needed on a command line."""
    if token_file is None:
        return os.environ.get(TOKEN_ENV) or None
    try:
        token = Path(token_file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read the token file {token_file}: {err}", fix="give a readable text file holding the token") from None
    if len(token) < 8:
        raise UserError(f"the token in {token_file} is {'empty' if not token else 'too short'}",
                        fix="write a token of at least 8 characters into it, e.g. `openssl rand -hex 24`")
    return token


def check_binding(host: str, token: str | None) -> None:
    """Anyone who can reach a non-loopback address could use the GPU; require a token there."""
    if not is_loopback(host) and not token:
        raise UserError(f"refusing to listen on {host} without a token: anyone on the network could use it",
                        fix="pass --token-file FILE (or set XTTS_FINETUNE_TOKEN), or listen on 127.0.0.1")


def serve(model_dir: str | Path, host: str = "127.0.0.1", port: int = 8020, token: str | None = None, *,
          max_queue: int = 4, max_chars: int = MAX_INPUT_CHARS, device: str = "auto", log_level: str = "info",
          allowed_hosts: tuple[str, ...] | None = None, max_batch: int = 8, language: str | None = None,
          precision: str = "auto") -> None:
    """Load the model and serve until interrupted. On loopback only loopback Host names are accepted by default."""
    import uvicorn

    check_binding(host, token)
    if allowed_hosts is None and is_loopback(host):
        allowed_hosts = LOOPBACK_HOSTS
    app = create_app(model_dir, token=token, max_queue=max_queue, max_chars=max_chars, device=device,
                     allowed_hosts=allowed_hosts, max_batch=max_batch, language=language, precision=precision)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
