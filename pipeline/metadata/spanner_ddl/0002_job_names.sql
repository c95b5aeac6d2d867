-- imgpipe metadata schema, version 2: the submitted file's name and the client's label.
ALTER TABLE Jobs ADD COLUMN SourceName STRING(255);
ALTER TABLE Jobs ADD COLUMN Label STRING(200);
