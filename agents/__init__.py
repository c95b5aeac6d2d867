"""Faust agents: thin stream processors that call into pipeline/ and tables/.

    ingest          imgpipe.ingest -> validate, dedupe, route by priority (or dead-letter)
    process-<prio>  imgpipe.jobs.<prio> -> batched image work, outputs, metadata, results
    retry           imgpipe.retry -> wait out the backoff, send back to the priority topic
"""
