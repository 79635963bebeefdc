"""Every section notebook executes under papermill with its params file's `smoke` profile."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(notebook, tmp_path):
    import papermill as pm

    # Copy the params file so its relative runs_dir/figures_dir land in tmp_path.
    (tmp_path / "params").mkdir()
    params = shutil.copy(ROOT / "params" / f"{notebook.stem}.yaml", tmp_path / "params")
    out = tmp_path / "executed.ipynb"
    pm.execute_notebook(str(notebook), str(out), cwd=str(notebook.parent), kernel_name="python3",
                        parameters={"params_file": str(params), "profile": "smoke"}, progress_bar=False)
    nb = json.loads(out.read_text())
    text = json.dumps([c.get("outputs", []) for c in nb["cells"]])
    assert "The claim that" in text and " here" in text
    figures = list((tmp_path / "outputs" / "smoke" / "figures").glob("*.png"))
    assert figures and all(f.with_suffix(".svg").exists() for f in figures)


def test_notebooks_are_committed_clean():
    from papermill.translators import PythonTranslator

    for nb in NOTEBOOKS:
        cells = json.loads(nb.read_text())["cells"]
        assert not any(c.get("outputs") for c in cells if c["cell_type"] == "code"), nb
        params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(params) == 1, nb
        lines = [ln for ln in "".join(params[0]["source"]).splitlines() if ln.strip()]
        names = [p.name for p in PythonTranslator.inspect(params[0])]
        assert len(names) == len(lines) and {"params_file", "profile"} <= set(names), nb
        assert (ROOT / "params" / f"{nb.stem}.yaml").exists(), nb
