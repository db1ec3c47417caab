"""Archiving on many workers through Celery: one task per (terminal, stream, day).

* :mod:`.settings`: the broker, the result backend, queue names and the retry policy,
  from the environment (``DRAYDOG_BROKER_URL`` and friends).
* :mod:`.app`: the Celery application (``celery -A modules.tasks.app worker``).
* :mod:`.archive`: the task ``draydog.archive_day``; :mod:`.failures` says which
  failures are retried; :mod:`.summary` turns a day's report into JSON and back.
* :mod:`.process`: each worker process's one downloader (and browser).
* :mod:`.preflight`: a worker whose browser or database is missing never consumes;
  :mod:`.control`: one that loses its browser later stops (exit status 3).
* :mod:`.cycle`: the watch cycle as a task, for ``draydog beat``.
* :mod:`.commands`: ``draydog enqueue``, ``draydog worker`` and ``draydog beat``.

Nothing here is imported by ``modules.cli`` until one of those commands runs.
"""
