"""The read model: realtime snapshots, history series and anomaly enrichment.

REST, the WebSocket feed and ``/metrics`` all render what this package builds;
it reads the stores and the live state and never writes them.
"""
