"""A tool call: the model picks one of several functions and writes its arguments.

    python examples/tool_call.py

Each tool is a JSON Schema for its arguments; the call schema is an ``anyOf`` of
``{"name": <const>, "arguments": <that tool's schema>}``, so a call can never name one tool and
pass another's arguments, and the Python function is called with arguments it accepts.
"""

from __future__ import annotations

import constrain

TOOLS = {
    "get_weather": {
        "description": "current weather in a city",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "maxLength": 30},
            "unit": {"enum": ["celsius", "fahrenheit"]}}, "required": ["city", "unit"], "additionalProperties": False},
    },
    "set_timer": {
        "description": "start a countdown timer",
        "parameters": {"type": "object", "properties": {
            "minutes": {"type": "integer", "minimum": 1, "maximum": 180},
            "label": {"type": "string", "maxLength": 20}}, "required": ["minutes"], "additionalProperties": False},
    },
    "search_flights": {
        "description": "search flights between two airports",
        "parameters": {"type": "object", "properties": {
            "origin": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "destination": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "date": {"type": "string", "format": "date"}},
            "required": ["origin", "destination", "date"], "additionalProperties": False},
    },
}


def call_schema(tools: dict) -> dict:
    return {"anyOf": [
        {"type": "object", "properties": {"name": {"const": name}, "arguments": spec["parameters"]},
         "required": ["name", "arguments"], "additionalProperties": False}
        for name, spec in tools.items()]}


def get_weather(city: str, unit: str) -> str:
    return f"(pretend) 21 degrees {unit} in {city}"


def set_timer(minutes: int, label: str = "") -> str:
    return f"(pretend) timer {label!r} set for {minutes} min"


def search_flights(origin: str, destination: str, date: str) -> str:
    return f"(pretend) 3 flights {origin} -> {destination} on {date}"


IMPLS = {"get_weather": get_weather, "set_timer": set_timer, "search_flights": search_flights}

REQUESTS = ["What's the weather like in Porto today, in celsius?", "Set a timer for 15 minutes for the pasta."]


def run(model, tok, request: str):
    menu = "\n".join(f"- {n}: {s['description']}" for n, s in TOOLS.items())
    prompt = f"You can call these tools:\n{menu}\n\nUser: {request}\nCall one tool."
    r = constrain.generate_json(model, tok, call_schema(TOOLS), prompt, max_new_tokens=60,
                                instruction='Answer with a JSON object {"name": ..., "arguments": {...}}.')
    return r


def main() -> None:
    from constrain import models

    model, tok = models.load_default()
    for req in REQUESTS:
        r = run(model, tok, req)
        print(f"{req}\n  call: {r.text}")
        if r.complete:
            print("  ->", IMPLS[r.value["name"]](**r.value["arguments"]))


if __name__ == "__main__":
    main()
