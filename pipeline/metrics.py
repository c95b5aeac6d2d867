"""Prometheus metrics of the pipeline (names follow Prometheus conventions)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOBS = Counter("imgpipe_jobs_total", "Jobs that reached an outcome.",
               ["outcome", "priority"])
REJECTED = Counter("imgpipe_rejected_total", "Events rejected at ingest, by reason.",
                   ["reason"])
DEAD_LETTERS = Counter("imgpipe_dead_letters_total", "Records sent to the dead-letter topic.",
                       ["stage", "reason"])
RETRIES = Counter("imgpipe_retries_total", "Jobs sent to the retry topic.", ["reason"])
DUPLICATES = Counter("imgpipe_duplicates_skipped_total",
                     "Submissions or redeliveries skipped because the job was done or "
                     "in flight.", ["stage"])
JOB_LATENCY = Histogram("imgpipe_job_latency_seconds", "Submission to DONE, per job.",
                        ["priority"], buckets=(.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120,
                                               300, 900, 3600))
BATCH_SIZE = Histogram("imgpipe_batch_size", "Jobs per processing batch.", ["priority"],
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128))
BATCH_SECONDS = Histogram("imgpipe_batch_seconds", "Wall time of one processing batch.",
                          ["priority"])
STAGE_SECONDS = Histogram("imgpipe_stage_seconds", "Seconds per job in each stage.",
                          ["stage"])
OP_SECONDS = Histogram("imgpipe_op_seconds", "Seconds per image operation (and encode).",
                       ["op"], buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1,
                                        2.5, 5))
IN_FLIGHT = Gauge("imgpipe_jobs_in_flight", "Jobs currently being processed.")
SOURCE_BYTES = Counter("imgpipe_source_bytes_total", "Bytes of source images read.")
OUTPUT_BYTES = Counter("imgpipe_output_bytes_total", "Bytes of outputs written.")
STORAGE_EVENTS = Counter("imgpipe_storage_events_total", "Bucket notifications seen at "
                         "ingest, by outcome: job, unmatched (no route), ignored_event "
                         "(not a finalize), own_object (written by the pipeline).",
                         ["outcome"])
REPLAYED = Counter("imgpipe_replayed_total", "Replayed jobs seen at ingest, by the topic "
                   "they were replayed from and whether they were queued or skipped as done.",
                   ["source_topic", "outcome"])
STALL_RESCUES = Counter("imgpipe_stall_rescues_total", "Source partitions the sweeper's "
                        "stall check read again from their committed offset (a safety "
                        "net: it should never fire; each one is a delay of "
                        "IMGPIPE_SWEEP_STALE_AFTER).")
CRASHES = Counter("imgpipe_job_crashes_total", "Jobs found started and never finished: "
                  "their worker died running them (they run isolated next).")
TEMP_FILES_REMOVED = Counter("imgpipe_temp_files_removed_total", "Temp files of crashed "
                             "output writes removed from the object store.")
SWEPT = Counter("imgpipe_swept_total", "Jobs re-sent by the sweeper because their work "
                "message was committed without being processed.")
API_SUBMISSIONS = Counter("imgpipe_api_submissions_total", "Jobs submitted over HTTP, by "
                          "outcome (accepted, or the reason of the 4xx).", ["outcome"])
CONSUMER_LAG = Gauge("imgpipe_consumer_lag", "Records not yet consumed by the worker group "
                     "(end offset - committed offset), for the partitions this worker owns.",
                     ["topic", "partition"])
