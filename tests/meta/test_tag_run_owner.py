"""A tag run left "running" by a process that was killed (SIGKILL, no shutdown code) is recorded as failed, with
the reason, when it is read or when a server starts; a run whose process still computes it stays running, and so
does a run of another host (whose processes this one cannot see)."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import textwrap

from edupulse.meta.db import MetadataStore
from edupulse.meta.process_owner import gone, owner_of, this_process
from edupulse.meta.tags import ABANDONED, TagCatalog, TagRunRow, check_spec

SPEC = {"name": "lead_tier", "definition": {"type": "custom_tiers",
                                            "tiers": [{"name": "A", "condition": {"event": "page_view"}}]}}
DAY = dt.date(2026, 12, 7)


def killed_while_running(url: str, project_id: int) -> int:
    """A process that starts a run of the tag and is killed with SIGKILL before it finishes; the run's id."""
    code = textwrap.dedent(f"""
        import datetime as dt, os, signal
        from edupulse.meta.db import MetadataStore
        from edupulse.meta.tags import TagCatalog
        catalog = TagCatalog(MetadataStore({url!r}))
        tag = next(t for t in catalog.all({project_id}) if t.name == "lead_tier")
        print(catalog.start_run(tag, dt.date(2026, 12, 7), "manual").id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    return int(done.stdout.strip())


def test_a_run_whose_process_was_killed_is_failed_with_the_reason(meta: MetadataStore) -> None:
    project = meta.create_project("Killed runs").project.id
    catalog = TagCatalog(meta)
    tag = catalog.create(project, check_spec(SPEC), "me")
    left = killed_while_running(str(meta.engine.url.render_as_string(hide_password=False)), project)
    mine = catalog.start_run(tag, DAY, "manual")  # this process computes it
    elsewhere = catalog.start_run(tag, DAY, "manual")
    with meta.session() as s, s.begin():
        row = s.get(TagRunRow, elsewhere.id)
        assert row is not None
        row.owner = "another-host|1|1"
    found = catalog.run(left)
    assert found is not None
    assert (found.status, found.error) == ("failed", ABANDONED)
    assert found.finished_at is not None
    assert {r.id: r.status for r in catalog.runs(tag.id)} == {left: "failed", mine.id: "running",
                                                              elsewhere.id: "running"}
    assert catalog.fail_abandoned_runs() == 0
    catalog.finish_run(mine.id, units=3)
    assert catalog.run(mine.id).status == "finished"  # type: ignore[union-attr]


def test_a_server_starting_fails_the_runs_its_killed_predecessor_left(meta: MetadataStore) -> None:
    project = meta.create_project("Restarted server").project.id
    catalog = TagCatalog(meta)
    catalog.create(project, check_spec(SPEC), "me")
    left = killed_while_running(str(meta.engine.url.render_as_string(hide_password=False)), project)
    assert catalog.fail_abandoned_runs() == 1
    with meta.session() as s:
        row = s.get(TagRunRow, left)
        assert row is not None
        assert (row.status, row.error) == ("failed", ABANDONED)


def test_process_owner() -> None:
    assert not gone(this_process())
    assert not gone("another-host|1|1")
    assert not gone("")
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as child:
        owner = owner_of(child.pid)
        assert not gone(owner)
        child.kill()
    assert gone(owner)
