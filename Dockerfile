FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY trooply trooply
COPY workers workers
COPY migrations migrations
RUN pip install --no-cache-dir "torch==2.14.1" "torchvision==0.29.1" && pip install --no-cache-dir -e ".[postgres]"
RUN useradd --create-home trooply
USER trooply
EXPOSE 8000
CMD ["trooply", "serve", "--host", "0.0.0.0"]
