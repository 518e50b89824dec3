"""The daemon: a workspace in; the localhost HTTP API, the indexing thread and the file
watcher out."""
