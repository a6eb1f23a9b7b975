"""The MASH console: the screening team's web screen (``mash console``).

Modules, one idea each:

- :mod:`console.store`: its own SQLite file (0600): accounts, packets by reference, the
  board's state, and the record of who saw and did what;
- :mod:`console.feed`: every packet from its own durable queue and the hub's events, stored
  before they are acked;
- :mod:`console.board`: the board's order, gauges and time left;
- :mod:`console.packet_view`: a packet laid out for reading;
- :mod:`console.auth`: accounts, roles, Argon2, login rate limiting, CSRF;
- :mod:`console.settings`: ``MASH_CONSOLE_*``;
- :mod:`console.app`: the pages and actions (Starlette, Jinja2, GOV.UK Frontend vendored in
  ``static/govuk`` by ``scripts/vendor-govuk-frontend.sh``).
"""
