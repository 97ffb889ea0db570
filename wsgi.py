"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

from dotenv import load_dotenv

load_dotenv()  # an optional .env file, as the flask command also reads

from surveys.app import create_app  # noqa: E402

app = create_app()
