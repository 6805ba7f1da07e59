"""Wire formats -> one internal record model, the write-ahead log and the loader into the event store."""
