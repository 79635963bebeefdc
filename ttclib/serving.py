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

import itertools
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator, Protocol, Sequence

from . import models


@dataclass(frozen=True)
class SamplingParams:
    """Every sampling parameter explicit: engines' own defaults differ and change silently."""

    temperature: float = 0.0          # 0 = greedy
    top_p: float = 1.0
    max_new_tokens: int = 128
    seed: int | None = None
    stop: tuple[str, ...] = ()        # stop strings; the text is cut before the first one
    ignore_eos: bool = False          # generate exactly max_new_tokens (fixed-length runs)
    n: int = 1                        # independent samples, prefill repeated for each


@dataclass(frozen=True)
class Request:
    id: str
    prompt: str                       # final text, chat template already applied
    sampling: SamplingParams = field(default_factory=SamplingParams)


@dataclass(frozen=True)
class Completion:
    request_id: str
    sample: int                       # 0..n-1
    text: str
    prompt_tokens: int
    completion_tokens: int            # tokens the engine generated for this sample, EOS included
    finish_reason: str                # "stop" (EOS or stop string) | "length"
    t_start: float                    # unix seconds the engine started on it
    t_end: float                      # unix seconds its last token was produced
    cached_tokens: int = 0            # prompt tokens served from a prefix cache
    reasoning_tokens: int = 0         # filled by strategies that count <think> tokens

    def to_dict(self) -> dict:
        return asdict(self)


class Backend(Protocol):
    """What every serving backend offers."""

    name: str
    tokenizer: object

    def stream(self, requests: Sequence[Request]) -> Iterator[Completion]:
        """Yield completions as they finish (order not guaranteed)."""

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        """All completions, in request order then sample order."""

    def describe(self) -> dict: ...

    def close(self) -> None: ...


def render_prompt(tokenizer, messages: list[dict], chat: bool) -> str:
    """Apply the model's chat template, or join the messages as plain text for base models."""
    if chat and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "\n\n".join(m["content"] for m in messages)


def ordered(completions: Iterable[Completion], requests: Sequence[Request]) -> list[Completion]:
    rank = {r.id: i for i, r in enumerate(requests)}
    return sorted(completions, key=lambda c: (rank[c.request_id], c.sample))


class TransformersBackend:
    """In-process generation with Hugging Face transformers, batched with left padding.

    Requests are grouped by identical sampling parameters and cut into batches of
    ``batch_size`` sequences (a request with ``n`` samples contributes ``n`` sequences, each
    with its own prefill). All sequences of a batch share its start and end time.
    """

    name = "transformers"

    def __init__(self, model: str, *, device: str = "cpu", dtype: str = "float32",
                 batch_size: int = 16, threads: int | None = None, seed: int = 0):
        import torch
        import transformers
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        transformers.utils.logging.disable_progress_bar()  # per-tensor load bars drown the run's own
        self.model_name, self.ref = model, models.resolve(model)
        self.device, self.dtype, self.batch_size = device, dtype, batch_size
        self.threads = threads or os.cpu_count()
        torch.set_num_threads(self.threads)
        torch_dtype = getattr(torch, dtype)
        t0 = time.time()
        if self.ref.kind == "random":
            config = AutoConfig.from_pretrained(self.ref.path)
            torch.manual_seed(seed)
            self.model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
        else:
            source = self.ref.path if self.ref.kind == "hub" else str(models.hf_directory(model))
            self.model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype)
        self.model.to(device).eval()
        tok_source = self.ref.path if self.ref.kind == "hub" else str(models.tokenizer_directory(model))
        self.tokenizer = AutoTokenizer.from_pretrained(tok_source)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.load_s = time.time() - t0
        self.chat = self.ref.chat if self.ref.chat is not None else bool(self.tokenizer.chat_template)
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
            "backend": self.name, "model": self.model_name, "model_kind": self.ref.kind, **self.ref.info,
            "architecture": type(self.model).__name__,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "layers": getattr(cfg, "num_hidden_layers", None), "hidden_size": getattr(cfg, "hidden_size", None),
            "device": self.device, "dtype": self.dtype, "batch_size": self.batch_size,
            "threads": self.threads, "load_s": round(self.load_s, 2),
            "torch": torch.__version__, "transformers": transformers.__version__,
        }

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        return ordered(self.stream(requests), requests)

    def stream(self, requests: Sequence[Request]) -> Iterator[Completion]:
        for params, group in itertools.groupby(sorted(requests, key=_group_key), key=lambda r: r.sampling):
            seqs = [(r, s) for r in group for s in range(params.n)]
            for i in range(0, len(seqs), self.batch_size):
                yield from self._batch(seqs[i:i + self.batch_size], params, batch_index=i // self.batch_size)

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
        if p.stop:
            kwargs.update(stop_strings=list(p.stop), tokenizer=self.tokenizer)
        t_start = time.time()
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        t_end = time.time()
        prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
        gen = out[:, enc["input_ids"].shape[1]:].tolist()
        return [self._completion(r, s, ids, n_prompt, p, t_start, t_end)
                for (r, s), ids, n_prompt in zip(seqs, gen, prompt_lens)]

    def _completion(self, r: Request, sample: int, ids: list[int], n_prompt: int, p: SamplingParams,
                    t_start: float, t_end: float) -> Completion:
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
        return Completion(r.id, sample, text, int(n_prompt), n_tokens, reason, t_start, t_end)


def _group_key(r: Request):
    p = r.sampling
    return (p.temperature, p.top_p, p.max_new_tokens, p.seed or 0, p.stop, p.ignore_eos, p.n)


def make_backend(name: str, model: str, **kwargs) -> Backend:
    """Backend by name: ``transformers`` (in-process) or ``auto``."""
    if name in ("transformers", "auto"):
        return TransformersBackend(model, **kwargs)
    raise ValueError(f"unknown backend {name!r}; available: transformers, auto")
