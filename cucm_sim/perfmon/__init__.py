"""Perfmon's names and file layout: the counters CUCM and Windows publish, and the PDH-CSV files that hold them.

`counters` names the counters and says how each one counts (a running total, a per-second rate, a reading
at the sample); `pdh_csv` writes and reads the comma-separated layout that Windows Perfmon, typeperf and
RTMT's Performance Log Viewer share.  Nothing here knows about a run: `report.perfmon_export` turns a run
into counters, `scenario.replay` turns a recording (named by a scenario's `load.trace`) into load.
"""
