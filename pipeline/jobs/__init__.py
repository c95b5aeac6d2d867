"""A job's domain: admission, the image engine, processing, sources, uploads, budgets,
isolation."""
