# The batch engine's task image (infra/batch_engine.tf): functions/batch_task.py at the root beside
# the shared package and the client rules, on the Python the functions run on. cloudbuild.yaml
# builds it from the repository root:
#   docker build -f functions/batch_task.Dockerfile -t IMAGE .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY shared/ shared/
COPY clients/ clients/
COPY functions/batch_task.py batch_task.py

RUN useradd --system --no-create-home task
USER task
ENTRYPOINT ["python", "batch_task.py"]
