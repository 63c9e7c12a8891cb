"""examples/notebook.ipynb runs in a real IPython kernel against FakeClarify and keeps no secret.

The notebook runs once per module, with nbclient, in an ipykernel started on this
interpreter with this checkout's ``src`` first on its path and a directory that
holds a ``clarify-credentials.json`` for the fake as its working directory. A
missing nbclient or ipykernel fails these tests: it is never a reason to skip.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from traitlets import default

from clarify_auth.testing import FakeClarify

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "notebook.ipynb"
SRC = ROOT / "src"
FETCHED = "fetched an access token"  # clarify_auth's INFO line for each token request

# Run after the notebook's own cells, in the same kernel, and removed before any check.
PROBE = (
    "import os, sys, clarify_auth\n"
    "print(sys.executable, clarify_auth.__file__, os.getcwd(), os.getpid(), sep='\\n')"
)


class KernelOnThisInterpreter(AsyncKernelManager):
    """ipykernel's built-in ``python3`` kernel, whatever kernelspecs this machine has.

    A ``python3`` kernelspec in ``~/.local/share/jupyter`` (or anywhere on
    ``JUPYTER_PATH``) may name another Python; with no kernel directories, only
    ipykernel's own spec is left, and it runs ``sys.executable``.
    """

    @default("kernel_spec_manager")
    def _no_installed_kernelspecs(self) -> KernelSpecManager:
        return KernelSpecManager(kernel_dirs=[])


@dataclass(frozen=True)
class Run:
    """What one run of the notebook left: the fake's records, the notebook and the probe's answers."""

    fake: FakeClarify
    notebook: Any  # nbformat.NotebookNode, as saved after the run
    workdir: Path
    kernel_python: str
    kernel_clarify_auth: str
    kernel_cwd: str
    kernel_pid: int

    def cell(self, cell_id: str) -> Any:
        return next(c for c in self.notebook.cells if c.id == cell_id)


def kernel_env(workdir: Path) -> dict[str, str]:
    """The test's environment, minus Clarify's variables, with this checkout's src first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARIFY_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    env["XDG_CACHE_HOME"] = str(workdir / "cache")
    env["IPYTHONDIR"] = str(workdir / "ipython")  # no profile or history in the user's ~/.ipython
    return env


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    """The notebook, executed once against a FakeClarify, probe cell removed."""
    workdir = tmp_path_factory.mktemp("notebook")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE, id="test-probe"))

    with FakeClarify() as fake:
        fake.write_credentials(workdir / "clarify-credentials.json")
        client = NotebookClient(
            notebook,
            timeout=60,
            kernel_name="python3",
            kernel_manager_class=KernelOnThisInterpreter,
            resources={"metadata": {"path": str(workdir)}},  # the kernel's working directory
        )
        client.execute(env=kernel_env(workdir))  # shuts the kernel down, also on a failing cell

    probe = notebook.cells.pop()
    python, module, cwd, pid = "".join(o.text for o in probe.outputs).splitlines()
    return Run(fake, notebook, workdir, python, module, cwd, int(pid))


def outputs_text(cell: Any, *, stream: str | None = None) -> str:
    """Everything a cell showed: its streams (or one of them) and its text/plain results."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            if stream in (None, output.name):
                parts.append(output.text)
        elif stream is None and "text/plain" in output.get("data", {}):
            parts.append(output.data["text/plain"])
    return "".join(parts)


def test_the_kernel_runs_this_checkout_on_this_interpreter_in_the_workdir(run):
    """The kernel is this Python, imports clarify_auth from this checkout's src, and runs in the workdir."""
    assert Path(run.kernel_python).resolve() == Path(sys.executable).resolve()
    assert Path(run.kernel_clarify_auth).resolve().is_relative_to(SRC)
    assert Path(run.kernel_cwd).resolve() == run.workdir.resolve()


def test_the_whole_notebook_costs_one_token_request(run):
    """Two sessions, an AsyncClient and five calls: one token request in all."""
    rpc = [r for r in run.fake.requests if r.path.endswith("/rpc")]

    assert run.fake.token_requests == 1
    assert run.fake.tokens_issued == 1
    assert run.fake.rpc_calls == 5
    assert [r.status for r in rpc] == [200] * 5
    assert [r.json["method"] for r in rpc] == ["clarify.selectItems"] * 5
    assert len({r.headers["Authorization"] for r in rpc}) == 1


def test_the_log_shows_one_fetch_and_the_rerun_none(run):
    """The INFO log (on the cell's stderr) shows the token fetched by the first call, not by the re-run."""
    fetches = {
        c.id: outputs_text(c, stream="stderr").count(FETCHED)
        for c in run.notebook.cells
        if c.cell_type == "code"
    }

    assert fetches["call"] == 1
    assert fetches["session-again"] == 0
    assert sum(fetches.values()) == 1


def test_top_level_await_works_in_the_kernel(run):
    """The async cell awaits at the top level, as a notebook does, and shows its three answers."""
    cell = run.cell("async-call")

    assert "await asyncio.gather" in "".join(cell.source)
    assert outputs_text(cell).strip() == "3"
    assert not [o for o in cell.outputs if o.output_type == "error"]


def test_the_calls_show_their_results(run):
    """Both API calls show the fake's answer, an empty selection."""
    assert "'data': []" in outputs_text(run.cell("call"))
    assert "'data': []" in outputs_text(run.cell("session-again"))


def test_the_expiry_is_shown_and_the_token_masked(run):
    """The expiry cell prints expires_at and displays the token with asterisks for its value."""
    expiry = run.cell("expiry")

    assert "expires at 2" in outputs_text(expiry, stream="stdout")
    shown = outputs_text(expiry)
    assert "access_token=SecretStr('**********')" in shown
    assert "expires_at=datetime.datetime(" in shown
    assert "SecretStr('**********')" in outputs_text(run.cell("credentials"))


def test_no_secret_or_token_in_the_saved_notebook(run):
    """The executed notebook, serialised with its outputs and logs, holds no secret and no token."""
    saved = nbformat.writes(run.notebook)
    issued = {
        r.headers["Authorization"].removeprefix("Bearer ")
        for r in run.fake.requests
        if r.path.endswith("/rpc")
    }

    assert FETCHED in saved  # the stderr log lines are in what was checked
    assert issued
    assert run.fake.client_secret not in saved
    assert "fake-token-" not in saved
    for token in issued:
        assert token not in saved


@pytest.mark.skipif(os.name != "posix", reason="os.kill(pid, 0) probes a process only on POSIX")
def test_the_kernel_is_gone_after_the_run(run):
    """nbclient shut the kernel down: no kernel process is left behind."""
    with pytest.raises(ProcessLookupError):
        os.kill(run.kernel_pid, 0)


def test_the_notebook_on_disk_has_no_outputs_and_clean_metadata():
    """The committed notebook is valid nbformat 4 with no outputs, no counts and no stray metadata."""
    notebook = nbformat.read(NOTEBOOK, as_version=nbformat.NO_CONVERT)
    code = [c for c in notebook.cells if c.cell_type == "code"]

    nbformat.validate(notebook)
    assert notebook.nbformat == 4
    assert notebook.metadata.kernelspec.name == "python3"
    assert set(notebook.metadata) <= {"kernelspec", "language_info"}
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert all(c.metadata == {} for c in notebook.cells)
