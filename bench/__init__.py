"""``mash bench``: the hub measured against the raw broker and a framework peer, and at scale.

One run measures the same message flow (per contact: 4 requests, 4 answers, 1 packet;
persistent messages on quorum queues; the same byte sizes) written three ways, back to back
on the real broker, each with its gatherer and four responders as separate processes:

- ``raw``      (:mod:`bench.raw`): aio-pika with no hub logic, pipelined confirms, tuned
  prefetch: the limit of this client and broker;
- ``peer``     (:mod:`bench.peer`): the same scatter-gather written with FastStream;
- ``mash-hub`` (:mod:`bench.mashhub`): ``mash hub`` and ``mash adapter <agency>`` with
  every feature on.

Then the scenarios the issue names: a Red contact behind a Green backlog
(:mod:`bench.priority`), a hub holding 100,000 open contacts (:mod:`bench.scale`), and the
cost of one answer's encode, sign and seal against plain JSON (:mod:`bench.cost`).

Layout: :mod:`bench.report` (figures and targets), :mod:`bench.latency` (when each contact
went in and its packet came out), :mod:`bench.driver` (saturated and paced load),
:mod:`bench.processes` (child processes, queue readiness), :mod:`bench.workload` (contacts
and the message sizes of the real flow), :mod:`bench.profile` (py-spy summaries),
:mod:`bench.run` (one whole run).
"""
