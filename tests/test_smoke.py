def test_app_builds_schema_and_answers(client):
    assert client.get("/sign-in").status_code == 200
