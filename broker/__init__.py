"""The broker layer every mash-hub process shares."""

from broker import wire

# Before any connection exists: a message whose headers the client library cannot decode
# must reach a consumer as a message to dead-letter, never close the connection (broker.wire).
wire.install()
