FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
RUN pip install --no-cache-dir .
ENV SEGMENTATION_DATA_DIR=/data
EXPOSE 8000
CMD ["segmentation", "serve", "--host", "0.0.0.0", "--port", "8000"]
