"""``python -m runner_client artifacts-uploader|artifacts-downloader ...``"""

from runner_client.cli import app

app()
