# Read by the flask command (through python-dotenv). Nothing secret belongs here.
FLASK_APP=api
