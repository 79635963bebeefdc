"""Serving backends: turn requests into completions, with token counts and timings.

The protocol mirrors SGLang's native ``/generate`` API (text in; text, token counts, finish
reason and timing out) so that the SGLang backend and the in-process transformers backend are
interchangeable in a run.

>>> from ttclib.serving import TransformersBackend, Request, SamplingParams
>>> backend = TransformersBackend("random:tiny-qwen2", batch_size=2)          # doctest: +SKIP
>>> [c.completion_tokens for c in backend.generate(
...     [Request("q1", "Hello", SamplingParams(max_new_tokens=4, ignore_eos=True))])]  # doctest: +SKIP
[4]
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import json
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from . import hardware, models


@dataclass(frozen=True)
class SamplingParams:
    """Every sampling parameter explicit: engines' own defaults differ and change silently."""

    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    max_new_tokens: int = 128
    seed: int | None = None
    stop: tuple[str, ...] = ()  # stop strings; the text is cut before the first one
    ignore_eos: bool = False  # generate exactly max_new_tokens (fixed-length runs)
    n: int = 1  # independent samples, prefill repeated for each


@dataclass(frozen=True)
class Request:
    id: str
    prompt: str  # final text, chat template already applied
    sampling: SamplingParams = field(default_factory=SamplingParams)
    # log-likelihood scoring: no generation; the summed log-probability of these tokens after ``prompt``
    continuation: str | None = None


@dataclass(frozen=True)
class Completion:
    request_id: str
    sample: int  # 0..n-1
    text: str
    prompt_tokens: int
    completion_tokens: int  # tokens the engine generated for this sample, EOS included
    finish_reason: str  # "stop" (EOS or stop string) | "length"
    t_start: float  # unix seconds the engine started on it
    t_end: float  # unix seconds its last token was produced
    cached_tokens: int = 0  # prompt tokens served from a prefix cache
    reasoning_tokens: int = 0  # filled by strategies that count <think> tokens
    t_first_token: float | None = None  # unix seconds its first token was produced: the prefill ends there
    logprob: float | None = None  # log-likelihood requests: Σ log p(continuation tokens | prompt), nats

    def to_dict(self) -> dict:
        return asdict(self)


class Backend(Protocol):
    """What every serving backend offers: all a run uses of it."""

    name: str  # as registered (``backend:`` in a spec)
    phase_timing: str  # where completions' first-token times come from (prefill vs decode)
    device: str  # where it runs: "cpu", "cuda" or "cuda:N" (scopes the energy meter)
    tokenizer: Any  # the model's Hugging Face tokenizer
    chat: bool  # chat-tuned: prompts go through the chat template
    batch_size: int  # sequences at once; a run sets it before generating
    log_path: Path | None  # the serving process's log; None for in-process generation
    external: str | None  # where work runs outside this process tree (an attached server's URL)

    def stream(self, requests: Sequence[Request]) -> Iterator[Completion]:
        """Yield completions as they finish (order not guaranteed)."""

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        """All completions, in request order then sample order."""

    def describe(self) -> dict: ...

    def close(self) -> None:
        """Release what the backend holds (a launched server is stopped)."""


BACKENDS: dict[str, type] = {}
_B = TypeVar("_B", bound=Backend)


def register_backend(name: str):
    """Class decorator: ``backend: <name>`` in a spec (and :func:`make_backend`) builds this class,
    whose ``name`` it sets."""

    def register(cls: type[_B]) -> type[_B]:
        cls.name = name
        BACKENDS[name] = cls
        return cls

    return register


def backend_names() -> tuple[str, ...]:
    """What ``backend:`` accepts: ``auto`` and every registered backend."""
    return ("auto", *BACKENDS)


def render_prompt(tokenizer, messages: list[dict], chat: bool) -> str:
    """Apply the model's chat template, or join the messages as plain text for base models."""
    if chat and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "\n\n".join(m["content"] for m in messages)


