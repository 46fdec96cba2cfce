"""The benchmark harness of issue 11 (`make bench`, documented in docs/benchmarks.md).

Not part of the application and not collected by pytest: `generate` fills a database
with a seeded book of business, `load` drives a served Tranche from other processes,
`run` puts it together and writes the figures."""
