"""The local Durable Functions host: runs an unmodified v2 Python function app.

It loads ``function_app.py``, serves its HTTP triggers, runs orchestrators through the real
``azure-functions-durable`` SDK (replay included) and serves the durable client HTTP API, with
state in Azure Storage (Azurite) so a killed host resumes its instances. Never deployed.
"""
