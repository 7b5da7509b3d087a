"""Run memory: what each run did, recorded before the action that depends on it.

The executor speaks to it through `recorder.RunRecorder` only; which store is behind it
(SQLite, PostgreSQL, nothing) is decided by `apply`.
"""
