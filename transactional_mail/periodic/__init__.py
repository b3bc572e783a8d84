"""Periodic emails: ``TRANSACTIONAL_MAIL["SCHEDULES"]`` run by celery beat (docs/scheduling.md).

One module per concept: the definitions and their checks, the periods a schedule is due
at, the recipient sources, a run, the beat rows and the Celery task.
"""
