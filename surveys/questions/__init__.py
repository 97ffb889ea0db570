"""Question sets as a service: `rules` (limits and refusals), `validation`,
`drafts` (drafts, publishing, settings), `shapes` (what the API and the export
show). Views, the JSON API, the CLI seed and the tests all go through these
plain functions."""
