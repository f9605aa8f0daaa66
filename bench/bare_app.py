"""The bare-uvicorn baseline: the framework's floor for intake's POST, with no database.

It validates the same body with pydantic and answers 201 with a small JSON body, like
``POST /api/v1/appeals`` does, so "intake ÷ bare uvicorn" is the cost of intake's own work.
Served by ``uvicorn bench.bare_app:app`` in its own process (uvloop and httptools, as intake).
"""

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Contact(BaseModel):
    name: str
    phone: str


class Appeal(BaseModel):
    title: str
    description: str
    channel: str
    contact: Contact


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/appeals", status_code=201)
async def create(body: Appeal) -> dict[str, str]:
    return {"case_id": "7d1c6f0e-0000-4000-8000-000000000001", "tracking_no": "XC-20261122-000001", "status": "accepted"}
