FROM python:3.11-slim-bookworm
# Placeholder until the container work lands.
