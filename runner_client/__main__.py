"""``python -m runner_client artifacts-uploader|artifacts-downloader|runner ...``"""

from runner_client.cli import app

app()
