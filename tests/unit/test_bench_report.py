"""The pure parts of ``mash bench``: how figures are printed, percentiles, and where a
profile says the time went."""

from __future__ import annotations

from pathlib import Path

from bench.latency import percentile, summary
from bench.profile import summarise
from bench.report import Report


def test_each_figure_is_printed_beside_its_target_and_whether_it_was_met() -> None:
    report = Report(quick=False, contacts=10, machine={"nproc": 2})
    report.add("ratio.x", "mash-hub / peer", 1.2, "x", target=">= 1.5x", met=False)
    report.add(
        "priority.red_ms", "Red behind Green backlog", 310.0, "ms", target="<= 1000 ms", met=True
    )
    report.add("throughput.raw", "raw throughput", None, "contacts/s")

    lines = report.render().splitlines()

    assert any(
        "mash-hub / peer" in line and ">= 1.5x" in line and "NOT MET" in line for line in lines
    )
    assert any(
        "Red behind Green backlog" in line and "310 ms" in line and line.endswith("met")
        for line in lines
    )
    assert any("raw throughput" in line and "n/a" in line for line in lines)
    assert report.as_dict()["figures"]["ratio.x"]["met"] is False


def test_percentiles_are_nearest_rank_so_p99_of_a_hundred_is_the_99th() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0
    assert summary(values)["max"] == 100.0


def test_profile_charges_a_commit_to_sqlite_and_leaves_out_start_up_and_idle(
    tmp_path: Path,
) -> None:
    profile = tmp_path / "hub.txt"
    profile.write_text(
        "run (/x/hub/service.py:10);accept (/x/hub/correlator.py:5);"
        "HubStore.transaction (/x/hub/store.py:214) 30\n"
        "run (/x/hub/service.py:10);encode (/x/schemas/codec.py:40);"
        "schemaless_writer (/v/site-packages/fastavro/write.py:9) 10\n"
        "run (/x/hub/service.py:10);EpollSelector.select (/p/lib/python3.11/selectors.py:9) 7\n"
        "_find_and_load (<frozen importlib._bootstrap>:1);<module> (/x/hub/store.py:1) 50\n"
    )

    found = summarise(profile, "hub")

    assert found.samples == 40
    assert dict(found.categories) == {
        "SQLite BEGIN/COMMIT (fsync)": 30,
        "Avro encode/decode": 10,
    }
    assert found.idle == 7
    assert found.as_dict(contacts=4)["busy_ms_per_contact"] == 100.0
