"""The process topology of a node (ADR 0002, 0003): the writer process, the HTTP worker
supervisor, the control sockets between workers, and the typed messages between them.

Each module says which side it runs on: ``writer_process`` runs in the writer process,
``writer_client`` in an HTTP process (its link to the writer; ``remote_wal`` what it
sees of the WAL), ``protocol`` is what
both send; ``supervisor`` is worker 0 starting and watching the other HTTP workers,
``control`` the sockets workers ask each other on; ``logs`` the log handler of every
process. Nothing here imports the web framework: an HTTP worker is started as
``python -m stemedb.api.worker_main``.
"""
