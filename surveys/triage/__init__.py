"""Product areas, customer needs and the triage inbox (SPEC §10, docs/triage.md).

`models` holds the tables, `service` the rules (inbox under the publication
plan, linking, merging, status changes, ranking), `suggest` the local TF-IDF
suggestions, `notify` the messages to reps, `views` the pages."""
