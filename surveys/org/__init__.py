"""The sales org: people, teams and roles (`models`), the people CSV import
and export (`people`), the People page (`views`) and its commands."""
