-- imgpipe metadata schema, version 3: facts about the source image (JSON) and its pHash
-- as a number, so near-duplicates are found in the database (BIT_COUNT of the XOR).
ALTER TABLE Jobs ADD COLUMN Image JSON;
ALTER TABLE Jobs ADD COLUMN PhashBits INT64;