def _continuation(r: Request) -> str:
    """A log-likelihood request's continuation."""
    assert r.continuation is not None  # only requests with one are scored by log-likelihood
    return r.continuation


def ordered(completions: Iterable[Completion], requests: Sequence[Request]) -> list[Completion]:
    rank = {r.id: i for i, r in enumerate(requests)}
    return sorted(completions, key=lambda c: (rank[c.request_id], c.sample))


@register_backend("transformers")
class TransformersBackend:
    """In-process generation with Hugging Face transformers, batched with left padding.

    Requests are grouped by identical sampling parameters and cut into batches of
    ``batch_size`` sequences (a request with ``n`` samples contributes ``n`` sequences, each
    with its own prefill). All sequences of a batch share its start time; each one's end time is when
    its last token was produced, estimated from the batch's time per step (``generate`` reports no
    per-step times), so energy attribution charges the steps a finished row still occupies to the
    sequences still generating.
    """

    name: str  # set by @register_backend
    log_path = None  # no server: nothing logs
    external = None  # everything runs in this process
    # how a completion's first-token time is known (run.json ``phases``)
    phase_timing = "generate() stopping-criteria call after the first step (the batch's prefill)"

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 16,
        threads: int | None = None,
        seed: int = 0,
    ):
        import torch
        import transformers
        from transformers import AutoConfig, AutoModelForCausalLM

        transformers.utils.logging.disable_progress_bar()  # per-tensor load bars drown the run's own
        self.model_name, self.ref = model, models.resolve(model)
        self.device, self.batch_size = device, batch_size
        self.dtype, self.dtype_requested = hardware.resolve_dtype(dtype, device), dtype
        # Deliberate, not torch's default: one thread per CPU this process may use, fewer when
        # asked (on a shared 2-core machine 2 threads collapsed to a fifth of 1 thread's speed).
        self.threads = threads or hardware.usable_cpus()
        self.threads_source = "params" if threads else "usable CPUs"
        torch.set_num_threads(self.threads)
        torch_dtype = getattr(torch, self.dtype)
        t0 = time.time()
        if self.ref.kind == "random":
            assert self.ref.path is not None  # a random model's config
            config = AutoConfig.from_pretrained(self.ref.path)
            torch.manual_seed(seed)
            with torch.device(device):  # initialised where it runs: a 7B model in seconds on a GPU
                self.model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
        else:
            source = self.ref.path if self.ref.kind == "hub" else str(models.hf_directory(model))
            assert source is not None  # a hub model's path is its id
            self.model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype)
        self.model.to(device).eval()
        self.tokenizer = _load_tokenizer(model, self.ref)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.load_s = time.time() - t0
        self.chat = _is_chat(self.ref, self.tokenizer)
        self._eos = self._eos_ids()

    def _eos_ids(self) -> set[int]:
        ids = self.model.generation_config.eos_token_id
        ids = set(ids if isinstance(ids, list) else [ids]) - {None}
        return ids | {self.tokenizer.eos_token_id} - {None}

    def describe(self) -> dict:
        import torch
        import transformers

        cfg = self.model.config
        return {
            # info re-read: a conversion during __init__ added the GGUF's own name
            "backend": self.name,
            "model": self.model_name,
            "model_kind": self.ref.kind,
            **models.resolve(self.model_name).info,
            "architecture": type(self.model).__name__,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "layers": getattr(cfg, "num_hidden_layers", None),
            "hidden_size": getattr(cfg, "hidden_size", None),
            "device": self.device,
            "dtype": self.dtype,
            "dtype_requested": self.dtype_requested,
            "bf16_native": hardware.bf16_support(self.device) if self.dtype == "bfloat16" else None,
            "batch_size": self.batch_size,
            "threads": self.threads,
            "threads_source": self.threads_source,
            "load_s": round(self.load_s, 2),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        }

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        return ordered(self.stream(requests), requests)

    def close(self) -> None:
        """Nothing to stop: the model goes with the object."""

    def stream(self, requests: Sequence[Request]) -> Iterator[Completion]:
        scored = [r for r in requests if r.continuation is not None]
        for i in range(0, len(scored), self.batch_size):
            yield from self._loglikelihood(scored[i : i + self.batch_size])
        generated = [r for r in requests if r.continuation is None]
        for params, group in itertools.groupby(sorted(generated, key=_group_key), key=lambda r: r.sampling):
            seqs = [(r, s) for r in group for s in range(params.n)]
            for i in range(0, len(seqs), self.batch_size):
                yield from self._batch(seqs[i : i + self.batch_size], params, batch_index=i // self.batch_size)

    def _loglikelihood(self, reqs: list[Request]) -> list[Completion]:
        """One forward over each prompt + continuation (right-padded: a causal model's logits for the
        real tokens do not see the padding), the continuation's token log-probabilities summed. Its
        tokens are those of the whole text past the prompt's own tokens, so a merge at the boundary
        counts for the continuation (as lm-evaluation-harness splits it). All of it is prefill."""
        import torch

        conts = [_continuation(r) for r in reqs]
        whole = [self.tokenizer(r.prompt + c).input_ids for r, c in zip(reqs, conts, strict=True)]
        n_ctx = [min(prompt_tokens(self.tokenizer, r.prompt), len(w) - 1) for r, w in zip(reqs, whole, strict=True)]
        width = max(map(len, whole))
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([w + [pad] * (width - len(w)) for w in whole], device=self.device)
        mask = torch.tensor([[1] * len(w) + [0] * (width - len(w)) for w in whole], device=self.device)
        t_start = time.time()
        with torch.inference_mode():
            logp = torch.log_softmax(self.model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
            sums = [
                float(logp[i, c - 1 : len(w) - 1].gather(1, ids[i, c : len(w), None]).sum())
                for i, (w, c) in enumerate(zip(whole, n_ctx, strict=True))
            ]
        t_end = time.time()
        return [
            Completion(r.id, 0, c, len(w), 0, "loglikelihood", t_start, t_end, t_first_token=t_end, logprob=lp)
            for r, c, w, lp in zip(reqs, conts, whole, sums, strict=True)
        ]

    def _batch(self, seqs: list[tuple[Request, int]], p: SamplingParams, batch_index: int) -> list[Completion]:
        import torch

        enc = self.tokenizer([r.prompt for r, _ in seqs], return_tensors="pt", padding=True).to(self.device)
        kwargs = dict(max_new_tokens=p.max_new_tokens, pad_token_id=self.tokenizer.pad_token_id)
        if p.temperature > 0:
            kwargs.update(do_sample=True, temperature=p.temperature, top_p=p.top_p, top_k=0)
            torch.manual_seed((p.seed or 0) * 100_003 + batch_index)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if p.ignore_eos:
            kwargs["min_new_tokens"] = p.max_new_tokens
        clock = StepClock()
        criteria = [clock, *([self._stop_criteria(p.stop)] if p.stop else [])]
        t_start = time.time()
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs, stopping_criteria=criteria)
        t_end = time.time()
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        gen = out[:, enc["input_ids"].shape[1] :].tolist()
        return [
            self._completion(r, s, ids, n_prompt, p, t_start, t_end, clock.times)
            for (r, s), ids, n_prompt in zip(seqs, gen, prompt_lens, strict=True)
        ]

    def _stop_criteria(self, stop: tuple[str, ...]):
        """generate()'s stop-string criterion, built once per set of stop strings: building it walks the
        whole vocabulary (0.4 s for a 150k-token one), which inside generate() would be timed as prefill."""
        from transformers.generation.stopping_criteria import StopStringCriteria

        cache = self.__dict__.setdefault("_stops", {})
        if stop not in cache:
            cache[stop] = StopStringCriteria(self.tokenizer, list(stop))
        return cache[stop]

    def _completion(
        self,
        r: Request,
        sample: int,
        ids: list[int],
        n_prompt: int,
        p: SamplingParams,
        t_start: float,
        t_end: float,
        steps: Sequence[float] = (),
    ) -> Completion:
        # After a sequence finishes, generate() pads it (pad is often EOS). Count what the model
        # actually produced: up to the first EOS (included), or up to the padding after a stop string.
        filler = {self.tokenizer.pad_token_id} | self._eos
        end = len(ids) if p.ignore_eos else next((i for i, t in enumerate(ids) if t in filler), len(ids))
        text = self.tokenizer.decode(ids[:end], skip_special_tokens=True)
        cut = min((text.find(s) for s in p.stop if s in text), default=-1)
        if cut >= 0:
            text, n_tokens, reason = text[:cut], end, "stop"
        elif end < len(ids):
            n_tokens, reason = end + 1, "stop"
        else:
            n_tokens, reason = end, "length"
        return Completion(
            r.id,
            sample,
            text,
            int(n_prompt),
            n_tokens,
            reason,
            t_start,
            token_time(min(n_tokens, len(ids)), len(ids), t_start, t_end, steps),
            t_first_token=float(steps[0]) if steps else None,
        )


class StepClock:
    """A stopping criterion that stops nothing: it notes when each generation step ended.

    generate() calls its stopping criteria once per step, after the step's token is chosen, so
    ``times[k]`` is when token k of every row was produced: ``times[0]`` ends the batch's prefill (one
    forward over every prompt token, then the first token chosen), the rest are decode steps.
    """

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        self.times.append(time.time())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def token_time(n_tokens: int, steps_run: int, t_start: float, t_end: float, steps: Sequence[float] = ()) -> float:
    """When a row's ``n_tokens``-th token was produced, of a batch that ran ``steps_run`` steps.

    Once a row is done, the steps it still occupies are charged to the rows still generating, so
    its end must be when its own last token came out. With a timestamp per step that is exact
    (the prefill, often most of a short batch, stays with the first token); without one, steps
    are taken as equally long.

    >>> token_time(1, 4, 0.0, 10.0, [7.0, 8.0, 9.0, 10.0])   # a slow prefill: token 0 at 7 s
    7.0
    >>> token_time(1, 4, 0.0, 10.0)                            # no step times: equal steps
    2.5
    """
    if n_tokens <= 0:
        return t_start
    if len(steps) == steps_run:
        return float(steps[n_tokens - 1])
    return t_start + (t_end - t_start) * n_tokens / max(steps_run, 1)


def _group_key(r: Request):
    p = r.sampling
    return (p.temperature, p.top_p, p.max_new_tokens, p.seed or 0, p.stop, p.ignore_eos, p.n)


@register_backend("sglang")
class SGLangBackend:
    """Requests to an SGLang server's native ``/generate`` API, all submitted at once.

    The server's own scheduler batches them (up to its ``max_running_requests``, the run's batch
    size), as the paper assumes every question of a benchmark is present at once; at most
    ``max_in_flight`` are open at a time (default 4 x the batch size), which keeps the server's queue
    full without holding thousands of connections. A request with
    ``n`` samples becomes ``n`` requests, each paying its own prefill. Token counts, finish
    reason, cached tokens and the engine's own start/finish times come from ``meta_info``.

    Launch mode (default) starts ``python -m sglang.launch_server`` for ``model`` and stops it on
    :meth:`close`; attach mode (``options.url``) uses a running server and leaves it running.

    >>> backend = SGLangBackend("random:tiny-qwen2", device="cpu", batch_size=8,
    ...                         log_path="/tmp/server.log")                     # doctest: +SKIP
    >>> backend.generate([Request("q1", "Hello", SamplingParams(max_new_tokens=4, ignore_eos=True))]
    ...                  )[0].completion_tokens                                    # doctest: +SKIP
    4
    >>> backend.close()                                                          # doctest: +SKIP
    """

    name: str  # set by @register_backend
    phase_timing = "SGLang meta_info: request_received_ts + first_token_latency"

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        dtype: str = "bfloat16",
        batch_size: int = 16,
        seed: int = 0,
        options=None,
        log_path: str | os.PathLike | None = None,
    ):
        from .server import ServerOptions, SGLangServer

        self.model_name, self.ref = model, models.resolve(model)
        device = resolve_device(device)
        self.device, self.dtype, self.seed = device, hardware.resolve_dtype(dtype, device), seed
        self.options = options or ServerOptions()
        t0 = time.time()
        self.tokenizer = _load_tokenizer(model, self.ref)
        if self.options.url:
            self.server = SGLangServer.attach(self.options.url)
        else:
            src = models.serving_source(model)
            log_path = (
                log_path
                or models.cache_dir() / "server-logs" / f"sglang-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
            )
            self.server = SGLangServer.launch(
                src.model_path,
                device=device,
                dtype=self.dtype,
                max_running_requests=batch_size,
                options=self.options,
                log_path=log_path,
                seed=seed,
                load_format=src.load_format,
            )
        self.load_s = time.time() - t0
        try:
            self.info = self.server.snapshot()
        except BaseException:
            self.server.stop()
            raise
        self._batch_size = batch_size
        self.chat = _is_chat(self.ref, self.tokenizer)

    @property
    def log_path(self):
        return self.server.log_path

    @property
    def external(self) -> str | None:
        return None if self.server.launched else self.server.url

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        effective = self.info.get("max_running_requests")
        if self.server.launched and effective is not None and value > effective:
            raise ValueError(
                f"this SGLang server runs at most {effective} requests at once; "
                f"a run with batch_size {value} needs its own server"
            )
        self._batch_size = value

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "model": self.model_name,
            "model_kind": self.ref.kind,
            **models.resolve(self.model_name).info,
            "mode": "launch" if self.server.launched else "attach",
            "device": self.device,
            # the server does not say; sizes order the overview and pair RT models with Base ones
            "parameters": _model_parameters(self.model_name),
            "dtype": self.dtype,
            "batch_size": self._batch_size,
            "load_s": round(self.load_s, 2),
            "server": self.info,
            "server_log": str(self.server.log_path) if self.server.log_path else None,
        }

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        return ordered(self.stream(requests), requests)

    def stream(self, requests: Sequence[Request]) -> Iterator[Completion]:
        jobs = [(r, s) for r in requests for s in range(r.sampling.n)]
        if not jobs:
            return
        done: queue.Queue = queue.Queue()
        runner = _AsyncRunner(self._submit_all(jobs, done))
        try:
            for _ in jobs:
                item = _next(done, self.server)
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            runner.cancel()

    def close(self) -> None:
        self.server.stop()

    # --- the client --------------------------------------------------------------------------
    async def _submit_all(self, jobs: list[tuple[Request, int]], done: queue.Queue) -> None:
        import aiohttp

        opts = self.options
        # Enough open requests that the server's queue never runs dry between its batches, few
        # enough that a queued request's wait stays within the request timeout.
        in_flight = opts.max_in_flight or max(64, 4 * int(self.info.get("max_running_requests") or self._batch_size))
        limit = asyncio.Semaphore(in_flight)
        connector = aiohttp.TCPConnector(limit=in_flight)
        timeout = aiohttp.ClientTimeout(total=opts.request_timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def one(r: Request, sample: int) -> None:
                async with limit:
                    t_send = time.time()
                    async with session.post(self.server.url + "/generate", json=self._payload(r, sample)) as resp:
                        body = await resp.read()
                        if resp.status != 200:
                            raise self.server.error(
                                f"answered HTTP {resp.status} to request {r.id!r}: "
                                f"{body[:500].decode(errors='replace')}"
                            )
                    done.put(self._completion(r, sample, json.loads(body), t_send, time.time()))

            tasks = [asyncio.ensure_future(one(r, s)) for r, s in jobs]
            try:
                for t in asyncio.as_completed(tasks):
                    await t
            except asyncio.CancelledError:
                raise
            except BaseException as e:
                done.put(self._explain(e))
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    def _explain(self, e: BaseException) -> BaseException:
        from .server import SGLangServerError

        if isinstance(e, SGLangServerError):
            return e
        try:
            self.server.check_alive("while serving requests")
        except SGLangServerError as dead:
            return dead
        what = "timed out" if isinstance(e, asyncio.TimeoutError) else f"failed: {type(e).__name__}: {e}"
        return self.server.error(f"request {what}")

    def _payload(self, r: Request, sample: int) -> dict:
        if r.continuation is not None:  # log-likelihood: the prompt's own tokens are not scored
            # SGLang's first returned input logprob (at logprob_start_len) is always None: start one
            # token before the continuation, so that every continuation token gets its logprob
            n_ctx = prompt_tokens(self.tokenizer, r.prompt)
            return {
                "text": r.prompt + r.continuation,
                "return_logprob": True,
                "logprob_start_len": max(n_ctx - 1, 0),
                "sampling_params": {"max_new_tokens": 0, "temperature": 0.0},
            }
        p = r.sampling
        # Every parameter explicit: SGLang otherwise takes defaults from the model's generation_config.
        sp = {
            "temperature": p.temperature,
            "top_p": p.top_p if p.temperature > 0 else 1.0,
            "top_k": -1,
            "min_p": 0.0,
            "repetition_penalty": 1.0,
            "frequency_penalty": 0.0,
            "presence_penalty": 0.0,
            "max_new_tokens": p.max_new_tokens,
            "stop": list(p.stop),
            "ignore_eos": p.ignore_eos,
        }
        if p.seed is not None:  # SGLang honours it only with --enable-deterministic-inference
            sp["sampling_seed"] = p.seed + sample
        return {"text": r.prompt, "sampling_params": sp}

    def _completion(self, r: Request, sample: int, body: dict, t_send: float, t_recv: float) -> Completion:
        meta = body["meta_info"]
        reason = meta.get("finish_reason") or {}
        if reason.get("type") == "abort":
            raise self.server.error(f"aborted request {r.id!r}: {reason.get('message', reason)}")
        # The engine's own times (with --enable-metrics) exclude queueing, which matters for
        # per-query energy attribution when the whole benchmark is queued at once.
        start = min(max(meta.get("forward_entry_time") or t_send, t_send), t_recv)
        end = min(max(meta.get("request_finished_ts") or t_recv, start), t_recv)
        if r.continuation is not None:
            scored = [v[0] for v in meta.get("input_token_logprobs") or [] if v and v[0] is not None]
            return Completion(
                r.id,
                sample,
                r.continuation,
                int(meta["prompt_tokens"]),
                0,
                "loglikelihood",
                start,
                end,
                cached_tokens=int(meta.get("cached_tokens") or 0),
                t_first_token=end,
                logprob=float(sum(scored)),
            )
        return Completion(
            r.id,
            sample,
            body["text"],
            int(meta["prompt_tokens"]),
            int(meta["completion_tokens"]),
            "length" if reason.get("type") == "length" else "stop",
            start,
            end,
            cached_tokens=int(meta.get("cached_tokens") or 0),
            reasoning_tokens=int(meta.get("reasoning_tokens") or 0),
            t_first_token=first_token_time(meta, start, end),
        )


@functools.lru_cache(maxsize=4096)
def prompt_tokens(tokenizer, prompt: str) -> int:
    """Tokens of a log-likelihood request's prompt, counted once: a query's options share their prompt."""
    return len(tokenizer(prompt).input_ids)


def first_token_time(meta: dict, start: float, end: float) -> float | None:
    """When SGLang produced a request's first token (unix s): ``request_received_ts`` plus
    ``first_token_latency`` from ``meta_info`` (SGLang >= 0.5 with ``--enable-metrics``), kept inside
    the request's own ``[start, end]``; None when the server does not report them.

    >>> first_token_time({"request_received_ts": 100.0, "first_token_latency": 0.25}, 100.1, 102.0)
    100.25
    >>> first_token_time({}, 100.1, 102.0) is None
    True
    """
    received, latency = meta.get("request_received_ts"), meta.get("first_token_latency")
    if received is None or latency is None:
        return None
    return min(max(float(received) + float(latency), start), end)


class _AsyncRunner:
    """Runs one coroutine on an event loop in a daemon thread; cancel() stops it and waits."""

    def __init__(self, coro):
        self.loop = asyncio.new_event_loop()
        self.task = None
        ready = threading.Event()

        def main():
            asyncio.set_event_loop(self.loop)
            self.task = self.loop.create_task(coro)
            ready.set()
            try:
                self.loop.run_until_complete(self.task)
            except BaseException:
                pass
            finally:
                self.loop.close()

        self.thread = threading.Thread(target=main, name="sglang-client", daemon=True)
        self.thread.start()
        ready.wait()

    def cancel(self) -> None:
        if self.thread.is_alive():
            try:
                self.loop.call_soon_threadsafe(self.task.cancel)
            except RuntimeError:  # the client finished in between and closed its loop: nothing to cancel
                pass
        self.thread.join()


def _next(done: queue.Queue, server) -> Completion | BaseException:
    """The next finished completion; notices a launched server that died while we wait."""
    while True:
        try:
            return done.get(timeout=1.0)
        except queue.Empty:
            try:
                server.check_alive("while serving requests")
            except Exception as e:  # noqa: BLE001 - handed to the caller
                return e


def _model_parameters(model: str) -> int | None:
    from .gpu_hours import model_parameters

    return model_parameters(model)


def _is_chat(ref, tokenizer) -> bool:
    """Chat-tuned: as the model registry says, else whether the tokenizer has a chat template."""
    return ref.chat if ref.chat is not None else bool(tokenizer.chat_template)


@functools.lru_cache(maxsize=4)
def load_tokenizer(model: str):
    """The tokenizer of a model name as run specs give it (embedded, random:<config>, hub id or folder),
    without loading its weights: for counting a query's tokens as that model reads them."""
    return _load_tokenizer(model, models.resolve(model))


def _load_tokenizer(model: str, ref):
    from transformers import AutoTokenizer

    source = ref.path if ref.kind == "hub" else str(models.tokenizer_directory(model))
    return AutoTokenizer.from_pretrained(source)


@functools.lru_cache(maxsize=1)
def sglang_usable() -> tuple[bool, str]:
    """Whether ``backend: auto`` would pick SGLang here: SGLang installed and a CUDA GPU visible."""
    from . import hardware
    from .server import sglang_python

    if sglang_python() is None:
        return False, "SGLang is not installed"
    if not hardware.gpus():
        return False, "no CUDA GPU is visible"
    return True, "SGLang installed and a CUDA GPU visible"


def resolve_backend(name: str) -> str:
    if name not in backend_names():
        raise ValueError(f"unknown backend {name!r}; available: {', '.join(backend_names())}")
    if name == "auto":
        return "sglang" if sglang_usable()[0] else "transformers"
    return name


def resolve_device(device: str) -> str:
    """``auto``: the first CUDA GPU when one is visible, else the CPU."""
    if device != "auto":
        return device
    from . import hardware

    return "cuda" if hardware.gpus() else "cpu"


def make_backend(name: str, model: str, **kwargs) -> Backend:
    """Backend by registered name: ``sglang`` (server), ``transformers`` (in-process) or ``auto``.

    ``auto`` picks SGLang when it is installed and a CUDA GPU is visible, else transformers.
    Keyword arguments a backend does not take (``options``/``log_path`` for transformers) are dropped.
    """
    cls = BACKENDS[resolve_backend(name)]
    if "device" in kwargs:
        kwargs["device"] = resolve_device(kwargs["device"])
    takes = inspect.signature(cls).parameters
    return cls(model, **{k: v for k, v in kwargs.items() if k in takes})
