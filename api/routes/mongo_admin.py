"""The original's MongoDB browsing routes, for admins only."""

import asyncio

from fastapi import APIRouter, Depends, Query

from api.http.auth import require_admin
from api.http.errors import ApiError
from mongo.connection import mongo_client

router = APIRouter(prefix="/mongo", tags=["MongoDB"], dependencies=[Depends(require_admin)])


@router.get("/db", summary="List the databases")
async def list_databases() -> dict[str, list[str]]:
    return {"Database": await asyncio.to_thread(mongo_client().list_database_names)}


@router.get("/collections", summary="List the collections of a database")
async def list_collections(db_name: str = Query(min_length=1, max_length=64)) -> dict[str, list[str]]:
    client = mongo_client()
    if db_name not in await asyncio.to_thread(client.list_database_names):
        raise ApiError(404, "not_found", f"database {db_name!r} not found")
    return {"Collections": sorted(await asyncio.to_thread(client[db_name].list_collection_names))}
