"""The clients: the only code that speaks to Knack, Socrata, ArcGIS and S3.

Each retries under one policy (``lib.clients.retry``) and counts its requests for the
reports; the jobs above them (sync, publish, backup) know nothing of HTTP.
"""
