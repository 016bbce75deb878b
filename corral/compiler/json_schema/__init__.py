"""JSON Schema (drafts 2020-12 and 7) -> grammar IR: numbers, strings, and the schema compiler."""
