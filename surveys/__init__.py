"""Questionnaires, answers and scorecards, people and sign-in: the web side of
Canary. The app factory is `surveys.app.create_app`."""
