"""The bare-uvicorn baseline: one POST route that parses a body and answers 201."""

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Appeal(BaseModel):
    title: str
    description: str
    channel: str
    contact: dict
    location: dict | None = None


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}


@app.post("/appeals", status_code=201)
async def create(body: Appeal) -> dict:
    return {"case_id": "c-1", "tracking_no": "XC-20261122-000001", "status": "accepted"}
