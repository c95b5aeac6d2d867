-- imgpipe metadata schema, version 1: jobs and their outputs (interleaved).
CREATE TABLE Jobs (
  JobId       STRING(128) NOT NULL,
  Status      STRING(16)  NOT NULL,
  Priority    STRING(8)   NOT NULL,
  Tenant      STRING(64)  NOT NULL,
  Source      STRING(MAX) NOT NULL,
  SubmittedAt TIMESTAMP   NOT NULL,
  FinishedAt  TIMESTAMP   NOT NULL,
  Attempts    INT64       NOT NULL,
  ErrorCode   STRING(64),
  Error       STRING(MAX),
  Phash       STRING(16),
  UpdatedAt   TIMESTAMP   NOT NULL OPTIONS (allow_commit_timestamp = true),
) PRIMARY KEY (JobId);

CREATE TABLE Outputs (
  JobId     STRING(128) NOT NULL,
  Variant   STRING(64)  NOT NULL,
  Uri       STRING(MAX) NOT NULL,
  Width     INT64       NOT NULL,
  Height    INT64       NOT NULL,
  Format    STRING(8)   NOT NULL,
  Bytes     INT64       NOT NULL,
  UpdatedAt TIMESTAMP   NOT NULL OPTIONS (allow_commit_timestamp = true),
) PRIMARY KEY (JobId, Variant),
  INTERLEAVE IN PARENT Jobs ON DELETE CASCADE;

CREATE INDEX JobsByStatusFinished ON Jobs (Status, FinishedAt DESC);

CREATE INDEX JobsByTenantFinished ON Jobs (Tenant, FinishedAt DESC);
