# The small app whose OpenAPI 3.1 document tests/specs/fastapi/openapi.json is.
from enum import Enum
from typing import Optional
from fastapi import FastAPI, Query, status
from pydantic import BaseModel, Field

app = FastAPI(title="Inventory", version="1.0.0")

class Category(str, Enum):
    tool = "tool"
    part = "part"
    kit = "kit"

class Dimensions(BaseModel):
    width_mm: float = Field(gt=0)
    height_mm: float = Field(gt=0)

class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    category: Category
    price_cents: int = Field(ge=0)
    tags: list[str] = []
    dimensions: Optional[Dimensions] = None
    notes: Optional[str] = None

class ItemPatch(BaseModel):
    name: Optional[str] = Field(default=None, min_length=1, max_length=80)
    price_cents: Optional[int] = Field(default=None, ge=0)
    notes: Optional[str] = None

class Item(ItemIn):
    id: int

@app.post("/items/", response_model=Item, status_code=status.HTTP_201_CREATED)
def create_item(item: ItemIn): ...

@app.get("/items/", response_model=list[Item])
def list_items(skip: int = 0, limit: int = Query(default=20, le=100), category: Optional[Category] = None): ...

@app.get("/items/{item_id}", response_model=Item)
def read_item(item_id: int): ...

@app.put("/items/{item_id}", response_model=Item)
def replace_item(item_id: int, item: ItemIn): ...

@app.patch("/items/{item_id}", response_model=Item)
def update_item(item_id: int, item: ItemPatch): ...

@app.delete("/items/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_item(item_id: int): ...
