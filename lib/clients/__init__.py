"""The clients: the only code of the product that speaks to the services (HTTP, boto3).

knack, socrata and agol retry under one policy (``lib.clients.retry``) and count their
requests for the reports; s3 is the one doorway to the bucket (records, snapshots, backups,
reports, state), and app_store one app-env's part of it (its keys and records). The jobs
above them (sync, publish, backup) know nothing of HTTP or boto3.
"""
